"""Differentially private aggregates and synthetic microdata for human-trafficking case records.

The public API is small on purpose::

    import ptsynth
    cfg = ptsynth.ReleaseConfig.load("configs/ctdc_demo.toml")
    table = ptsynth.read_records("cases.csv", cfg.schema)          # validate + encode, no budget
    rel = ptsynth.release("cases.csv", cfg, "bundle/")             # the whole release
    db = ptsynth.PostgresQuery("postgresql://steward@db/casework", table="victims")
    rel = ptsynth.release(db, cfg, "bundle/")                      # straight from PostgreSQL
    ptsynth.assert_budget("bundle/", max_epsilon=1.0)              # for CI / pytest

Names are imported lazily so that ``import ptsynth`` stays fast for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Schema": "ptsynth.schema",
    "ReleaseConfig": "ptsynth.config",
    "read_records": "ptsynth.ingest",
    "SQLiteQuery": "ptsynth.ingest",
    "PostgresQuery": "ptsynth.ingest",
    "EncodedTable": "ptsynth.table",
    "release": None,  # the callable package ptsynth.release (runs release.pipeline.release)
    "plan": "ptsynth.release.pipeline",
    "Release": "ptsynth.release.pipeline",
    "Bundle": "ptsynth.release.bundle",
    "Accountant": "ptsynth.privacy",
    "Ledger": "ptsynth.privacy",
    "assert_budget": "ptsynth.privacy",
    "check_budget": "ptsynth.privacy",
    "secure_random": "ptsynth.privacy",
    "seeded_random": "ptsynth.privacy",
    "measure_aggregates": "ptsynth.aggregates",
    "AggregateSeededSynthesizer": "ptsynth.synth.aggregate_seeded",
    "PGMSynthesizer": "ptsynth.synth.pgm",
    "PGMOptions": "ptsynth.synth.pgm",
    "AggregateOptions": "ptsynth.synth.aggregate_seeded",
    "enforce_k_anonymity": "ptsynth.release.protect",
    "check_k_anonymity": "ptsynth.release.protect",
    "PtsynthError": "ptsynth.errors",
    "ConfigError": "ptsynth.errors",
    "InputError": "ptsynth.errors",
    "BundleError": "ptsynth.errors",
    "BudgetExceededError": "ptsynth.errors",
    "NotFittedError": "ptsynth.errors",
    "evaluate": "ptsynth.evaluate",
    "generate_demo": "ptsynth.demo",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ptsynth' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = import_module(f"ptsynth.{name}") if module is None else getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
