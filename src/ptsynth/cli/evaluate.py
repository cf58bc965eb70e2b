"""``ptsynth evaluate``: the private utility and disclosure-risk report of synthetic records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ptsynth.cli.common import QUIET_HELP, guarded, out, progress_display


@guarded
def evaluate(
    real: Annotated[Path, typer.Argument(help="The real (sensitive) records.")],
    synthetic: Annotated[Path, typer.Argument(help="The synthetic records to assess: a release bundle folder, its synthetic.csv, or a file in the input's own format.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and report.html.")],
    holdout: Annotated[Path | None, typer.Option("--holdout", help="Real records not used for training.")] = None,
    ledger: Annotated[Path | None, typer.Option("--ledger", help="budget.json to show in the report (default: the bundle's own).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the attack simulations.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Utility and disclosure-risk report (private: computed against the real records)."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.ingest import read_records
    from ptsynth.release.pipeline import evaluate_privately
    from ptsynth.report import write_html_report, write_json_report

    cfg = ReleaseConfig.load(config)
    with progress_display(quiet) as progress:
        synth_t, bundle_ledger, schema = read_synthetic(synthetic, cfg)
        real_t = read_records(real, schema, file_label=str(real), progress=progress)
        hold_t = (read_records(holdout, schema, file_label=str(holdout), progress=progress)
                  if holdout else None)
        if ledger is not None:
            from ptsynth.privacy import Ledger

            bundle_ledger = Ledger.load(ledger)
        report = evaluate_privately(cfg, real_t, synth_t, hold_t, None, bundle_ledger,
                                    progress, seed=seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_report(report, out_dir / "report.json")
    write_html_report(report, out_dir / "report.html")
    out.print(f"wrote {out_dir / 'report.json'} and {out_dir / 'report.html'} (private: for the data steward)")


def read_synthetic(path: Path, cfg):
    """Synthetic records from a bundle folder, a bundle's ``synthetic.csv`` (released shape:
    bin and period labels, no subject id, neutralised formulas) or a file in the input's own
    shape; the bundle's ledger when there is one; and the schema to read the real records with
    (a bundle's own: DP bin edges resolved by the release)."""
    from ptsynth.errors import BundleError, ConfigError
    from ptsynth.ingest import read_records
    from ptsynth.release.bundle import Bundle, encode_released, read_public_csv

    if path.is_dir():
        bundle = Bundle.load(path)
        return bundle.synthetic_table, bundle.ledger, bundle.schema
    if cfg.schema.dp_bin_columns:
        raise ConfigError("has columns with bins = \"dp-quantiles\": give the bundle folder as "
                          "SYNTHETIC (its manifest holds the edges the release measured)",
                          key="synthetic")
    try:
        return (encode_released(read_public_csv(path), cfg.schema, label=str(path)), None,
                cfg.schema)
    except BundleError:
        return read_records(path, cfg.schema, file_label=str(path)), None, cfg.schema
