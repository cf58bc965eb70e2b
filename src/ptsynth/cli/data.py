"""Commands about the records themselves: demo data, a starter config, validation (no budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ptsynth.cli.common import guarded, out, warn
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
    output: Annotated[Path, typer.Option("-o", "--output", help="TOML config to write.")],
) -> None:
    """Write a starter config. Domains proposed from the data MUST be confirmed as public."""
    from ptsynth.ingest.propose import write_starter_config

    for line in write_starter_config(data, output):
        warn(line)
    out.print(f"wrote {output}")


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
    encoded = read_records(records, cfg.schema, file_label=label)
    out.print(f"ok: {encoded.n_records} persons, {encoded.n_columns} encoded columns")
    noise = expected_noise_sd(cfg)
    if encoded.n_records < MIN_RECORDS_PER_NOISE_SD * noise:
        warn(f"{encoded.n_records} persons is likely too few for epsilon={cfg.privacy.epsilon:g}: a "
             f"release refuses when its DP record count is below {MIN_RECORDS_PER_NOISE_SD:g} times "
             f"the noise sd of one count (about {noise:.3g} here); raise epsilon, or use fewer "
             "columns or a shorter reporting length")
