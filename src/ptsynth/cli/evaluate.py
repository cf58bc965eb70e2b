"""``ptsynth evaluate``: the private utility and disclosure-risk report of synthetic records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ptsynth.cli.common import QUIET_HELP, guarded, out, progress_display


@guarded
def evaluate(
    real: Annotated[Path, typer.Argument(help="The real (sensitive) records.")],
    synthetic: Annotated[Path, typer.Argument(help="The synthetic records to assess.")],
    config: Annotated[Path, typer.Option("--config", "-c", help="Release config (TOML).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.json and report.html.")],
    holdout: Annotated[Path | None, typer.Option("--holdout", help="Real records not used for training.")] = None,
    ledger: Annotated[Path | None, typer.Option("--ledger", help="budget.json to show in the report.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the attack simulations.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)] = False,
) -> None:
    """Utility and disclosure-risk report (private: computed against the real records)."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.evaluate import evaluate
    from ptsynth.ingest import read_records
    from ptsynth.report import write_html_report, write_json_report

    cfg = ReleaseConfig.load(config)
    ledger_dict = None
    if ledger is not None:
        from ptsynth.privacy import Ledger

        ledger_dict = Ledger.load(ledger).to_dict()
    with progress_display(quiet) as progress:
        real_t = read_records(real, cfg.schema, file_label=str(real), progress=progress)
        synth_t = read_records(synthetic, cfg.schema, file_label=str(synthetic), progress=progress)
        hold_t = (read_records(holdout, cfg.schema, file_label=str(holdout), progress=progress)
                  if holdout else None)
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
            progress=progress,
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_report(report, out_dir / "report.json")
    write_html_report(report, out_dir / "report.html")
    out.print(f"wrote {out_dir / 'report.json'} and {out_dir / 'report.html'} (private: for the data steward)")
