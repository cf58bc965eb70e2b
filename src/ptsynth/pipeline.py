"""The release pipeline: config in, bundle out (`ptsynth.release`, `ptsynth release`).

Why one orchestration module: the order of steps *is* the privacy argument. The budget is
checked and reserved in the dataset ledger before a single record is read; the records are
touched only by measurements made through the accountant; everything after measurement
(synthesis, k-anonymity suppression, aggregate export) is post-processing of noisy values;
evaluation compares with the real data and is therefore marked private. The bundle is
written to a temporary folder and moved into place in one rename, so a failure leaves
nothing behind that could be mistaken for a release.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptsynth import __version__
from ptsynth.aggregates import AggregateRelease, plan_aggregates
from ptsynth.config import SYNTHESIZERS, ReleaseConfig
from ptsynth.errors import ConfigError, InputError
from ptsynth.privacy import (
    Accountant,
    DatasetLedger,
    Ledger,
    epsilon_from_rho_delta,
    random_source,
    rho_from_epsilon_delta,
)
from ptsynth.protect import check_k_anonymity, enforce_k_anonymity
from ptsynth.records import read_records
from ptsynth.synth.aggregate_seeded import AggregateSeededSynthesizer

#: Files of a bundle and who may see them. Evaluation compares with the real records, so it
#: is for the data steward only unless it is itself computed with DP.
PUBLIC_FILES = ("aggregates.csv", "aggregates.parquet", "synthetic.csv", "budget.json", "manifest.json")
PRIVATE_FILES = ("report.json", "report.html")

Progress = Callable[[str], None]


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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _apply_overrides(
    cfg: ReleaseConfig,
    *,
    epsilon: float | None,
    delta: float | None,
    k: int | None,
    synthesizer: str | None,
    rows: int | None,
) -> ReleaseConfig:
    """A copy of ``cfg`` with the command-line overrides applied and checked."""
    privacy = replace(
        cfg.privacy,
        **{key: float(v) for key, v in (("epsilon", epsilon), ("delta", delta)) if v is not None},
    )
    options = {"k": k, "synthesizer": synthesizer, "rows": rows}
    release_opts = replace(cfg.release, **{key: v for key, v in options.items() if v is not None})
    cfg = replace(cfg, privacy=privacy, release=release_opts)
    if cfg.release.synthesizer not in SYNTHESIZERS:
        raise ConfigError(
            f"unknown synthesizer {cfg.release.synthesizer!r}; choose one of {', '.join(SYNTHESIZERS)}"
        )
    if not (cfg.privacy.epsilon > 0 and np.isfinite(cfg.privacy.epsilon)):
        raise ConfigError("privacy.epsilon must be a positive number")
    if not (0 < cfg.privacy.delta < 1):
        raise ConfigError("privacy.delta must lie strictly between 0 and 1")
    if cfg.release.k < 1:
        raise ConfigError("release.k must be at least 1")
    return cfg


def plan(
    config: str | Path | ReleaseConfig,
    *,
    epsilon: float | None = None,
    delta: float | None = None,
    synthesizer: str | None = None,
) -> dict[str, Any]:
    """The budget split and the expected noise per step, from the config alone (no data read)."""
    cfg = config if isinstance(config, ReleaseConfig) else ReleaseConfig.load(config)
    cfg = _apply_overrides(cfg, epsilon=epsilon, delta=delta, k=None, synthesizer=synthesizer, rows=None)
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
    if cfg.release.synthesizer == "aggregate":
        result["lengths"] = plan_aggregates(
            domains, rho=rho, reporting_length=cfg.release.reporting_length, k=cfg.release.k
        )
    else:
        from ptsynth.synth.pgm import plan_pgm

        result["steps"] = plan_pgm(domains, rho=rho, **cfg.release.pgm)
    return result


def _make_synthesizer(cfg: ReleaseConfig):
    if cfg.release.synthesizer == "aggregate":
        return AggregateSeededSynthesizer(
            reporting_length=cfg.release.reporting_length, k=cfg.release.k
        )
    from ptsynth.synth.pgm import PGMSynthesizer

    return PGMSynthesizer(**cfg.release.pgm)


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
    evaluate_release: bool = True,
    overwrite: bool = False,
    allow_unconfirmed_domains: bool = False,
    progress: Progress | None = None,
) -> Release:
    """Run a whole release and write its bundle to ``out`` atomically.

    Args:
        data: the sensitive records (CSV/TSV/Parquet/Arrow path, or a DataFrame).
        config: a release config (TOML path) or a loaded :class:`ReleaseConfig`.
        out: the bundle folder; must not exist unless ``overwrite``.
        seed: ``None`` (default) draws all noise from the operating system's CSPRNG. An
            integer makes the run reproducible **for tests only**; the ledger and manifest
            say so and such a bundle must not be published.
        allow_unconfirmed_domains: run although the config's domains were proposed from the
            data and not confirmed public; the bundle is then marked NOT FOR RELEASE. Without
            it such a config is refused (seeded test runs excepted, also NOT FOR RELEASE).
    """
    say = progress or (lambda _msg: None)
    cfg = config if isinstance(config, ReleaseConfig) else ReleaseConfig.load(config)
    cfg = _apply_overrides(cfg, epsilon=epsilon, delta=delta, k=k, synthesizer=synthesizer, rows=rows)
    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError(f"output folder {out_dir} exists and is not empty (use overwrite)")

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
    rng = random_source(seed)
    if not rng.secure:
        warnings.append(
            f"noise drawn from a seeded generator (seed {seed}): reproducible, NOT FOR RELEASE"
        )
    release_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    accountant = Accountant(cfg.privacy.epsilon, cfg.privacy.delta, rng=rng, release_id=release_id)

    # The staging folder sits beside the bundle (same file system), so the final rename is
    # atomic; it is made before any budget is reserved, so a bad output path costs nothing.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))

    # 1. Budget first: reserve in the dataset's lifetime ledger before reading any record.
    dataset_ledger = None
    if cfg.dataset.ledger is not None:
        dataset_ledger = DatasetLedger(
            cfg.dataset.ledger,
            lifetime_epsilon=cfg.dataset.lifetime_epsilon,
            lifetime_delta=cfg.dataset.lifetime_delta,
            must_exist=True,
        )
        try:
            dataset_ledger.reserve(release_id, accountant.target_rho)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        say(f"reserved rho={accountant.target_rho:.6g} in dataset ledger {cfg.dataset.ledger}")

    committed = False
    try:
        # 2. Read and validate (raises InputError naming file/row/column/rule, never a value).
        say("reading records")
        label = str(data) if not isinstance(data, pd.DataFrame) else "<DataFrame>"
        table = read_records(data, cfg.schema, file_label=label)
        if table.n_records < 2:
            raise InputError("too few records for a release (need at least 2 persons)", file=label)

        holdout = None
        train = table
        frac = cfg.evaluation.holdout_fraction
        if evaluate_release and frac > 0:
            # The holdout is never measured and never released; it only serves the private
            # evaluation (DCR and ML efficacy against unseen records).
            order = rng.permutation(table.n_records)
            n_hold = int(round(frac * table.n_records))
            holdout, train = table.take(order[:n_hold]), table.take(order[n_hold:])

        # 3. Measure and fit: the only step that spends budget.
        say(f"measuring with the {cfg.release.synthesizer} synthesizer")
        synth = _make_synthesizer(cfg)
        synth.fit(train, accountant)
        aggregates = getattr(synth, "aggregates_", None)

        dp_records = _dp_record_count(synth, aggregates)
        _refuse_if_noise_dominates(dp_records, accountant)

        # 4. Post-processing: sample, then enforce k-anonymity on the quasi-identifiers.
        n_rows = cfg.release.rows or dp_records
        say(f"sampling {n_rows} synthetic records")
        synthetic = synth.sample(n_rows, rng)
        diagnostics = dict(getattr(synth, "diagnostics_", None) or {})
        if diagnostics and not diagnostics.get("guarantee_holds_for_all_columns", True):
            warnings.append(
                "the aggregate-seeded sampler drew these columns outside its no-unreleased-"
                "combination guarantee (no released value): "
                + ", ".join(diagnostics.get("relaxed_columns", []))
            )
        qis = list(cfg.schema.quasi_identifiers)
        protection: dict[str, Any] = {"quasi_identifiers": qis, "k": cfg.release.k}
        if qis:
            say("enforcing k-anonymity")
            synthetic, protection = enforce_k_anonymity(
                synthetic,
                qis,
                k=cfg.release.k,
                reporting_length=cfg.release.reporting_length,
                rng=rng,
            )
            final = check_k_anonymity(
                synthetic, qis, k=cfg.release.k, reporting_length=cfg.release.reporting_length
            )
            if not final["ok"]:  # a bug, never a data-dependent message
                raise RuntimeError("k-anonymity check failed after enforcement; nothing written")
            protection["final_check"] = final
        if aggregates is None:
            # Counted on the (already DP) synthetic records: post-processing, costs no budget.
            aggregates = AggregateRelease.from_table(
                synthetic, reporting_length=cfg.release.reporting_length, k=cfg.release.k
            )

        # 5. Write the bundle into the staging folder.
        say("writing the bundle")
        synthetic_frame = cfg.schema.decode(synthetic)
        synthetic_frame.to_csv(staging / "synthetic.csv", index=False)
        aggregates.write_csv(staging / "aggregates.csv")
        aggregates.write_parquet(staging / "aggregates.parquet")
        ledger = accountant.ledger()
        ledger.write(staging / "budget.json")

        provenance_key = secrets.token_bytes(32)
        report: dict[str, Any] = {
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
                    "real_records": train.n_records,
                    "holdout_records": 0 if holdout is None else holdout.n_records,
                    "synthetic_records": synthetic.n_records,
                    "columns": table.n_columns,
                    "aggregate_combinations": aggregates.by_length(),
                },
                "protection": protection,
                "synthesizer": {"name": cfg.release.synthesizer, **diagnostics},
                "warnings": warnings,
            },
        }
        if evaluate_release:
            say("evaluating (private)")
            from ptsynth.evaluate import evaluate
            from ptsynth.report import write_html_report, write_json_report

            evaluation = evaluate(
                train,
                synthetic,
                holdout=holdout,
                quasi_identifiers=qis,
                sensitive=list(cfg.schema.sensitive),
                target=cfg.evaluation.target,
                aggregates=aggregates,
                ledger=ledger.to_dict(),
                reporting_length=cfg.release.reporting_length,
                k=cfg.release.k,
                seed=0,
            )
            report = {**evaluation, **{key: v for key, v in report.items() if key not in evaluation}}
            write_json_report(report, staging / "report.json")
            write_html_report(report, staging / "report.html")
        else:
            (staging / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))

        manifest = _manifest(
            cfg, data, staging, release_id, rng, seed, warnings, aggregates, provenance_key
        )
        manifest["ledger_head_hash"] = ledger.head_hash  # anchors budget.json's hash chain
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_json_default))

        # 6. Commit: ledger first (the budget is spent whatever happens next), then the rename.
        _fsync_tree(staging)
        if dataset_ledger is not None:
            try:
                dataset_ledger.commit(release_id, ledger.entries)
            finally:
                # Whatever commit raised, the reservation is resolved: never abort it again.
                committed = True
        _move_into_place(staging, out_dir, overwrite=overwrite)
        say(f"release written to {out_dir}")
        return Release(
            out_dir=out_dir,
            synthetic=synthetic_frame,
            aggregates=aggregates,
            ledger=ledger,
            report=report,
            manifest=manifest,
            warnings=warnings,
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if dataset_ledger is not None and not committed:
            # Data may have been touched: the reservation stays counted as spent.
            dataset_ledger.abort(release_id)
        raise


#: A release is refused when its DP record count is below this many standard deviations of
#: the noise on one released count: every count would then be mostly noise.
MIN_RECORDS_PER_NOISE_SD = 3.0


def _refuse_if_noise_dominates(dp_records: int, accountant: Accountant) -> None:
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


def _fsync_tree(folder: Path) -> None:
    """Flush every file of the staged bundle to disk before it is renamed into place."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _dp_record_count(synth: Any, aggregates: AggregateRelease | None) -> int:
    """The synthesizer's DP record count (the default synthetic row count; reads no data)."""
    if aggregates is not None:
        return max(int(aggregates.record_count), 1)
    noisy_total = getattr(synth, "total_", None)
    if noisy_total is None:
        raise RuntimeError("synthesizer exposes no DP record count; set release.rows")
    return max(int(round(noisy_total)), 1)


