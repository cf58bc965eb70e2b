"""The release bundle as a type: which files it holds, who may see them, and how to read it back.

Why a type: a bundle is what a data steward publishes and what everything public is built from
(count queries, the showcase page, notebooks). Writing it is atomic (a staging folder beside the
target, fsynced, moved into place in one rename), so a failure never leaves anything that could
be mistaken for a release; reading it back (:meth:`Bundle.load`) verifies the manifest's hashes
of the public files and the ledger's hash chain, and never opens a private file unless asked
(:meth:`Bundle.private_report`).

Layout (manifest ``schema_version`` 1):

==========================  ==========  ============================================================
file                        visibility  what
==========================  ==========  ============================================================
``synthetic.csv``           public      synthetic records in the input's shape (strings)
``synthetic.parquet``       public      the same records, typed: categoricals over the public labels
``metadata.json``           public      SDV ``Metadata`` of the synthetic records (:mod:`ptsynth.sdv`)
``aggregates.csv``          public      SDS ``selections`` / ``protected_count``, every count ≥ k
``aggregates.parquet``      public      the same, with the public parameters (σ per length, …)
``budget.json``             public      the release's hash-chained privacy ledger
``model.json``              public      the fitted synthesizer (:mod:`ptsynth.synth.persist`): DP
                                        measurements and what was estimated from them only
``showcase.html``           public      the offline explorer page (:mod:`ptsynth.showcase`), built
                                        from the other public files only
``manifest.json``           public      versions, public config, hashes, randomness, warnings
``report.json``             private     utility and disclosure risk against the real records
``report.html``             private     the same, for a person
==========================  ==========  ============================================================
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ptsynth.aggregates import AggregateRelease
from ptsynth.errors import BundleError, ConfigError, LedgerError, PtsynthError
from ptsynth.privacy import Ledger
from ptsynth.release.recovery import OWNER_FILE, owner, sweep_staging, write_owner_file
from ptsynth.schema import Schema
from ptsynth.spreadsheet import restore
from ptsynth.table import EncodedTable

#: Manifest schema versions this ptsynth reads.
SUPPORTED_VERSIONS = (1,)
MANIFEST = "manifest.json"
LEDGER = "budget.json"
SYNTHETIC = "synthetic.csv"
SYNTHETIC_PARQUET = "synthetic.parquet"
SDV_METADATA = "metadata.json"
AGGREGATES_CSV = "aggregates.csv"
AGGREGATES_PARQUET = "aggregates.parquet"
MODEL = "model.json"
SHOWCASE = "showcase.html"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"

#: Files of a bundle and who may see them. Evaluation compares with the real records, so it is
#: for the data steward only unless it is itself computed with DP.
PUBLIC_FILES = (AGGREGATES_CSV, AGGREGATES_PARQUET, SYNTHETIC, LEDGER, MODEL, SHOWCASE, MANIFEST,
                SYNTHETIC_PARQUET, SDV_METADATA)
PRIVATE_FILES = (REPORT_JSON, REPORT_HTML)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
class BundleWriter:
    """Stages a bundle beside ``out_dir`` and moves it into place in one rename.

    The staging folder sits in the same parent (same file system), so :meth:`commit` is atomic;
    :meth:`discard` removes it. Used as ``with BundleWriter(out) as w: ...; w.commit()``: leaving
    the block without a commit discards the staging folder.
    """

    def __init__(self, out_dir: str | Path, *, overwrite: bool = False,
                 release_id: str = "") -> None:
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        check_output_folder(self.out_dir, overwrite=overwrite)
        try:
            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            sweep_staging(self.out_dir)  # what killed runs left beside this bundle
            self.staging = Path(
                tempfile.mkdtemp(prefix=f".{self.out_dir.name}.", dir=self.out_dir.parent)
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot create the bundle folder there ({exc.strerror or type(exc).__name__})",
                key="--out", file=str(self.out_dir),
            ) from None
        self.owner = owner(out_dir=self.out_dir, staging=self.staging, release_id=release_id)
        write_owner_file(self.staging, self.owner)
        self.committed = False

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()

    def path(self, name: str) -> Path:
        """Where to write bundle file ``name`` (inside the staging folder)."""
        return self.staging / name

    def files(self) -> list[str]:
        return sorted(p.name for p in self.staging.iterdir()
                      if p.is_file() and not p.name.startswith("."))

    def public_hashes(self) -> dict[str, str]:
        """sha256 of each public file written so far (the manifest itself excepted)."""
        return {
            name: sha256_file(self.staging / name)
            for name in PUBLIC_FILES
            if name != MANIFEST and (self.staging / name).is_file()
        }

    def commit(self) -> Path:
        """Set file modes by policy, flush every staged file to disk and move the bundle into
        place. Public files are readable by all (0644), private ones by the owner only (0600),
        whatever the umask."""
        (self.staging / OWNER_FILE).unlink(missing_ok=True)
        for path in self.staging.iterdir():
            if path.is_file():
                path.chmod(0o644 if path.name in PUBLIC_FILES else 0o600)
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
        self.staging.chmod(0o755)
        if self.out_dir.exists():
            if not self.overwrite and any(self.out_dir.iterdir()):
                raise ConfigError("output folder appeared while the release ran",
                                  file=str(self.out_dir), key="--out")
            backup = self.out_dir.with_name(f".{self.out_dir.name}.old-{uuid.uuid4().hex[:6]}")
            os.replace(self.out_dir, backup)
            os.replace(self.staging, self.out_dir)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(self.staging, self.out_dir)
        self.committed = True
        return self.out_dir

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def check_output_folder(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse an output path that is a file, or a non-empty folder without ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError("the output path is a file, not a folder", file=str(out_dir), key="--out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise ConfigError("output folder exists and is not empty (pass --overwrite to replace it)",
                          file=str(out_dir), key="--out")


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
@dataclass
class Bundle:
    """A published bundle read back from its public files (see the module docstring).

    Build with :meth:`load`. ``synthetic`` (the released records in the input's shape),
    ``synthetic_table`` (the same, encoded over the release's public domains) and
    ``aggregates`` are read on first use.
    """

    path: Path
    manifest: dict[str, Any]
    ledger: Ledger
    schema: Schema
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> Bundle:
        """Read a bundle folder; with ``verify`` (default) check every public file's hash.

        Raises :class:`~ptsynth.errors.BundleError` naming the file and the rule: no such
        folder, no manifest, an unknown version, a missing or altered public file, or a ledger
        whose hash chain does not match the manifest's anchor.
        """
        root = Path(path)
        if not root.is_dir():
            raise BundleError("is not a bundle folder (no such folder)", file=str(root))
        manifest = _read_manifest(root)
        files = manifest.get("files", {})
        public = files.get("public", []) if isinstance(files, dict) else []
        missing = [n for n in public if not (root / n).is_file()]
        if missing:
            raise BundleError(f"public file {missing[0]} listed in the manifest is missing",
                              file=str(root))
        if verify:
            outputs = manifest.get("outputs", {})
            if not isinstance(outputs, dict):
                raise BundleError("manifest outputs must map file names to sha256", file=str(root))
            for name, digest in outputs.items():
                if name not in PUBLIC_FILES:
                    raise BundleError(f"manifest lists an unknown output {name!r}", file=str(root))
                target = root / name
                if not target.is_file() or sha256_file(target) != digest:
                    raise BundleError(f"{name} does not match the manifest's hash (altered or "
                                      "replaced after the release)", file=str(root))
        try:
            ledger = Ledger.load(root / LEDGER)
        except LedgerError as exc:
            raise BundleError(exc.rule, file=str(root / LEDGER)) from None
        anchor = manifest.get("ledger_head_hash")
        if verify and anchor is not None and anchor != ledger.head_hash:
            raise BundleError("the ledger's hash chain does not end at the manifest's anchor",
                              file=str(root / LEDGER))
        from ptsynth.config import ReleaseConfig

        try:
            published = dict(manifest["config"])
            # The published source is reduced to its kind (public_config); reading a bundle
            # never needs it.
            published["dataset"] = {k: v for k, v in dict(published["dataset"]).items()
                                    if k != "source"}
            config = ReleaseConfig.from_dict(published)
        except (KeyError, TypeError):
            raise BundleError("manifest holds no release config", file=str(root)) from None
        except PtsynthError as exc:
            raise BundleError(f"manifest config is invalid ({exc.rule})", file=str(root)) from None
        return cls(path=root, manifest=manifest, ledger=ledger, schema=config.schema)

    # -- public contents ----------------------------------------------------------------------
    @property
    def release_id(self) -> str:
        return str(self.manifest.get("release_id", ""))

    @property
    def synthesizer(self) -> str:
        return str(self.manifest.get("synthesizer", ""))

    @property
    def seeded(self) -> bool:
        """Whether the release drew its noise from a seeded generator (a test bundle)."""
        randomness = self.manifest.get("randomness", {})
        return not bool(randomness.get("secure", False))

    @property
    def epsilon(self) -> float:
        return float(self.ledger.total["epsilon"])

    @property
    def delta(self) -> float:
        return float(self.ledger.total["delta"])

    @property
    def reporting_length(self) -> int:
        return int(self.manifest["config"]["release"]["reporting_length"])

    @property
    def k(self) -> int:
        return int(self.manifest["config"]["release"]["k"])

    @cached_property
    def synthetic(self) -> pd.DataFrame:
        """The released synthetic records as pandas categoricals over the public labels
        (ordered for ordinal columns; missing as ``NaN``; see
        :meth:`~ptsynth.schema.Schema.decode`): from ``synthetic.parquet``, or from
        ``synthetic.csv`` checked against the release's schema in bundles without it."""
        path = self.path / SYNTHETIC_PARQUET
        if not path.is_file():
            return self.schema.decode(self.synthetic_table, typed=True)
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, ImportError):
            raise BundleError("cannot be read as Parquet", file=str(path)) from None
        expected = self.schema.dtypes()
        if list(frame.columns) != list(expected) or any(
            dtype is not None and frame[name].dtype != dtype for name, dtype in expected.items()
        ):
            raise BundleError("its columns or categories differ from the release's schema",
                              file=str(path))
        return frame

    @cached_property
    def synthetic_strings(self) -> pd.DataFrame:
        """``synthetic.csv`` as strings, missing as ``""`` (formula neutralisation undone)."""
        return read_public_csv(self.path / SYNTHETIC)

    @cached_property
    def synthetic_table(self) -> EncodedTable:
        """The synthetic records encoded over the release's public domains.

        Streamed from the file block by block (memory: the codes) unless some public label
        starts like a formula (then the file holds neutralised cells, read through
        :attr:`synthetic_strings`): ten million records as Python strings take gigabytes.
        """
        path = self.path / SYNTHETIC
        if "synthetic_strings" in self.__dict__ or _neutralised_labels(self.schema):
            return encode_released(self.synthetic_strings, self.schema, label=str(path))
        return encode_released(path, self.schema, label=str(path))

    def sdv_metadata(self) -> Any:
        """The SDV ``Metadata`` of the synthetic records (``metadata.json``; needs
        ``ptsynth[sdv]``); e.g. ``sdv.evaluation.evaluate_quality(real, bundle.synthetic,
        bundle.sdv_metadata())`` for a private comparison with the real records."""
        from ptsynth.sdv import import_sdv

        path = self.path / SDV_METADATA
        if not path.is_file():
            raise BundleError("the bundle has no metadata.json", file=str(self.path))
        return import_sdv().load_from_json(str(path))

    @cached_property
    def aggregates(self) -> AggregateRelease:
        """The released aggregates with the noise scale of each length."""
        path = self.path / AGGREGATES_PARQUET
        if not path.is_file():
            raise BundleError("the bundle has no aggregates.parquet", file=str(self.path))
        return AggregateRelease.read_parquet(path, self.schema.encoded_domains())

    @cached_property
    def model(self) -> Any:
        """The published fitted synthesizer (``model.json``), loaded without executing code."""
        from ptsynth.synth import persist

        path = self.path / MODEL
        if not path.is_file():
            raise BundleError("the bundle publishes no model.json (written by ptsynth 0.1 "
                              "releases from this version on)", file=str(self.path))
        return persist.load(path)

    @property
    def has_model(self) -> bool:
        return (self.path / MODEL).is_file()

    def count(self, where: dict[str, Any] | None = None, by: Any = None) -> Any:
        """Count query with source and uncertainty (see :func:`ptsynth.query.count`)."""
        from ptsynth.query import count

        return count(self, where=where, by=by)

    # -- private contents, only when asked ----------------------------------------------------
    def private_report(self) -> dict[str, Any]:
        """The private evaluation report (``report.json``): for the data steward only."""
        path = self.path / REPORT_JSON
        if not path.is_file():
            raise BundleError("the private report is not in this folder (it is never published)",
                              file=str(self.path))
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise BundleError("is not readable JSON", file=str(path)) from None

    def __repr__(self) -> str:
        return (f"Bundle({str(self.path)!r}, release {self.release_id}, synthesizer "
                f"{self.synthesizer}, epsilon={self.epsilon:.4g}, delta={self.delta:.3g}"
                f"{', SEEDED TEST BUNDLE' if self.seeded else ''})")


def read_public_csv(path: Path) -> pd.DataFrame:
    """A public CSV of a bundle as strings (missing ``""``), formula neutralisation undone."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (OSError, ValueError, pd.errors.ParserError):
        raise BundleError("cannot be read as CSV", file=str(path)) from None
    return restore(frame)


def _neutralised_labels(schema: Schema) -> bool:
    """Whether a released cell may carry a formula-neutralising apostrophe."""
    from ptsynth.spreadsheet import is_formula_like

    return any(is_formula_like(str(v)) for c in schema.released().columns
               for v in (c.values or ()))


def encode_released(frame: pd.DataFrame | Path, schema: Schema, *, label: str) -> EncodedTable:
    """Released records (strings in the input's shape) encoded over ``schema``'s public domains
    (see :meth:`Schema.released`): the same codes the release had."""
    from ptsynth.ingest import read_records

    try:
        released = read_records(frame, schema.released(), file_label=label)
    except PtsynthError as exc:
        raise BundleError(f"does not match the release's schema ({exc.rule})", file=label) from None
    return EncodedTable(released.codes, schema.encoded_domains())


def _read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    if not path.is_file():
        raise BundleError("is not a bundle folder (no manifest.json)", file=str(root))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError("is not readable JSON", file=str(path)) from None
    if not isinstance(manifest, dict):
        raise BundleError("top level is not a JSON object", file=str(path))
    version = manifest.get("schema_version")
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(f"unknown bundle version {version!r} (this ptsynth reads "
                          f"{', '.join(map(str, SUPPORTED_VERSIONS))})", file=str(path))
    return manifest
