"""Commands about the records themselves: demo data, a starter config, validation (no budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ptsynth.cli.common import err, guarded, out, warn
from ptsynth.cli.inputs import DATA_HELP, QUERY_HELP, TABLE_HELP, records_input
from ptsynth.errors import InputError


@guarded
def demo_data(
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV or Parquet file to write.")],
    rows: Annotated[int, typer.Option("--rows", min=100, max=10**7, help="Number of case records.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (the demo data are not sensitive).")] = 0,
) -> None:
    """Generate realistic CTDC-like case records (the built-in demo data; not real people)."""
    from ptsynth.demo import generate_demo

    try:
        generate_demo(rows, seed, output)
    except OSError as exc:
        raise InputError(f"cannot write the output file ({exc.strerror or type(exc).__name__})",
                         file=str(output)) from None
    out.print(f"wrote {rows} demo records to {output}")


@guarded
def init(
    data: Annotated[Path, typer.Argument(help="Data file to propose a starter schema from.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="TOML config to write (the review table goes beside it).")],
    preset: Annotated[str | None, typer.Option("--preset", help="Map the columns onto a standard preset by name: htcds, ctdc-v2024 or ctdc-demo (public domains).")] = None,
    propose_unmatched: Annotated[bool, typer.Option("--propose-unmatched", help="With --preset: propose the columns the preset lacks from the data (their domains then need confirming).")] = False,
) -> None:
    """Write a starter config and its review table. Domains proposed from the data MUST be
    confirmed as public; a preset's domains are public already."""
    from rich.table import Table

    from ptsynth.errors import ConfigError
    from ptsynth.ingest.propose import init_config, review_path_for

    if propose_unmatched and preset is None:
        raise ConfigError("needs --preset", key="--propose-unmatched")
    starter = init_config(data, output, preset=preset, propose_unmatched=propose_unmatched)
    table = Table(title=f"review: {output.name}" + (f" (preset {preset})" if preset else ""))
    for title in ("column", "kind", "domain size", "missing allowed", "QI", "domain from", "why"):
        table.add_column(title, overflow="fold")
    for r in starter.review:
        table.add_row(r.column, r.kind, "-" if r.domain_size is None else str(r.domain_size),
                      "-" if r.missing_allowed is None else ("yes" if r.missing_allowed else "no"),
                      "yes" if r.quasi_identifier else "no", r.domain_from, r.why)
    # a pipe or a log gets the whole table (the same one is in the review file)
    out.print(table, width=None if out.is_terminal else 160)
    for line in starter.warnings:
        warn(line)
    state = "domains_confirmed = true (preset domains)" if starter.domains_confirmed else \
        "domains_confirmed = false: confirm the domains before a release"
    out.print(f"wrote {output} ({state}) and {review_path_for(output)}")


@guarded
def validate(
    data: Annotated[str | None, typer.Argument(help=DATA_HELP, show_default=False)] = None,
    *,
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
    query: Annotated[str | None, typer.Option("--query", help=QUERY_HELP)] = None,
    table: Annotated[str | None, typer.Option("--table", help=TABLE_HELP)] = None,
) -> None:
    """Check records against the schema without spending budget or writing anything."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.ingest import read_records
    from ptsynth.release.pipeline import MIN_RECORDS_PER_NOISE_SD, expected_noise_sd

    cfg = ReleaseConfig.load(config)
    for line in cfg.warnings:
        warn(line)
    records = records_input(data, cfg, query=query, table=table)
    label = str(records) if isinstance(records, Path) else None
    # DP-bins columns are checked against their public candidate grid (nothing is measured)
    encoded = read_records(records, cfg.schema.with_candidate_grids(), file_label=label)
    if encoded.summary is not None:
        for line in encoded.summary.outside_domain_lines():  # private: the steward's terminal
            err.print(f"[bold yellow]NOTE (private):[/] {escape(line)}", highlight=False)
    out.print(f"ok: {encoded.n_records} persons, {len(cfg.schema.encoded_domains())} encoded columns")
    noise = expected_noise_sd(cfg)
    if encoded.n_records < MIN_RECORDS_PER_NOISE_SD * noise:
        warn(f"{encoded.n_records} persons is likely too few for epsilon={cfg.privacy.epsilon:g}: a "
             f"release refuses when its DP record count is below {MIN_RECORDS_PER_NOISE_SD:g} times "
             f"the noise sd of one count (about {noise:.3g} here); raise epsilon, or use fewer "
             "columns or a shorter reporting length")
