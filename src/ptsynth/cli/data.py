"""Commands about the records themselves: demo data, a starter config, validation (no budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ptsynth.cli.common import guarded, out, warn
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
    data: Annotated[Path, typer.Argument(help="Sensitive records to check against the schema.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
) -> None:
    """Check records against the schema without spending budget or writing anything."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.ingest import read_records
    from ptsynth.release.pipeline import MIN_RECORDS_PER_NOISE_SD, expected_noise_sd

    cfg = ReleaseConfig.load(config)
    for line in cfg.warnings:
        warn(line)
    table = read_records(data, cfg.schema, file_label=str(data))
    out.print(f"ok: {table.n_records} persons, {table.n_columns} encoded columns")
    noise = expected_noise_sd(cfg)
    if table.n_records < MIN_RECORDS_PER_NOISE_SD * noise:
        warn(f"{table.n_records} persons is likely too few for epsilon={cfg.privacy.epsilon:g}: a "
             f"release refuses when its DP record count is below {MIN_RECORDS_PER_NOISE_SD:g} times "
             f"the noise sd of one count (about {noise:.3g} here); raise epsilon, or use fewer "
             "columns or a shorter reporting length")
