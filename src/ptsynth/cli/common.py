"""What every command shares: the consoles and the one error contract.

Exit codes mean something to CI: 0 success; 1 a privacy budget would be (or was) exceeded;
2 bad input, bad config, bad bundle or an invalid/tampered ledger; 3 an internal error (a bug);
130 / 143 interrupted by Ctrl-C / SIGTERM (nothing published, the reservation settled).
A :class:`~ptsynth.errors.PtsynthError` is printed as one line, never a traceback. Any other
exception is a bug: only its type is printed, since its message might quote a record (set
``PTSYNTH_DEBUG=1`` to see the traceback on a machine that holds the data).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ptsynth.errors import PtsynthError, Terminated

err = Console(stderr=True, soft_wrap=True)  # messages stay on one line in logs
out = Console(soft_wrap=True)

#: Exit code of an internal error (a bug in ptsynth), distinct from 1 (budget) and 2 (input).
INTERNAL_ERROR = 3

F = TypeVar("F", bound=Callable[..., Any])


def fail(exc: PtsynthError) -> None:
    """Print a user-fixable error as one line and exit with its code."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(code=exc.exit_code)


def warn(line: str) -> None:
    err.print(f"[bold yellow]WARNING:[/] {escape(line)}", highlight=False)


def guarded(command: F) -> F:
    """Apply the error contract to a command (see the module docstring)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except PtsynthError as exc:
            fail(exc)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            err.print("[bold red]interrupted:[/] nothing was published", highlight=False)
            raise typer.Exit(code=130) from None
        except Terminated:
            err.print("[bold red]terminated (SIGTERM):[/] nothing was published", highlight=False)
            raise typer.Exit(code=143) from None
        except Exception as exc:
            if os.environ.get("PTSYNTH_DEBUG"):
                raise
            err.print(
                f"[bold red]internal error:[/] {type(exc).__name__} (a bug in ptsynth; its "
                "message is not shown because it might quote a record: set PTSYNTH_DEBUG=1 "
                "to see the traceback on this machine)",
                highlight=False,
            )
            raise typer.Exit(code=INTERNAL_ERROR) from None
        return None

    return wrapper  # type: ignore[return-value]