def _move_into_place(staging: Path, out_dir: Path, *, overwrite: bool) -> None:
    if out_dir.exists():
        if not overwrite and any(out_dir.iterdir()):
            raise ConfigError(f"output folder {out_dir} appeared while the release ran")
        backup = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:6]}")
        os.replace(out_dir, backup)
        os.replace(staging, out_dir)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(staging, out_dir)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (date, time)):  # TOML dates in the config
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _versions() -> dict[str, str]:
    import pyarrow
    import scipy

    return {
        "ptsynth": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "pyarrow": pyarrow.__version__,
        "scipy": scipy.__version__,
    }


def _public_config(cfg: ReleaseConfig) -> dict[str, Any]:
    """The config as published: the steward's file-system paths reduced to file names."""
    data = cfg.to_dict()
    dataset = data.get("dataset", {})
    if dataset.get("ledger"):
        dataset["ledger"] = Path(str(dataset["ledger"])).name
    return data


def _manifest(
    cfg: ReleaseConfig,
    data: str | Path | pd.DataFrame,
    staging: Path,
    release_id: str,
    rng: Any,
    seed: int | None,
    warnings: list[str],
    aggregates: AggregateRelease,
    provenance_key: bytes,
) -> dict[str, Any]:
    # A plain hash of the sensitive input (or of a private report) would let someone who knows
    # every record but one test guesses offline. The manifest therefore carries an HMAC of the
    # input under a random key that only the private report holds, and hashes of public files.
    digest = hmac.new(provenance_key, digestmod=hashlib.sha256)
    if isinstance(data, pd.DataFrame):
        digest.update(pd.util.hash_pandas_object(data, index=False).values.tobytes())
        kind = "DataFrame"
    else:
        with open(data, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        kind = Path(data).suffix.lstrip(".") or "file"
    input_hash = {
        "kind": kind,
        "hmac_sha256": digest.hexdigest(),
        "key": "random per release; held in the private report (report.json: provenance.key)",
    }
    outputs = {name: _sha256(staging / name) for name in PUBLIC_FILES if (staging / name).is_file()}
    rho = rho_from_epsilon_delta(cfg.privacy.epsilon, cfg.privacy.delta)
    return {
        "schema_version": 1,
        "release_id": release_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        "config": _public_config(cfg),
        "privacy": {
            "epsilon": cfg.privacy.epsilon,
            "delta": cfg.privacy.delta,
            "rho": rho,
            "epsilon_check": epsilon_from_rho_delta(rho, cfg.privacy.delta),
            "privacy_unit": "one person (rows sharing a subject id are merged into one record)",
            "neighbouring": "add or remove one person's record (unbounded differential privacy)",
            "public_inputs": "schema domains, bin edges, date ranges, reporting length, k, epsilon, delta",
        },
        "randomness": {
            "source": rng.description,
            "secure": bool(rng.secure),
            "seed": seed,
            "mode": "release" if rng.secure else "TEST / REPRODUCIBILITY ONLY: NOT FOR RELEASE",
        },
        "synthesizer": cfg.release.synthesizer,
        "aggregates_source": (
            "measured with DP (per-length discrete Gaussian noise)"
            if cfg.release.synthesizer == "aggregate"
            else "counted on the synthetic records (post-processing, no extra budget)"
        ),
        "aggregate_combinations": aggregates.by_length(),
        "input": input_hash,
        "outputs": outputs,
        "outputs_note": "sha256 of the public files; private files are listed, never hashed here",
        "files": {"public": [f for f in PUBLIC_FILES if (staging / f).exists() or f == "manifest.json"],
                  "private": [f for f in PRIVATE_FILES if (staging / f).exists()]},
        "warnings": warnings,
    }
