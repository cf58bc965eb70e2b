"""``ptsynth release``: the whole release, or its plan (``--plan``, reads no data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ptsynth.cli.common import QUIET_HELP, err, guarded, out, progress_display, warn
from ptsynth.cli.inputs import DATA_HELP, QUERY_HELP, TABLE_HELP, records_input
from ptsynth.errors import ConfigError
from ptsynth.synth import registry

#: Columns of the per-length plan worth a person's attention (the rest is in the JSON plan).
_AGGREGATE_PLAN_COLUMNS = {
    "length": "length",
    "rho": "rho",
    "sigma": "noise sd of one count",
    "sensitivity": "L2 sensitivity",
    "threshold": "threshold",
    "n_column_sets": "column sets",
}


def print_plan(plan: dict[str, Any]) -> None:
    out.print(
        f"target epsilon={plan['epsilon']:g}, delta={plan['delta']:g} "
        f"-> rho={plan['rho']:.6g} (zCDP; Canonne-Kamath-Steinke conversion)"
    )
    out.print(f"synthesizer: {plan['synthesizer']}; {plan['columns']} encoded columns; k={plan['k']}")
    if plan.get("dp_bins"):
        bins = Table(title="DP bin edges (measured before encoding; no data read now)")
        for title in ("step", "rho", "edges", "eps per edge", "grid points"):
            bins.add_column(title)
        for row in plan["dp_bins"]:
            bins.add_row(row["step"], f"{row['rho']:.4g}", str(row["measurements"]),
                         f"{row['epsilon_per_edge']:.4g}", str(row["candidates"]))
        out.print(bins)
        for row in plan["dp_bins"]:
            out.print(f"- {row['step']}: {row['note']}", highlight=False)
        out.print(f"synthesizer budget: rho={plan['rho_synthesizer']:.6g} (the rest)")
    if plan.get("lengths"):
        rows = plan["lengths"]
        first = rows[0]
        out.print(
            f"record count: rho={first['record_count_rho']:.4g}, noise sd {first['record_count_sigma']:.3g}; "
            f"contribution bound: {first['max_attributes_source']} (rho={first.get('quantile_rho', 0):.4g}); "
            f"sd and sensitivity below are shown at the public cap of {first['max_attributes']} attributes "
            "(upper bounds)"
        )
        columns = _AGGREGATE_PLAN_COLUMNS
    else:
        rows = plan.get("steps") or []
        columns = {key: key for key in (rows[0] if rows else {})}
    if not rows:
        return
    table = Table(title="budget split and expected noise (no data read)")
    for title in columns.values():
        table.add_column(title)
    for row in rows:
        table.add_row(*[f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k]) for k in columns])
    out.print(table)


@guarded
def release(
    data: Annotated[str | None, typer.Argument(help=DATA_HELP, show_default=False)] = None,
    *,
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
    query: Annotated[str | None, typer.Option("--query", help=QUERY_HELP)] = None,
    table: Annotated[str | None, typer.Option("--table", help=TABLE_HELP)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle folder to create.")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="Override privacy.epsilon.")] = None,
    delta: Annotated[float | None, typer.Option("--delta", help="Override privacy.delta.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Minimum count of any released combination.")] = None,
    synthesizer: Annotated[str | None, typer.Option("--synthesizer", help=f"{' | '.join(registry.names())} (default {registry.DEFAULT}; `ptsynth synthesizers` describes them).")] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="Synthetic records to draw (default: DP record count).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="TEST ONLY: seeded noise, bundle marked not for release.")] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="Where records are read and counted: local (default) or spark (overrides [dataset.backend]).")] = None,
    plan_only: Annotated[bool, typer.Option("--plan", help="Print the budget split and expected noise; read no data.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing bundle folder.")] = False,
    allow_unconfirmed_domains: Annotated[bool, typer.Option("--allow-unconfirmed-domains", help="Trial run on domains proposed from the data; bundle marked NOT FOR RELEASE.")] = False,
    no_evaluate: Annotated[bool, typer.Option("--no-evaluate", help="Skip the (private) evaluation report.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Run a release: DP aggregates, synthetic records, k-anonymity, ledger, reports, manifest."""
    from ptsynth.release.pipeline import plan, release

    if plan_only:
        result = plan(config, epsilon=epsilon, delta=delta, synthesizer=synthesizer)
        for line in result.get("warnings", []):
            warn(line)
        print_plan(result)
        return
    if out_dir is None:
        raise ConfigError("is required unless --plan is given", key="--out")
    records = records_input(data, config, query=query, table=table)
    with progress_display(quiet) as progress:
        result = release(
            records,
            config,
            out_dir,
            epsilon=epsilon,
            delta=delta,
            k=k,
            synthesizer=synthesizer,
            rows=rows,
            seed=seed,
            backend=backend,
            overwrite=overwrite,
            allow_unconfirmed_domains=allow_unconfirmed_domains,
            evaluate_release=not no_evaluate,
            progress=progress,
        )
    for line in result.warnings:
        warn(line)
    for line in result.notes:
        err.print(f"[bold yellow]NOTE (private, not in the bundle):[/] {escape(line)}", highlight=False)
    out.print(
        f"release {result.manifest['release_id']}: {len(result.synthetic)} synthetic records, "
        f"epsilon={result.epsilon:.4g}, delta={result.delta:.3g} -> {result.out_dir}"
    )
