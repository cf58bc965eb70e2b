"""Progress of long steps, as events a caller may render (a terminal bar, a notebook, a log).

Why a seam and not prints: the library must stay silent unless asked, the CLI shows rich bars
only on a terminal, and a notebook or a web service wants the same events through a callback.
Every long step reports through a :class:`ProgressReporter`; the default one does nothing.

Events never carry a value read from a sensitive record: only step names, counts of rows or
rounds processed, and public parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

#: The steps of a release, in order (``task`` of an event).
STEPS = ("read", "measure", "estimate", "sample", "protect", "evaluate", "write", "showcase")


@dataclass(frozen=True)
class ProgressEvent:
    """One update of a task.

    Attributes:
        task: the step (one of :data:`STEPS`, or another short name).
        message: what is happening, for a person.
        completed: units done so far (``None``: unknown).
        total: units expected (``None``: unknown).
        unit: what a unit is (``"rows"``, ``"rounds"``, ``"steps"``, …).
        finished: the task has ended.
        elapsed: seconds since the task started.
    """

    task: str
    message: str
    completed: float | None = None
    total: float | None = None
    unit: str = ""
    finished: bool = False
    elapsed: float = 0.0

    @property
    def rate(self) -> float | None:
        """Units per second so far (``None`` when unknown)."""
        if self.completed is None or self.elapsed <= 0:
            return None
        return self.completed / self.elapsed


ProgressCallback = Callable[[ProgressEvent], None]


class Task:
    """A running task: :meth:`advance` / :meth:`update` send events to the callback."""

    def __init__(self, reporter: ProgressReporter, name: str, message: str,
                 total: float | None, unit: str) -> None:
        self._reporter, self.name, self.message = reporter, name, message
        self.total, self.unit = total, unit
        self.completed: float | None = 0.0 if total is not None else None
        self._start = time.perf_counter()

    def _emit(self, finished: bool = False) -> None:
        if not self._reporter.enabled:  # a silent reporter: build no event at all
            return
        self._reporter.emit(ProgressEvent(
            self.name, self.message, self.completed, self.total, self.unit, finished,
            time.perf_counter() - self._start,
        ))

    def advance(self, amount: float = 1.0, *, message: str | None = None) -> None:
        self.completed = (self.completed or 0.0) + amount
        if message is not None:
            self.message = message
        self._emit()

    def finish(self, *, message: str | None = None) -> None:
        """End the task (a :meth:`ProgressReporter.task` block does this itself)."""
        if message is not None:
            self.message = message
        self._emit(finished=True)

    def update(self, *, completed: float | None = None, total: float | None = None,
               message: str | None = None) -> None:
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if message is not None:
            self.message = message
        self._emit()


class ProgressReporter:
    """Sends :class:`ProgressEvent` s to ``callback`` (``None``: a silent reporter)."""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self.callback = callback

    @property
    def enabled(self) -> bool:
        return self.callback is not None

    def emit(self, event: ProgressEvent) -> None:
        if self.callback is not None:
            self.callback(event)

    def start(self, name: str, message: str, *, total: float | None = None,
              unit: str = "") -> Task:
        """Start a task; call its :meth:`Task.finish` at the end."""
        task = Task(self, name, message, total, unit)
        task._emit()
        return task

    @contextmanager
    def task(self, name: str, message: str, *, total: float | None = None,
             unit: str = "") -> Iterator[Task]:
        """``with reporter.task("read", "reading records", unit="rows") as t: t.advance(n)``."""
        task = self.start(name, message, total=total, unit=unit)
        try:
            yield task
        finally:
            task.finish()


#: The reporter used when none is given: every call is a no-op.
SILENT = ProgressReporter(None)


def reporter(progress: ProgressReporter | ProgressCallback | None) -> ProgressReporter:
    """A reporter from a reporter, a bare callback or ``None``."""
    if progress is None:
        return SILENT
    if isinstance(progress, ProgressReporter):
        return progress
    return ProgressReporter(progress)


# ---------------------------------------------------------------------------------------------
# Rendering on a console (the CLI, a script, a notebook)
# ---------------------------------------------------------------------------------------------
#: How :class:`ConsoleProgress` shows events.
MODES = ("auto", "bars", "lines", "off")


class ConsoleProgress:
    """Renders progress events on a `rich <https://rich.readthedocs.io>`_ console.

    Use it as the ``progress`` callback of any long step, inside a ``with`` block::

        with ConsoleProgress() as progress:
            ptsynth.release("cases.csv", "config.toml", "bundle/", progress=progress)

    Modes: ``"bars"`` draws one live bar per running task (rows and rows/s while reading, rounds
    while measuring, steps while estimating, sections while evaluating); when a task ends its
    bar is replaced by one line with the step and its duration (``transient`` bars, so no count
    read from the records stays in the scrollback). ``"lines"`` prints one plain line when a
    step starts and one when it ends (for logs: no counts, no control codes). ``"off"`` prints
    nothing. ``"auto"`` (default) is ``"bars"`` when the console is a terminal and ``"lines"``
    otherwise (a pipe, a CI log, a notebook).
    """

    def __init__(self, console: Any = None, *, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if console is None:
            from rich.console import Console

            console = Console(stderr=True, soft_wrap=True)
        self.console = console
        if mode == "auto":
            mode = "bars" if console.is_terminal and not console.is_dumb_terminal else "lines"
        self.mode = mode
        self._progress: Any = None
        self._active: dict[str, Any] = {}
        self._last_refresh = 0.0

    def __enter__(self) -> ConsoleProgress:
        if self.mode == "bars":
            from rich.progress import Progress

            self._progress = Progress(
                *_bar_columns(),
                console=self.console,
                transient=True,
                refresh_per_second=8,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._active.clear()

    def __call__(self, event: ProgressEvent) -> None:
        if self.mode == "off":
            return
        if self.mode == "lines" or self._progress is None:
            self._line(event)
            return
        progress = self._progress
        fields = {"unit": event.unit, "rate": event.rate}
        tid = self._active.get(event.task)
        now = time.monotonic()
        # The bars also refresh by themselves (8 times a second); a new task, and an update
        # after a quiet 0.1 s, are drawn at once.
        refresh = tid is None or now - self._last_refresh >= 0.1
        if tid is None:
            tid = progress.add_task(event.message, total=event.total,
                                    completed=event.completed or 0, **fields)
            self._active[event.task] = tid
        else:
            progress.update(tid, description=event.message, total=event.total,
                            completed=event.completed or 0, **fields)
        if event.finished:
            progress.remove_task(tid)
            del self._active[event.task]
            refresh = True
        if refresh:
            progress.refresh()
            self._last_refresh = now
        if event.finished:
            self._done(event)

    def _line(self, event: ProgressEvent) -> None:
        if event.finished:
            self._active.pop(event.task, None)
            self._done(event)
        elif event.task not in self._active:
            self._active[event.task] = True
            self.console.print(f"- {_escape(event.message)} …", highlight=False)

    def _done(self, event: ProgressEvent) -> None:
        mark = "✓" if self.mode == "bars" else "-"
        self.console.print(f"{mark} {_escape(event.message)}: done in {event.elapsed:.1f} s",
                           highlight=False)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _bar_columns() -> list[Any]:
    """The bar's columns (rich imported here, so ``import ptsynth`` does not pay for it)."""
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class CountColumn(ProgressColumn):
        """``3/24 rounds`` or ``12,000 rows``."""

        def render(self, task: Any) -> Text:
            unit = task.fields.get("unit") or ""
            if not unit and task.total is None:
                return Text("")
            done = f"{task.completed:,.0f}"
            text = f"{done}/{task.total:,.0f} {unit}" if task.total is not None else f"{done} {unit}"
            return Text(text.strip(), style="progress.download")

    class RateColumn(ProgressColumn):
        """``15,000 rows/s`` (rows only: a rate of rounds says little)."""

        def render(self, task: Any) -> Text:
            rate, unit = task.fields.get("rate"), task.fields.get("unit") or ""
            if rate is None or unit != "rows":
                return Text("")
            return Text(f"{rate:,.0f} {unit}/s", style="progress.data.speed")

    return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), CountColumn(),
            RateColumn(), TimeElapsedColumn()]


@contextmanager
def console_progress(console: Any = None, *, quiet: bool = False) -> Iterator[ProgressReporter]:
    """A reporter rendering on ``console`` (default: stderr): bars on a terminal, plain step
    lines elsewhere, nothing when ``quiet`` (see :class:`ConsoleProgress`)."""
    with ConsoleProgress(console, mode="off" if quiet else "auto") as display:
        yield ProgressReporter(display)
