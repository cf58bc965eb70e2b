"""The release manifest: what a reader of the bundle needs to trust and reproduce it.

Why its own module: the manifest is public, so every field is chosen for what it may reveal.
It carries versions, the public config (domains, budget, the synthesizer's effective options),
the privacy unit and neighbouring relation, the random source, sha256 of every public file, the
ledger's last hash (anchoring ``budget.json``'s chain), and the input identified by a keyed HMAC:
a plain hash of the sensitive input would let someone who knows every record but one test
guesses offline, so the key stays in the private report.
"""

from __future__ import annotations

import hashlib
import hmac
import platform
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ptsynth import __version__
from ptsynth.privacy import epsilon_from_rho_delta, rho_from_epsilon_delta
from ptsynth.release.bundle import MANIFEST, PRIVATE_FILES, PUBLIC_FILES, BundleWriter
from ptsynth.synth.options import options_dict

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.aggregates import AggregateRelease
    from ptsynth.config import ReleaseConfig
    from ptsynth.privacy import RandomSource

#: The manifest's (and so the bundle's) format version.
SCHEMA_VERSION = 1


def json_default(value: Any) -> Any:
    """``json.dumps`` hook for numpy scalars and arrays, paths and TOML dates."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (date, time)):  # TOML dates in the config
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def versions() -> dict[str, str]:
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


def public_config(cfg: ReleaseConfig) -> dict[str, Any]:
    """The config as published: the steward's file-system paths reduced to file names, and a
    database source reduced to its kind and table name: the URL (host, user, database) and the
    query text (whose filters may name people or places) are withheld; the manifest's input
    HMAC identifies them to whoever holds the key."""
    data = cfg.to_dict()
    dataset = data.get("dataset", {})
    if dataset.get("ledger"):
        dataset["ledger"] = Path(str(dataset["ledger"])).name
    source = dataset.get("source")
    if isinstance(source, dict):
        url = str(source.get("url", ""))
        public: dict[str, Any] = {"kind": url.split(":", 1)[0] if ":" in url else "database"}
        if "table" in source:
            public["table"] = source["table"]
        if "query" in source:
            public["query"] = "withheld (identified by input.hmac_sha256)"
        dataset["source"] = public
    backend = dataset.get("backend")
    if isinstance(backend, dict):
        # Only the engine's name: ``master`` and ``conf`` may carry cluster addresses,
        # user names, tokens or storage keys (``spark.hadoop.fs.s3a.secret.key``).
        dataset["backend"] = {"name": backend.get("name", "local")}
    return data


def input_hmac(data: Any, key: bytes) -> dict[str, str]:
    """HMAC-SHA256 of the input under a per-release key held only by the private report.

    Files: over their bytes. A database source (:class:`~ptsynth.ingest.PostgresQuery`,
    :class:`~ptsynth.ingest.SQLiteQuery`): over its kind, the query text and the digest of the
    rows its last complete read streamed (never the URL or a credential); a source not read yet
    is read now (how a steward re-checks a bundle with the key). In-memory tables: over their
    values.
    """
    from ptsynth.ingest.sources import RowsDigest, read_fingerprint

    digest = hmac.new(key, digestmod=hashlib.sha256)
    covers = "the input file's bytes"
    if callable(getattr(data, "fingerprint", None)):
        fingerprint = read_fingerprint(data)
        digest.update(fingerprint.material())
        kind = fingerprint.kind
        covers = ("the query text and the rows it returned as streamed (each column as text, "
                  "see ptsynth.ingest.sources.RowsDigest); not the URL, never a credential")
    elif isinstance(data, pd.DataFrame):
        digest.update(pd.util.hash_pandas_object(data, index=False).values.tobytes())
        kind = "DataFrame"
        covers = "the frame's values"
    elif isinstance(data, (pa.Table, pa.RecordBatch)):
        rows = RowsDigest(list(data.schema.names))
        for batch in (data.to_batches() if isinstance(data, pa.Table) else [data]):
            rows.update(batch)
        digest.update(rows.digest())
        kind = "Arrow table"
        covers = "the table's values (see ptsynth.ingest.sources.RowsDigest)"
    elif not Path(data).is_file():  # a Spark source (a folder of files, table:<name>, a URL)
        return {"kind": "spark source", "hmac_sha256": None,  # type: ignore[dict-item]
                "key": "not computed: the input was read by Spark where it lies"}
    else:
        with open(data, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        kind = Path(data).suffix.lstrip(".") or "file"
    return {
        "kind": kind,
        "hmac_sha256": digest.hexdigest(),
        "covers": covers,
        "key": "random per release; held in the private report (report.json: provenance.key)",
    }


def build_manifest(
    cfg: ReleaseConfig,
    *,
    data: Any,
    writer: BundleWriter,
    release_id: str,
    rng: RandomSource,
    warnings: list[str],
    aggregates: AggregateRelease,
    aggregates_source: str,
    provenance_key: bytes,
    ledger_head_hash: str,
) -> dict[str, Any]:
    """The manifest of a staged bundle (call it after every other public file is written)."""
    rho = rho_from_epsilon_delta(cfg.privacy.epsilon, cfg.privacy.delta)
    staged = set(writer.files()) | {MANIFEST}
    return {
        "schema_version": SCHEMA_VERSION,
        "release_id": release_id,
        "created": datetime.now(UTC).date().isoformat(),  # no finer: compute time is data-dependent
        "versions": versions(),
        "config": public_config(cfg),
        "privacy": {
            "epsilon": cfg.privacy.epsilon,
            "delta": cfg.privacy.delta,
            "rho": rho,
            "epsilon_check": epsilon_from_rho_delta(rho, cfg.privacy.delta),
            "privacy_unit": cfg.schema.privacy_unit,
            "neighbouring": "add or remove one person's record (unbounded differential privacy)",
            "public_inputs": "schema domains, bin edges, date ranges, reporting length, k, epsilon, delta",
        },
        "randomness": {
            "source": rng.description,
            "secure": bool(rng.secure),
            "mode": "release" if rng.secure else "TEST / REPRODUCIBILITY ONLY: NOT FOR RELEASE",
        },
        "synthesizer": cfg.release.synthesizer,
        "synthesizer_options": options_dict(cfg.release.options),
        "aggregates_source": aggregates_source,
        "aggregate_combinations": aggregates.by_length(),
        "input": input_hmac(data, provenance_key),
        "outputs": writer.public_hashes(),
        "outputs_note": "sha256 of the public files; private files are listed, never hashed here",
        "files": {"public": [f for f in PUBLIC_FILES if f in staged],
                  "private": [f for f in PRIVATE_FILES if f in staged]},
        "warnings": warnings,
        "ledger_head_hash": ledger_head_hash,
    }
