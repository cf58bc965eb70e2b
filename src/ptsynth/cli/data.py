"""Commands about the records themselves: demo data, a starter config, validation (no budget)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ptsynth.cli.common import guarded, out, warn


@guarded
def demo_data(
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV or Parquet file to write.")],
    rows: Annotated[int, typer.Option("--rows", min=100, max=10**7, help="Number of case records.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Generator seed (the demo data are not sensitive).")] = 0,
) -> None:
    """Generate realistic CTDC-like case records (the built-in demo data; not real people)."""
    from ptsynth.demo import generate_demo

    generate_demo(rows, seed, output)
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
    from ptsynth.ingest import ReadSummary, read_records

    cfg = ReleaseConfig.load(config)
    summary = ReadSummary()
    # DP-bins columns are checked against their public candidate grid (nothing is measured)
    table = read_records(data, cfg.schema.with_candidate_grids(), file_label=str(data),
                         summary=summary)
    for line in summary.lines():  # private: the steward's terminal only
        out.print(f"[steward] {line}", highlight=False)
    out.print(f"ok: {table.n_records} persons, {len(cfg.schema.encoded_domains())} encoded columns")
