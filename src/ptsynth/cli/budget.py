"""``ptsynth budget check``: a CI gate on a release's privacy ledger.

Why a command of its own: a pipeline must be able to refuse to publish a release whose ledger is
over budget or has been edited, without running Python code. Exit codes: 0 within budget, 1 over
budget, 2 ledger missing, invalid or tampered. The library twins are
:func:`ptsynth.privacy.check_budget` and :func:`ptsynth.privacy.assert_budget`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ptsynth.cli.common import guarded
from ptsynth.privacy.ledger import DatasetLedger, Ledger, check_budget

budget_app = typer.Typer(
    help="Inspect and gate privacy budgets (the hash-chained budget.json ledger).",
    no_args_is_help=True,
)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.6g}"


def _render(console: Console, ledger: Ledger) -> None:
    tot = Table(title="Totals", show_header=True)
    for col in ("", "epsilon", "delta", "rho"):
        tot.add_column(col)
    tot.add_row("spent", _fmt(ledger.total["epsilon"]), _fmt(ledger.total["delta"]),
                _fmt(ledger.total["rho"]))
    if ledger.target:
        tot.add_row("target", _fmt(ledger.target.get("epsilon")), _fmt(ledger.target.get("delta")),
                    _fmt(ledger.target.get("rho")))
    console.print(tot)
    console.print(f"privacy unit: {escape(ledger.privacy_unit)}")
    console.print(f"neighbouring: {escape(ledger.neighbouring)}")
    ent = Table(title=f"Entries ({len(ledger.entries)})", show_header=True)
    for col in ("#", "release", "query", "mechanism", "sens.", "scale", "rho", "epsilon",
                "seeded"):
        ent.add_column(col)
    for e in ledger.entries:
        sens = "" if e.sensitivity is None else f"{e.sensitivity:g} {e.sensitivity_norm or ''}"
        ent.add_row(str(e.index), escape(e.release_id or ""), escape(e.query), escape(e.mechanism),
                    escape(sens.strip()),
                    _fmt(e.noise_scale), _fmt(e.rho), _fmt(e.epsilon),
                    "[bold red]yes[/]" if e.seeded else "no")
    console.print(ent)


@budget_app.command("check")
@guarded
def check(
    path: Annotated[Path, typer.Argument(help="budget.json, or a release folder holding it.")],
    max_epsilon: Annotated[float, typer.Option("--max-epsilon", help="Largest acceptable ε.")],
    max_delta: Annotated[
        float | None,
        typer.Option("--max-delta", help="δ at which to state ε (default: the ledger's own δ)."),
    ] = None,
    allow_seeded: Annotated[
        bool,
        typer.Option("--allow-seeded", help="Accept a seeded TEST ledger (test pipelines only)."),
    ] = False,
) -> None:
    """Verify a ledger (hash chain, totals) and exit 0 within budget, 1 over, 2 invalid or a
    seeded test bundle. On a dataset ledger, also list the reservations of running or killed
    releases (settle those of dead runs with `ptsynth budget recover`)."""
    console = Console(width=160)
    res = check_budget(path, max_epsilon, max_delta, allow_seeded=allow_seeded)
    if res.ledger is not None:
        _render(console, res.ledger)
        if res.seeded:
            console.print("[bold red]warning:[/] seeded randomness used: NOT FOR RELEASE")
        for entry in res.open_reservations:
            state = _owner_state(entry)
            console.print(f"[bold yellow]open reservation:[/] release {escape(str(entry.release_id))} "
                          f"(rho={entry.rho:.6g}) — {state}", highlight=False)
    style = {0: "green", 1: "bold red", 2: "bold red"}[res.status]
    console.print(f"[{style}]{escape(res.message)}[/]", highlight=False)
    raise typer.Exit(code=res.status)


def _owner_state(entry) -> str:
    from ptsynth.release.recovery import alive

    info = entry.detail or {}
    state = alive(info) if info else None
    if state is True:
        return "its process is still running"
    if state is False:
        return "its process is gone (killed?): `ptsynth budget recover` settles it"
    return "owner unknown or on another host"


@budget_app.command("recover")
@guarded
def recover(
    path: Annotated[Path, typer.Argument(help="The dataset ledger.")],
    force: Annotated[bool, typer.Option("--force", help="Also settle reservations whose owner cannot be checked (another host, no owner recorded) — only once you know they are not running.")] = False,
) -> None:
    """Settle reservations of killed releases: refund when no bundle of that release exists
    (nothing was published), charge otherwise; delete their staging folders."""
    from ptsynth.release.recovery import recover as settle

    console = Console(width=160)
    done = settle(path, force=force)
    if not done:
        console.print("no open reservations")
    for s in done:
        console.print(f"release {escape(s.release_id)}: {escape(s.action)} ({escape(s.reason)})",
                      highlight=False)


@budget_app.command("init")
@guarded
def init(
    path: Annotated[Path, typer.Argument(help="Dataset ledger file to create.")],
    lifetime_epsilon: Annotated[float, typer.Option("--lifetime-epsilon", help="The dataset's total ε, for all releases.")],
    lifetime_delta: Annotated[float, typer.Option("--lifetime-delta", help="The dataset's total δ.")],
) -> None:
    """Create a dataset's lifetime ledger once; releases naming it then refuse to go over it."""
    console = Console()
    led = DatasetLedger.create(path, lifetime_epsilon=lifetime_epsilon, lifetime_delta=lifetime_delta)
    console.print(
        f"created {escape(str(led.path))}: lifetime ε={lifetime_epsilon:g}, δ={lifetime_delta:g} "
        f"(ρ={led.lifetime_rho:.6g})", highlight=False,
    )
