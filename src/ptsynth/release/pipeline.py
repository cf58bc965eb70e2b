"""The release pipeline: config in, bundle out (`ptsynth.release`, `ptsynth release`).

Why one orchestration module: the order of steps *is* the privacy argument, so each step is a
function below and :func:`release` only calls them in order:

1. :func:`prepare` — the config with overrides, checked; warnings; nothing read.
2. the dataset's lifetime budget is **reserved** before a single record is read;
3. :func:`read` — records validated and encoded (:mod:`ptsynth.ingest`);
3b. :func:`~ptsynth.release.dp_bins.resolve_dp_bins` — only for ``bins = "dp-quantiles"``
   columns (read on their public candidate grid): their edges are measured with DP (a declared
   share of the budget), the schema resolved and the table recoded onto the edges, so every
   later step sees public edges;
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

import contextlib
import json
import secrets
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptsynth.aggregates import AggregateRelease
from ptsynth.config import ReleaseConfig
from ptsynth.counting import CountingBackend, NumpyBackend, RecordBackend, prf
from ptsynth.errors import ConfigError, InputError, PtsynthError, SynthesisError, Terminated
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
    MODEL,
    REPORT_HTML,
    REPORT_JSON,
    SDV_METADATA,
    SYNTHETIC,
    SYNTHETIC_PARQUET,
    BundleWriter,
    check_output_folder,
)
from ptsynth.release.dp_bins import plan_dp_bins, read_schema, resolve_dp_bins
from ptsynth.release.manifest import build_manifest, json_default
from ptsynth.release.protect import Redraw, check_k_anonymity, enforce_k_anonymity, model_redraw
from ptsynth.synth import persist, registry
from ptsynth.synth.base import Synthesizer
from ptsynth.table import EncodedTable

#: A release is refused when its DP record count is below this many standard deviations of
#: the noise on one released count: every count would then be mostly noise.
MIN_RECORDS_PER_NOISE_SD = 3.0


@dataclass
class Release:
    """What :func:`release` produced; the files are in :attr:`out_dir`."""

    out_dir: Path
    #: The synthetic records: categoricals over the public labels (ordered for ordinal columns).
    synthetic: pd.DataFrame
    aggregates: AggregateRelease | None
    ledger: Ledger
    report: dict[str, Any]
    manifest: dict[str, Any]
    #: Public warnings (also in the manifest).
    warnings: list[str] = field(default_factory=list)
    #: Facts for the steward only (terminal and private report; never in a public file).
    notes: list[str] = field(default_factory=list)

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
    bins = plan_dp_bins(cfg.schema, rho=rho, share=cfg.release.dp_bins_share)
    rho_synth = rho - sum(b.rho for b in bins)
    domains = cfg.schema.encoded_domains()
    result: dict[str, Any] = {
        "epsilon": cfg.privacy.epsilon,
        "delta": cfg.privacy.delta,
        "rho": rho,
        "synthesizer": cfg.release.synthesizer,
        "reporting_length": cfg.release.reporting_length,
        "k": cfg.release.k,
        "columns": len(domains),
        "warnings": list(cfg.warnings),
    }
    if bins:
        result["dp_bins"] = [b.row() for b in bins]
        result["rho_synthesizer"] = rho_synth
    result.update(
        registry.get(cfg.release.synthesizer).plan_release(
            domains, rho=rho_synth, options=cfg.release.options,
            reporting_length=cfg.release.reporting_length, k=cfg.release.k,
        )
    )
    return result


def _warnings(cfg: ReleaseConfig, rng: RandomSource, seed: int | None,
              allow_unconfirmed_domains: bool) -> list[str]:
    warnings: list[str] = list(cfg.warnings)
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
            "noise drawn from a seeded generator: a TEST bundle, NOT FOR RELEASE (`ptsynth budget "
            "check` refuses it)"
        )
    return warnings


# ---------------------------------------------------------------------------------------------
# 3-7. the steps that touch records, then post-processing
# ---------------------------------------------------------------------------------------------
def read(data: str | Path | pd.DataFrame | Any, cfg: ReleaseConfig,
         progress: ProgressReporter = SILENT) -> EncodedTable | RecordBackend:
    """Validated, encoded records (InputError names file / row / column / rule, never a value).
    DP-bins columns come on their public candidate grid (see :func:`resolve_dp_bins`).

    With ``[dataset.backend] name = "spark"`` the records are read, encoded and merged by Spark
    where they lie and stay there (:mod:`ptsynth.ingest.spark`): the result is a
    :class:`~ptsynth.counting.spark_backend.SparkBackend`, asked only for counts.
    """
    label = str(data) if isinstance(data, (str, Path)) else None
    if cfg.dataset.backend.name == "spark":
        return _read_spark(data, cfg, label, progress)
    table = read_records(data, read_schema(cfg.schema), file_label=label, progress=progress)
    if table.n_records < 2:
        raise InputError("too few records for a release (need at least 2 persons)", file=label)
    return table


def _read_spark(data: Any, cfg: ReleaseConfig, label: str | None,
                progress: ProgressReporter) -> RecordBackend:
    from ptsynth.ingest.spark import SparkSettings, read_spark, spark_session

    if not isinstance(data, (str, Path)):
        raise InputError("the Spark backend reads a path or table:<name>, not an in-memory table")
    if cfg.schema.dp_bin_columns:
        raise ConfigError("bins = \"dp-quantiles\" is not supported on the Spark backend yet "
                          "(declare public bin edges, or use the local backend)",
                          key="[dataset.backend]")
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
    records: RecordBackend | EncodedTable, fraction: float, rng: RandomSource
) -> tuple[RecordBackend, RecordBackend | None]:
    """``(measured, holdout)``: each person is kept out **independently** with probability
    ``fraction``.

    Why Bernoulli and not a fixed-size share: with a fixed number of held-out persons, adding
    one person can push another into the holdout, so neighbouring datasets' measured sets differ
    by a substitution rather than an addition, which the noise is not calibrated for (measured:
    ε = 1.17 where 1.00 was claimed). Independent draws keep the add/remove relation: the
    measured set of ``D + x`` is that of ``D``, plus ``x`` with probability ``1 − fraction``
    (``tests/release/test_holdout_privacy.py`` computes the exact loss). The holdout is never
    measured nor released; it only serves the private evaluation.

    The draw for a person is a keyed PRF of their record and its occurrence index among
    identical records (key from ``rng``; :mod:`ptsynth.counting.prf`): independent across
    persons like a fresh uniform each, but not tied to the order records are stored in, so
    every backend (numpy, Spark) holds out the same persons.
    """
    records = NumpyBackend(records) if isinstance(records, EncodedTable) else records
    if fraction <= 0:
        return records, None
    return records.split(fraction, prf.draw_key(rng))


def holdout_statement(fraction: float) -> str | None:
    """What a holdout costs the release, in words (terminal, report, manifest)."""
    if fraction <= 0:
        return None
    return (f"evaluation holdout: each person was kept out of every measurement with probability "
            f"{fraction:g} (independently); those persons appear in no published statistic, so "
            f"the release describes about {1 - fraction:.0%} of the records")


def measure(cfg: ReleaseConfig, train: CountingBackend | EncodedTable, accountant: Accountant,
            progress: ProgressReporter = SILENT) -> Synthesizer:
    """Fit the configured synthesizer: the only step that spends budget."""
    synth = cfg.release.create_synthesizer(structural_zeros=cfg.schema.structural_zeros)
    train = NumpyBackend(train) if isinstance(train, EncodedTable) else train
    synth.fit(train, accountant, progress=progress)
    refuse_if_noise_dominates(int(max(round(synth.dp_record_count), 1)), accountant)
    return synth


def expected_noise_sd(cfg: ReleaseConfig) -> float:
    """The planned noise sd of one released count, from the config alone (no data read): the
    median over the planned measurements, as :func:`refuse_if_noise_dominates` judges a release.
    Annealing and DP contribution bounds can make the actual noise smaller."""
    result = plan(cfg)
    sigmas: list[float] = []
    for row in result.get("steps", []):  # pgm: one row per phase, with its measurement count
        sigmas += [float(row["sigma"])] * int(row.get("measurements", 1))
    sigmas += [float(r["sigma"]) for r in result.get("lengths", []) if r.get("sigma") is not None]
    finite = [s for s in sigmas if np.isfinite(s)]
    return float(np.median(finite)) if finite else 0.0


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
        raise NoiseDominatesError(
            "too few records for the requested budget: the DP record count is below "
            f"{MIN_RECORDS_PER_NOISE_SD:g} times the noise standard deviation of one count "
            f"({noise_sd:.3g}), so released counts would be mostly noise; raise epsilon, use "
            "fewer columns or a shorter reporting length (the budget of this attempt stays spent: "
            "this refusal is itself read from a DP measurement)"
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
    cfg: ReleaseConfig, synthetic: EncodedTable, rng: RandomSource, redraw: Redraw | None = None
) -> tuple[EncodedTable, dict[str, Any]]:
    """k-anonymity on the quasi-identifiers for every combination up to the reporting length;
    ``redraw`` (fresh model records, :func:`~ptsynth.release.protect.model_redraw`) is the
    fallback for records no cheaper change can place. Changes ``synthetic`` in place."""
    qis = list(cfg.schema.quasi_identifiers)
    protection: dict[str, Any] = {"quasi_identifiers": qis, "k": cfg.release.k}
    if not qis:
        return synthetic, protection
    synthetic, protection = enforce_k_anonymity(
        synthetic, qis, k=cfg.release.k, reporting_length=cfg.release.reporting_length, rng=rng,
        redraw=redraw, in_place=True, structural_zeros=cfg.schema.structural_zeros,
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
    train: RecordBackend | EncodedTable,
    synthetic: EncodedTable,
    holdout: RecordBackend | EncodedTable | None,
    aggregates: AggregateRelease | None,
    ledger: Ledger | None,
    progress: ProgressReporter = SILENT,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """Utility and disclosure risk against the real records: for the data steward only
    (the release's own report, and ``ptsynth evaluate``).

    Above :data:`~ptsynth.evaluate.sampling.EVAL_MAX_RECORDS` records of a kind, on a uniform
    random sample of that many, with the sampling error stated in the report's
    ``evaluation_sample`` section (:mod:`ptsynth.evaluate.sampling`).
    """
    from ptsynth.evaluate import evaluate
    from ptsynth.evaluate.sampling import EVAL_MAX_RECORDS, evaluation_key, sampling_section

    cap = EVAL_MAX_RECORDS
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
    report = evaluate(
        real,
        synth,
        holdout=held,
        quasi_identifiers=list(cfg.schema.quasi_identifiers),
        sensitive=list(cfg.schema.sensitive),
        target=cfg.evaluation.target,
        aggregates=aggregates,
        ledger=None if ledger is None else ledger.to_dict(),
        reporting_length=cfg.release.reporting_length,
        k=cfg.release.k,
        seed=seed,
        progress=progress,
    )
    report["evaluation_sample"] = section
    return report


# ---------------------------------------------------------------------------------------------
# the release
# ---------------------------------------------------------------------------------------------
class NoiseDominatesError(InputError):
    """The release would publish mostly noise. Decided from a DP output, so it is charged."""


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` for the duration, so a terminated release cleans up
    like an interrupted one (staging removed, reservation settled). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated("terminated by SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: Failures decided from DP outputs: the steward learns something from the refusal itself, so
#: the attempt stays charged. Any other failure before the bundle is in place is refunded.
CHARGED_FAILURES = (NoiseDominatesError, SynthesisError)


def failure_reason(exc: BaseException) -> str:
    """A failure, for the private dataset ledger: the error's type and rule, never a value."""
    rule = getattr(exc, "rule", None) if isinstance(exc, PtsynthError) else None
    return f"{type(exc).__name__}" + (f": {rule}" if rule else "")


def new_release_id() -> str:
    """The release's public name: its date and a random part. No finer time: the gap between a
    release's start and its manifest would time the computation, a data-dependent side channel."""
    return f"{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(6)}"


def release(
    data: str | Path | pd.DataFrame | Any | None,
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

    Everything that can be checked without producing an output (the config's sense, the output
    path, the input's type and header, a full validation pass) happens **before** any budget is
    reserved, so a typo costs nothing. A release that fails before its bundle is in place
    returns its reservation (``aborted-refunded``, with the reason) unless the failure was
    decided from a DP output (:data:`CHARGED_FAILURES`); SIGTERM and Ctrl-C are failures like
    any other.

    Args:
        data: the sensitive records (CSV/TSV/Parquet/Arrow path, a DataFrame, or a
            :class:`~ptsynth.ingest.RecordSource` such as
            :class:`~ptsynth.ingest.PostgresQuery`); ``None``: the config's ``[dataset.source]``.
        config: a release config (TOML path) or a loaded :class:`ReleaseConfig`.
        out: the bundle folder; must not exist unless ``overwrite``.
        seed: ``None`` (default) draws all noise from the operating system's CSPRNG. An
            integer makes the run reproducible **for tests only**; the ledger and manifest
            say so (never the seed itself) and ``budget check`` refuses such a bundle.
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
    if data is None:
        if cfg.dataset.source is None:
            raise ConfigError("no records given and the config has no [dataset.source]", key="data")
        data = cfg.dataset.source.record_source()
    out_dir = Path(out)
    check_output_folder(out_dir, overwrite=overwrite)
    rng = random_source(seed)
    warnings = _warnings(cfg, rng, seed, allow_unconfirmed_domains)
    dataset_ledger = None
    if cfg.dataset.ledger is not None:  # opened (and its lifetime checked) before any work
        dataset_ledger = DatasetLedger(cfg.dataset.ledger, lifetime_epsilon=cfg.dataset.lifetime_epsilon,
                                       lifetime_delta=cfg.dataset.lifetime_delta)
        if cfg.privacy.epsilon > dataset_ledger.lifetime_epsilon * (1 + 1e-12):
            raise ConfigError("exceeds the dataset's lifetime epsilon (read from its ledger)",
                              key="privacy.epsilon")

    with terminate_as_exception():
        # Validation before reservation: a bad record, path or file type costs nothing.
        table = read(data, cfg, progress)
        notes = private_notes(cfg, table)
        release_id = new_release_id()
        accountant = Accountant(cfg.privacy.epsilon, cfg.privacy.delta, rng=rng,
                                release_id=release_id, privacy_unit=cfg.schema.privacy_unit)
        with BundleWriter(out_dir, overwrite=overwrite, release_id=release_id) as writer:
            if dataset_ledger is not None:
                dataset_ledger.reserve(release_id, accountant.target_rho, detail=writer.owner)
            committed = False
            try:
                result = _release_steps(cfg, data, table, writer, accountant, rng, seed, warnings,
                                        notes, evaluate_release, progress, release_id)
                # Commit: ledger first (the budget is spent whatever happens next), then rename.
                if dataset_ledger is not None:
                    try:
                        dataset_ledger.commit(release_id, result.ledger.entries)
                    finally:
                        committed = True  # whatever commit raised, never settle it again
                writer.commit()
            except BaseException as exc:
                if dataset_ledger is not None and not committed:
                    dataset_ledger.abort(release_id, refund=not isinstance(exc, CHARGED_FAILURES),
                                         reason=failure_reason(exc))
                raise
    return result


def private_notes(cfg: ReleaseConfig, table: EncodedTable | CountingBackend) -> list[str]:
    """Facts for the steward only (terminal and private report, never a public file)."""
    notes = []
    summary = getattr(table, "summary", None)  # a Spark source keeps no ingest summary
    if summary is not None:
        notes += summary.outside_domain_lines()
    if summary is not None and summary.rows_without_id:
        if cfg.schema.subject_id is None:
            notes.append(f"the privacy unit is a row: no subject id is declared ({summary.input_rows} "
                         "rows); a person with several rows has a multiple of the stated epsilon")
        else:
            notes.append(f"{summary.rows_without_id} row(s) have no subject id: each is its own "
                         "privacy unit, so a person with several such rows has a multiple of the "
                         "stated epsilon")
    return notes


def _release_steps(
    cfg: ReleaseConfig, data: Any, table: EncodedTable | CountingBackend, writer: BundleWriter,
    accountant: Accountant, rng: RandomSource, seed: int | None, warnings: list[str],
    notes: list[str], evaluate_release: bool, progress: ProgressReporter, release_id: str,
) -> Release:
    """Steps 3b–8 into the staging folder (see the module docstring); returns the release."""
    cfg, table, dp_bins = resolve_dp_bins(cfg, table, accountant, progress)
    fraction = cfg.evaluation.holdout_fraction if evaluate_release else 0.0
    train, holdout = split_holdout(table, fraction, rng)
    if (statement := holdout_statement(fraction)) is not None:
        warnings.append(statement)
    synth = measure(cfg, train, accountant, progress)
    with progress.task("sample", "sampling synthetic records"):
        synthetic = synthesize(cfg, synth, rng, warnings)
    with progress.task("protect", "enforcing k-anonymity on the quasi-identifiers"):
        synthetic, protection = protect(cfg, synthetic, rng, model_redraw(synth, rng))
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
    cfg.schema.write_csv(synthetic, writer.path(SYNTHETIC))  # neutralised, in row chunks
    synthetic_frame = cfg.schema.decode(synthetic, typed=True)  # typed: no formula can run
    synthetic_frame.to_parquet(writer.path(SYNTHETIC_PARQUET), index=False)
    writer.path(SDV_METADATA).write_text(json.dumps(
        cfg.schema.released().to_sdv_dict(table_name=cfg.dataset.name), indent=2) + "\n")
    aggregates.write_csv(writer.path(AGGREGATES_CSV))
    aggregates.write_parquet(writer.path(AGGREGATES_PARQUET))
    ledger = accountant.ledger()
    ledger.write(writer.path(LEDGER))
    # Public: DP measurements and what was estimated from them (ptsynth.synth.persist).
    persist.save(synth, writer.path(MODEL))

    provenance_key = secrets.token_bytes(32)
    report = _release_section(cfg, release_id, provenance_key, train, holdout, synthetic,
                              table, aggregates, protection, synth, warnings, notes, seed)
    if dp_bins is not None:
        report["release"]["dp_bins"] = dp_bins  # DP outputs (the edges are in the manifest too)
    if evaluate_release:
        from ptsynth.report import write_html_report, write_json_report

        evaluation = evaluate_privately(cfg, train, synthetic, holdout, aggregates, ledger,
                                        progress)
        report = {**evaluation, **{key: v for key, v in report.items() if key not in evaluation}}
        write_json_report(report, writer.path(REPORT_JSON))
        write_html_report(report, writer.path(REPORT_HTML))
    else:
        writer.path(REPORT_JSON).write_text(json.dumps(report, indent=2, default=json_default))

    manifest = build_manifest(
        cfg, data=data, writer=writer, release_id=release_id, rng=rng,
        warnings=warnings, aggregates=aggregates, aggregates_source=aggregates_source,
        provenance_key=provenance_key, ledger_head_hash=ledger.head_hash,
    )
    writer.path(MANIFEST).write_text(json.dumps(manifest, indent=2, default=json_default))
    # The public showcase page, from the staged public files only (ptsynth.showcase).
    from ptsynth.showcase.build import stage_showcase

    with progress.task("showcase", "building the showcase page"):
        manifest = stage_showcase(writer, manifest)
    task.finish()
    return Release(
        out_dir=writer.out_dir,
        synthetic=synthetic_frame,
        aggregates=aggregates,
        ledger=ledger,
        report=report,
        manifest=manifest,
        warnings=warnings,
        notes=notes,
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
    notes: list[str],
    seed: int | None,
) -> dict[str, Any]:
    """The private report's release section: sizes, protection, the synthesizer's trace."""
    return {
        "schema_version": 1,
        "visibility": "private: computed against the real records; for the data steward only",
        "release_id": release_id,
        "provenance": {
            "key": provenance_key.hex(),
            "use": "manifest.json input.hmac_sha256 = HMAC-SHA256(key, the input file's bytes, or a "
            "database query's text and streamed rows, see input.covers): lets "
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
            "notes": notes,
            "privacy_unit": cfg.schema.privacy_unit,
            "rows_without_subject_id": None if table.summary is None else table.summary.rows_without_id,
            "seed": seed,
            "ingest": {
                "visibility": "private: counts read from the records without noise; never publish",
                "outside_domain": {} if table.summary is None
                else {k: dict(v) for k, v in table.summary.outside_domain.items()},
            },
        },
    }
