"""The release pipeline: config in, bundle out (`ptsynth.release`, `ptsynth release`).

Why one orchestration module: the order of steps *is* the privacy argument, so each step is a
function below and :func:`release` only calls them in order:

1. :func:`prepare` — the config with overrides, checked; warnings; nothing read.
2. the dataset's lifetime budget is **reserved** before a single record is read;
3. :func:`read` — records validated and encoded (:mod:`ptsynth.ingest`);
4. :func:`split_holdout` — persons kept out for the private evaluation, never measured;
5. :func:`measure` — the only step that spends budget: the synthesizer fits on counts from a
   :class:`~ptsynth.counting.CountingBackend`, through the :class:`~ptsynth.privacy.Accountant`;
6. :func:`synthesize` and :func:`protect` — post-processing of noisy values: sampling and
   k-anonymity on the quasi-identifiers;
7. :func:`evaluate_privately` — compares with the real records, so marked *private*;
8. the bundle is written to a staging folder (:class:`~ptsynth.release.bundle.BundleWriter`),
   the ledger committed, and the folder moved into place in one rename, so a failure leaves
   nothing behind that could be mistaken for a release.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptsynth.aggregates import AggregateRelease
from ptsynth.config import ReleaseConfig
from ptsynth.counting import CountingBackend, NumpyBackend, prf
from ptsynth.errors import ConfigError, InputError
from ptsynth.ingest import read_records
from ptsynth.privacy import (
    Accountant,
    DatasetLedger,
    Ledger,
    RandomSource,
    random_source,
    rho_from_epsilon_delta,
)
from ptsynth.progress import SILENT, ProgressCallback, ProgressReporter, reporter
from ptsynth.release.bundle import (
    AGGREGATES_CSV,
    AGGREGATES_PARQUET,
    LEDGER,
    MANIFEST,
    REPORT_HTML,
    REPORT_JSON,
    SYNTHETIC,
    BundleWriter,
    check_output_folder,
)
from ptsynth.release.manifest import build_manifest, json_default
from ptsynth.release.protect import check_k_anonymity, enforce_k_anonymity
from ptsynth.synth import registry
from ptsynth.synth.base import Synthesizer
from ptsynth.table import EncodedTable

#: A release is refused when its DP record count is below this many standard deviations of
#: the noise on one released count: every count would then be mostly noise.
MIN_RECORDS_PER_NOISE_SD = 3.0


@dataclass
class Release:
    """What :func:`release` produced; the files are in :attr:`out_dir`."""

    out_dir: Path
    synthetic: pd.DataFrame
    aggregates: AggregateRelease | None
    ledger: Ledger
    report: dict[str, Any]
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def epsilon(self) -> float:
        return float(self.ledger.total["epsilon"])

    @property
    def delta(self) -> float:
        return float(self.ledger.total["delta"])

    def __repr__(self) -> str:  # a notebook shows this
        return (
            f"Release({str(self.out_dir)!r}, synthetic={len(self.synthetic)} records, "
            f"epsilon={self.epsilon:.4g}, delta={self.delta:.3g})"
        )


# ---------------------------------------------------------------------------------------------
# 1. the config, checked before anything else
# ---------------------------------------------------------------------------------------------
def prepare(
    config: str | Path | ReleaseConfig,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    k: int | None = None,
    synthesizer: str | None = None,
    rows: int | None = None,
) -> ReleaseConfig:
    """The config with the command-line overrides applied and checked (reads no data)."""
    cfg = config if isinstance(config, ReleaseConfig) else ReleaseConfig.load(config)
    if synthesizer is not None:
        registry.get(synthesizer)  # a ConfigError listing the names
    for key, value in (("--epsilon", epsilon), ("--delta", delta)):
        if value is not None and not (isinstance(value, (int, float)) and np.isfinite(value)):
            raise ConfigError("must be a finite number", key=key)
    privacy = replace(
        cfg.privacy,
        **{key: float(v) for key, v in (("epsilon", epsilon), ("delta", delta)) if v is not None},
    )
    options = {"k": k, "synthesizer": synthesizer, "rows": rows}
    release_opts = replace(cfg.release, **{key: v for key, v in options.items() if v is not None})
    cfg = replace(cfg, privacy=privacy, release=release_opts)
    if not cfg.privacy.epsilon > 0:
        raise ConfigError("must be a positive number", key="privacy.epsilon")
    if not (0 < cfg.privacy.delta < 1):
        raise ConfigError("must lie strictly between 0 and 1", key="privacy.delta")
    if cfg.release.k < 1:
        raise ConfigError("must be at least 1", key="release.k")
    if cfg.release.rows is not None and cfg.release.rows < 1:
        raise ConfigError("must be at least 1", key="release.rows")
    return cfg


def with_backend(cfg: ReleaseConfig, backend: str) -> ReleaseConfig:
    """The config with ``[dataset.backend] name`` replaced (``--backend``)."""
    from ptsynth.config import BACKENDS

    if backend not in BACKENDS:
        raise ConfigError(f"must be one of {', '.join(BACKENDS)}", key="--backend")
    return replace(cfg, dataset=replace(cfg.dataset, backend=replace(cfg.dataset.backend,
                                                                     name=backend)))


def plan(
    config: str | Path | ReleaseConfig,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    synthesizer: str | None = None,
) -> dict[str, Any]:
    """The budget split and the expected noise per step, from the config alone (no data read)."""
    cfg = prepare(config, epsilon=epsilon, delta=delta, synthesizer=synthesizer)
    rho = rho_from_epsilon_delta(cfg.privacy.epsilon, cfg.privacy.delta)
    domains = cfg.schema.encoded_domains()
    result: dict[str, Any] = {
        "epsilon": cfg.privacy.epsilon,
        "delta": cfg.privacy.delta,
        "rho": rho,
        "synthesizer": cfg.release.synthesizer,
        "reporting_length": cfg.release.reporting_length,
        "k": cfg.release.k,
        "columns": len(domains),
    }
    result.update(
        registry.get(cfg.release.synthesizer).plan_release(
            domains, rho=rho, options=cfg.release.options,
            reporting_length=cfg.release.reporting_length, k=cfg.release.k,
        )
    )
    return result


def _warnings(cfg: ReleaseConfig, rng: RandomSource, seed: int | None,
              allow_unconfirmed_domains: bool) -> list[str]:
    warnings: list[str] = []
    if not cfg.dataset.domains_confirmed:
        if not (allow_unconfirmed_domains or seed is not None):
            raise ConfigError(
                "the config's domains were proposed from the data (`ptsynth init`) and are not "
                "confirmed public: a value read from the records without budget would be published "
                "through the domain. Replace them with public code lists and set "
                "dataset.domains_confirmed = true (or pass --allow-unconfirmed-domains for a "
                "NOT FOR RELEASE trial run)"
            )
        warnings.append(
            "domains were proposed from the data and are not confirmed public: values read from "
            "the data without budget may be disclosed by the domain itself: NOT FOR RELEASE"
        )
    if cfg.dataset.ledger is None:
        warnings.append(
            "no dataset-level ledger configured: the lifetime budget across releases of this "
            "dataset is not enforced (set dataset.ledger; create it with `ptsynth budget init`)"
        )
    if not rng.secure:
        warnings.append(
            f"noise drawn from a seeded generator (seed {seed}): reproducible, NOT FOR RELEASE"
        )
    return warnings


# ---------------------------------------------------------------------------------------------
# 3-7. the steps that touch records, then post-processing
# ---------------------------------------------------------------------------------------------
def read(data: str | Path | pd.DataFrame | Any, cfg: ReleaseConfig,
         progress: ProgressReporter = SILENT) -> EncodedTable | CountingBackend:
    """Validated, encoded records (InputError names file / row / column / rule, never a value).

    With ``[dataset.backend] name = "spark"`` the records are read, encoded and merged by Spark
    where they lie and stay there (:mod:`ptsynth.ingest.spark`): the result is a
    :class:`~ptsynth.counting.spark_backend.SparkBackend`, asked only for counts.
    """
    label = str(data) if isinstance(data, (str, Path)) else None
    if cfg.dataset.backend.name == "spark":
        return _read_spark(data, cfg, label, progress)
    table = read_records(data, cfg.schema, file_label=label, progress=progress)
    if table.n_records < 2:
        raise InputError("too few records for a release (need at least 2 persons)", file=label)
    return table


def _read_spark(data: Any, cfg: ReleaseConfig, label: str | None,
                progress: ProgressReporter) -> CountingBackend:
    from ptsynth.ingest.spark import SparkSettings, read_spark, spark_session

    if not isinstance(data, (str, Path)):
        raise InputError("the Spark backend reads a path or table:<name>, not an in-memory table")
    b = cfg.dataset.backend
    spark = spark_session(SparkSettings(master=b.master, conf=dict(b.conf),
                                        partitions=b.partitions))
    with progress.task("read", "reading and validating records (Spark)", unit="rows"):
        records = read_spark(str(data), cfg.schema, spark, file_label=label,
                             partitions=b.partitions)
    if records.record_count() < 2:
        raise InputError("too few records for a release (need at least 2 persons)", file=label)
    return records


def split_holdout(
    records: CountingBackend | EncodedTable, fraction: float, rng: RandomSource
) -> tuple[CountingBackend, CountingBackend | None]:
    """``(measured, holdout)``: the holdout is never measured nor released; it only serves the
    private evaluation (DCR and ML efficacy against unseen records).

    Each person goes to the holdout with probability ``fraction``, decided by a keyed PRF of
    the record (key from ``rng``; :mod:`ptsynth.counting.prf`), so the split does not depend on
    the order records are stored in and every backend makes the same one.
    """
    records = NumpyBackend(records) if isinstance(records, EncodedTable) else records
    if fraction <= 0:
        return records, None
    return records.split(fraction, prf.draw_key(rng))


def measure(cfg: ReleaseConfig, train: CountingBackend | EncodedTable, accountant: Accountant,
            progress: ProgressReporter = SILENT) -> Synthesizer:
    """Fit the configured synthesizer: the only step that spends budget."""
    synth = cfg.release.create_synthesizer()
    train = NumpyBackend(train) if isinstance(train, EncodedTable) else train
    synth.fit(train, accountant, progress=progress)
    refuse_if_noise_dominates(int(max(round(synth.dp_record_count), 1)), accountant)
    return synth


def refuse_if_noise_dominates(dp_records: int, accountant: Accountant) -> None:
    """Refuse "too few records for the requested budget", judged on DP outputs only."""
    sigmas = [
        float(e.noise_scale)
        for e in accountant.entries
        if e.mechanism == "discrete_gaussian" and e.query != "record count"
    ]
    if not sigmas:
        return
    noise_sd = float(np.median(sigmas))
    if dp_records < MIN_RECORDS_PER_NOISE_SD * noise_sd:
        raise InputError(
            "too few records for the requested budget: the DP record count is below "
            f"{MIN_RECORDS_PER_NOISE_SD:g} times the noise standard deviation of one count "
            f"({noise_sd:.3g}), so released counts would be mostly noise; raise epsilon, use "
            "fewer columns or a shorter reporting length (the budget of this attempt is spent)"
        )


def synthesize(
    cfg: ReleaseConfig, synth: Synthesizer, rng: RandomSource, warnings: list[str]
) -> EncodedTable:
    """Synthetic records (post-processing): ``release.rows`` or the DP record count."""
    n_rows = cfg.release.rows or int(max(round(synth.dp_record_count), 1))
    synthetic = synth.sample(n_rows, rng)
    diagnostics = synth.diagnostics
    if not diagnostics.get("guarantee_holds_for_all_columns", True):
        warnings.append(
            "the aggregate-seeded sampler drew these columns outside its no-unreleased-"
            "combination guarantee (" + str(diagnostics.get("relaxed_reason")) + "): "
            + ", ".join(diagnostics.get("relaxed_columns", []))
        )
    return synthetic


def protect(
    cfg: ReleaseConfig, synthetic: EncodedTable, rng: RandomSource
) -> tuple[EncodedTable, dict[str, Any]]:
    """k-anonymity on the quasi-identifiers for every combination up to the reporting length."""
    qis = list(cfg.schema.quasi_identifiers)
    protection: dict[str, Any] = {"quasi_identifiers": qis, "k": cfg.release.k}
    if not qis:
        return synthetic, protection
    synthetic, protection = enforce_k_anonymity(
        synthetic, qis, k=cfg.release.k, reporting_length=cfg.release.reporting_length, rng=rng
    )
    final = check_k_anonymity(
        synthetic, qis, k=cfg.release.k, reporting_length=cfg.release.reporting_length
    )
    if not final["ok"]:  # a bug, never a data-dependent message
        raise RuntimeError("k-anonymity check failed after enforcement; nothing written")
    protection["final_check"] = final
    return synthetic, protection


def evaluate_privately(
    cfg: ReleaseConfig,
    train: CountingBackend | EncodedTable,
    synthetic: EncodedTable,
    holdout: CountingBackend | EncodedTable | None,
    aggregates: AggregateRelease,
    ledger: Ledger,
) -> dict[str, Any]:
    """Utility and disclosure risk against the real records: for the data steward only.

    Above :data:`~ptsynth.evaluate.sampling.EVAL_MAX_RECORDS` records of a kind, on a uniform
    random sample of that many, with the sampling error stated in the report's
    ``evaluation_sample`` section (:mod:`ptsynth.evaluate.sampling`).
    """
    from ptsynth.evaluate import evaluate
    from ptsynth.evaluate.sampling import EVAL_MAX_RECORDS, evaluation_key, sampling_section

    seed, cap = 0, EVAL_MAX_RECORDS
    key = evaluation_key(seed)
    train_b = NumpyBackend(train) if isinstance(train, EncodedTable) else train
    hold_b = NumpyBackend(holdout) if isinstance(holdout, EncodedTable) else holdout
    real = train_b.sample_table(cap, key)
    held = None if hold_b is None else hold_b.sample_table(cap, key)
    synth = NumpyBackend(synthetic).sample_table(cap, key)
    section = sampling_section(
        real, train_b.record_count(), synth, synthetic.n_records, held,
        None if hold_b is None else hold_b.record_count(), seed=seed, max_records=cap,
    )
    report = _evaluate_tables(cfg, real, synth, held, aggregates, ledger, seed, evaluate)
    report["evaluation_sample"] = section
    return report


def _evaluate_tables(cfg: ReleaseConfig, train: EncodedTable, synthetic: EncodedTable,
                     holdout: EncodedTable | None, aggregates: AggregateRelease, ledger: Ledger,
                     seed: int, evaluate: Any) -> dict[str, Any]:
    return evaluate(
        train,
        synthetic,
        holdout=holdout,
        quasi_identifiers=list(cfg.schema.quasi_identifiers),
        sensitive=list(cfg.schema.sensitive),
        target=cfg.evaluation.target,
        aggregates=aggregates,
        ledger=ledger.to_dict(),
        reporting_length=cfg.release.reporting_length,
        k=cfg.release.k,
        seed=seed,
    )


# ---------------------------------------------------------------------------------------------
# the release
# ---------------------------------------------------------------------------------------------
def release(
    data: str | Path | pd.DataFrame,
    config: str | Path | ReleaseConfig,
    out: str | Path,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    k: int | None = None,
    synthesizer: str | None = None,
    rows: int | None = None,
    seed: int | None = None,
    backend: str | None = None,
    evaluate_release: bool = True,
    overwrite: bool = False,
    allow_unconfirmed_domains: bool = False,
    progress: ProgressReporter | ProgressCallback | None = None,
) -> Release:
    """Run a whole release and write its bundle to ``out`` atomically.

    Args:
        data: the sensitive records (CSV/TSV/Parquet/Arrow path, a DataFrame, or a
            :class:`~ptsynth.ingest.RecordSource`).
        config: a release config (TOML path) or a loaded :class:`ReleaseConfig`.
        out: the bundle folder; must not exist unless ``overwrite``.
        seed: ``None`` (default) draws all noise from the operating system's CSPRNG. An
            integer makes the run reproducible **for tests only**; the ledger and manifest
            say so and such a bundle must not be published.
        allow_unconfirmed_domains: run although the config's domains were proposed from the
            data and not confirmed public; the bundle is then marked NOT FOR RELEASE. Without
            it such a config is refused (seeded test runs excepted, also NOT FOR RELEASE).
        backend: ``"local"`` or ``"spark"``: overrides ``[dataset.backend] name``.
        progress: a :class:`~ptsynth.progress.ProgressReporter` or a callback receiving
            :class:`~ptsynth.progress.ProgressEvent` s, one task per step.
    """
    progress = reporter(progress)
    cfg = prepare(config, epsilon=epsilon, delta=delta, k=k, synthesizer=synthesizer, rows=rows)
    if backend is not None:
        cfg = with_backend(cfg, backend)
    out_dir = Path(out)
    check_output_folder(out_dir, overwrite=overwrite)
    rng = random_source(seed)
    warnings = _warnings(cfg, rng, seed, allow_unconfirmed_domains)
    release_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    accountant = Accountant(cfg.privacy.epsilon, cfg.privacy.delta, rng=rng, release_id=release_id)

    # The staging folder is made before any budget is reserved, so a bad output path costs
    # nothing.
    with BundleWriter(out_dir, overwrite=overwrite) as writer:
        # 2. Budget first: reserve in the dataset's lifetime ledger before reading any record.
        dataset_ledger = None
        if cfg.dataset.ledger is not None:
            dataset_ledger = DatasetLedger(
                cfg.dataset.ledger,
                lifetime_epsilon=cfg.dataset.lifetime_epsilon,
                lifetime_delta=cfg.dataset.lifetime_delta,
                must_exist=True,
            )
            dataset_ledger.reserve(release_id, accountant.target_rho)
        committed = False
        try:
            table = read(data, cfg, progress)
            train, holdout = split_holdout(
                table, cfg.evaluation.holdout_fraction if evaluate_release else 0.0, rng
            )
            synth = measure(cfg, train, accountant, progress)
            with progress.task("sample", "sampling synthetic records"):
                synthetic = synthesize(cfg, synth, rng, warnings)
            with progress.task("protect", "enforcing k-anonymity on the quasi-identifiers"):
                synthetic, protection = protect(cfg, synthetic, rng)
            aggregates = synth.aggregates
            if aggregates is None:
                # Counted on the (already DP) synthetic records: post-processing, costs no budget.
                aggregates = AggregateRelease.from_table(
                    synthetic, reporting_length=cfg.release.reporting_length, k=cfg.release.k
                )
                aggregates_source = "counted on the synthetic records (post-processing, no extra budget)"
            else:
                aggregates_source = "measured with DP (per-length discrete Gaussian noise)"

            task = progress.start("write", "writing the bundle")
            cfg.schema.write_csv(synthetic, writer.path(SYNTHETIC))
            synthetic_frame = cfg.schema.decode(synthetic, categorical=True)
            aggregates.write_csv(writer.path(AGGREGATES_CSV))
            aggregates.write_parquet(writer.path(AGGREGATES_PARQUET))
            ledger = accountant.ledger()
            ledger.write(writer.path(LEDGER))

            provenance_key = secrets.token_bytes(32)
            report = _release_section(cfg, release_id, provenance_key, train, holdout, synthetic,
                                      table, aggregates, protection, synth, warnings)
            if evaluate_release:
                from ptsynth.report import write_html_report, write_json_report

                with progress.task("evaluate", "evaluating utility and disclosure risk (private)"):
                    evaluation = evaluate_privately(cfg, train, synthetic, holdout, aggregates, ledger)
                report = {**evaluation, **{key: v for key, v in report.items() if key not in evaluation}}
                write_json_report(report, writer.path(REPORT_JSON))
                write_html_report(report, writer.path(REPORT_HTML))
            else:
                writer.path(REPORT_JSON).write_text(json.dumps(report, indent=2, default=json_default))

            manifest = build_manifest(
                cfg, data=data, writer=writer, release_id=release_id, rng=rng, seed=seed,
                warnings=warnings, aggregates=aggregates, aggregates_source=aggregates_source,
                provenance_key=provenance_key, ledger_head_hash=ledger.head_hash,
            )
            writer.path(MANIFEST).write_text(json.dumps(manifest, indent=2, default=json_default))

            # 8. Commit: ledger first (the budget is spent whatever happens next), then the rename.
            if dataset_ledger is not None:
                try:
                    dataset_ledger.commit(release_id, ledger.entries)
                finally:
                    # Whatever commit raised, the reservation is resolved: never abort it again.
                    committed = True
            writer.commit()
            task.finish(message=f"release written to {out_dir}")
        except BaseException:
            if dataset_ledger is not None and not committed:
                # Data may have been touched: the reservation stays counted as spent.
                dataset_ledger.abort(release_id)
            raise
    return Release(
        out_dir=out_dir,
        synthetic=synthetic_frame,
        aggregates=aggregates,
        ledger=ledger,
        report=report,
        manifest=manifest,
        warnings=warnings,
    )


def _release_section(
    cfg: ReleaseConfig,
    release_id: str,
    provenance_key: bytes,
    train: CountingBackend,
    holdout: CountingBackend | None,
    synthetic: EncodedTable,
    table: EncodedTable | CountingBackend,
    aggregates: AggregateRelease,
    protection: dict[str, Any],
    synth: Synthesizer,
    warnings: list[str],
) -> dict[str, Any]:
    """The private report's release section: sizes, protection, the synthesizer's trace."""
    return {
        "schema_version": 1,
        "visibility": "private: computed against the real records; for the data steward only",
        "release_id": release_id,
        "provenance": {
            "key": provenance_key.hex(),
            "use": "manifest.json input.hmac_sha256 = HMAC-SHA256(key, input bytes): lets "
            "the steward check which input a bundle came from; keep the key private",
        },
        "release": {
            "sizes": {
                "real_records": train.record_count(),
                "holdout_records": 0 if holdout is None else holdout.record_count(),
                "synthetic_records": synthetic.n_records,
                "columns": len(table.domains),
                "aggregate_combinations": aggregates.by_length(),
            },
            "protection": protection,
            "synthesizer": {"name": cfg.release.synthesizer, **synth.diagnostics},
            "warnings": warnings,
        },
    }
