"""The ``ptsynth`` command line: thin commands over the library.

Exit codes mean something to CI: 0 success; 1 a privacy budget would be (or was) exceeded;
2 bad input, bad config or an invalid/tampered ledger. Error messages come from the library
and never contain a value read from a sensitive record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ptsynth.cli_budget import budget_app
from ptsynth.errors import PtsynthError

app = typer.Typer(
    name="ptsynth",
    help=(
        "Differentially private aggregates and synthetic microdata for human-trafficking case "
        "records. Privacy unit: one person; neighbouring datasets differ by one person's record."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(budget_app, name="budget", help="Inspect and assert privacy-budget ledgers (for CI).")

err = Console(stderr=True, soft_wrap=True)  # messages stay on one line in logs
out = Console(soft_wrap=True)


def _fail(exc: PtsynthError) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
    raise typer.Exit(code=exc.exit_code)


@app.command("demo-data")
def demo_data(
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV or Parquet file to write.")],
    rows: Annotated[int, typer.Option("--rows", min=100, max=10**7, help="Number of case records.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (the demo data are not sensitive).")] = 0,
) -> None:
    """Generate realistic CTDC-like case records (the built-in demo data; not real people)."""
    from ptsynth.demo import generate_demo

    generate_demo(rows, seed, output)
    out.print(f"wrote {rows} demo records to {output}")


@app.command("init")
def init(
    data: Annotated[Path, typer.Argument(help="Data file to propose a starter schema from.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="TOML config to write.")],
) -> None:
    """Write a starter config. Domains proposed from the data MUST be confirmed as public."""
    from ptsynth.init_config import write_starter_config

    try:
        warnings = write_starter_config(data, output)
    except PtsynthError as exc:
        _fail(exc)
    for line in warnings:
        err.print(f"[bold yellow]WARNING:[/] {line}", highlight=False)
    out.print(f"wrote {output}")


@app.command("validate")
def validate(
    data: Annotated[Path, typer.Argument(help="Sensitive records to check against the schema.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
) -> None:
    """Check records against the schema without spending budget or writing anything."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.records import read_records

    try:
        cfg = ReleaseConfig.load(config)
        table = read_records(data, cfg.schema, file_label=str(data))
    except PtsynthError as exc:
        _fail(exc)
    out.print(f"ok: {table.n_records} persons, {table.n_columns} encoded columns")


#: Columns of the per-length plan worth a person's attention (the rest is in the JSON plan).
_AGGREGATE_PLAN_COLUMNS = {
    "length": "length",
    "rho": "rho",
    "sigma": "noise sd of one count",
    "sensitivity": "L2 sensitivity",
    "threshold": "threshold",
    "n_column_sets": "column sets",
}


def _print_plan(plan: dict) -> None:
    out.print(
        f"target epsilon={plan['epsilon']:g}, delta={plan['delta']:g} "
        f"-> rho={plan['rho']:.6g} (zCDP; Canonne-Kamath-Steinke conversion)"
    )
    out.print(f"synthesizer: {plan['synthesizer']}; {plan['columns']} encoded columns; k={plan['k']}")
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


@app.command("release")
def release_cmd(
    data: Annotated[Path, typer.Argument(help="Sensitive records (CSV/TSV/Parquet/Arrow).")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle folder to create.")] = None,
    epsilon: Annotated[float | None, typer.Option("--epsilon", help="Override privacy.epsilon.")] = None,
    delta: Annotated[float | None, typer.Option("--delta", help="Override privacy.delta.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="Minimum count of any released combination.")] = None,
    synthesizer: Annotated[str | None, typer.Option("--synthesizer", help="aggregate | pgm")] = None,
    rows: Annotated[int | None, typer.Option("--rows", help="Synthetic records to draw (default: DP record count).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="TEST ONLY: seeded noise, bundle marked not for release.")] = None,
    plan_only: Annotated[bool, typer.Option("--plan", help="Print the budget split and expected noise; read no data.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing bundle folder.")] = False,
    allow_unconfirmed_domains: Annotated[bool, typer.Option("--allow-unconfirmed-domains", help="Trial run on domains proposed from the data; bundle marked NOT FOR RELEASE.")] = False,
    no_evaluate: Annotated[bool, typer.Option("--no-evaluate", help="Skip the (private) evaluation report.")] = False,
) -> None:
    """Run a release: DP aggregates, synthetic records, k-anonymity, ledger, reports, manifest."""
    from ptsynth.pipeline import plan, release

    try:
        if plan_only:
            _print_plan(plan(config, epsilon=epsilon, delta=delta, synthesizer=synthesizer))
            return
        if out_dir is None:
            raise typer.BadParameter("--out is required unless --plan is given")
        with err.status("starting") as status:
            result = release(
                data,
                config,
                out_dir,
                epsilon=epsilon,
                delta=delta,
                k=k,
                synthesizer=synthesizer,
                rows=rows,
                seed=seed,
                overwrite=overwrite,
                allow_unconfirmed_domains=allow_unconfirmed_domains,
                evaluate_release=not no_evaluate,
                progress=lambda msg: (status.update(msg), err.print(f"- {msg}", highlight=False)),
            )
    except PtsynthError as exc:
        _fail(exc)
    for line in result.warnings:
        err.print(f"[bold yellow]WARNING:[/] {line}", highlight=False)
    out.print(
        f"release {result.manifest['release_id']}: {len(result.synthetic)} synthetic records, "
        f"epsilon={result.epsilon:.4g}, delta={result.delta:.3g} -> {result.out_dir}"
    )


@app.command("evaluate")
def evaluate_cmd(
    real: Annotated[Path, typer.Argument(help="The real (sensitive) records.")],
    synthetic: Annotated[Path, typer.Argument(help="The synthetic records to assess.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and report.html.")],
    holdout: Annotated[Path | None, typer.Option("--holdout", help="Real records not used for training.")] = None,
    ledger: Annotated[Path | None, typer.Option("--ledger", help="budget.json to show in the report.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the attack simulations.")] = 0,
) -> None:
    """Utility and disclosure-risk report (private: computed against the real records)."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.evaluate import evaluate
    from ptsynth.records import read_records
    from ptsynth.report import write_html_report, write_json_report

    try:
        cfg = ReleaseConfig.load(config)
        real_t = read_records(real, cfg.schema, file_label=str(real))
        synth_t = read_records(synthetic, cfg.schema, file_label=str(synthetic))
        hold_t = read_records(holdout, cfg.schema, file_label=str(holdout)) if holdout else None
        ledger_dict = None
        if ledger is not None:
            from ptsynth.privacy import Ledger

            ledger_dict = Ledger.load(ledger).to_dict()
    except PtsynthError as exc:
        _fail(exc)
    report = evaluate(
        real_t,
        synth_t,
        holdout=hold_t,
        quasi_identifiers=list(cfg.schema.quasi_identifiers),
        sensitive=list(cfg.schema.sensitive),
        target=cfg.evaluation.target,
        ledger=ledger_dict,
        reporting_length=cfg.release.reporting_length,
        k=cfg.release.k,
        seed=seed,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_report(report, out_dir / "report.json")
    write_html_report(report, out_dir / "report.html")
    out.print(f"wrote {out_dir / 'report.json'} and {out_dir / 'report.html'} (private: for the data steward)")


@app.command("version")
def version() -> None:
    """Print the version."""
    from ptsynth import __version__

    out.print(json.dumps({"ptsynth": __version__, "python": sys.version.split()[0]}))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # python -m ptsynth.cli
    app()
