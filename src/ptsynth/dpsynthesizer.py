"""``ptsynth.DPSynthesizer``: a differentially private synthesizer with SDV's single-table shape.

Why: researchers know SDV (``synthesizer = GaussianCopulaSynthesizer(metadata)``, ``fit(df)``,
``sample(n)``, ``save`` / ``load``, ``evaluate_quality``), and SDV has no DP synthesizer. This class
puts ptsynth's synthesizers behind that shape without weakening anything::

    from ptsynth import DPSynthesizer
    synth = DPSynthesizer(metadata, epsilon=1.0, delta=1e-6, domains=public_code_lists)
    synth.fit(cases)                      # the only step that reads records; spends (ε, δ)
    synthetic = synth.sample(num_rows=5_000)
    synth.get_budget()                    # the hash-chained ledger of what fit spent
    synth.save("model.json"); DPSynthesizer.load("model.json")

* ``metadata``: an SDV ``Metadata`` (2.x; its dict or ``metadata.json`` too), a ptsynth
  :class:`~ptsynth.schema.Schema` or a :class:`~ptsynth.config.ReleaseConfig`.
* ``method``: ``"aim"`` (ptsynth's graphical-model synthesizer ``pgm``: AIM's adaptive selection,
  the default) or ``"aggregate"`` (SDS-style aggregate-seeded). ``**options`` are that
  synthesizer's options (:class:`~ptsynth.synth.pgm.PGMOptions`,
  :class:`~ptsynth.synth.aggregate_seeded.AggregateOptions`), validated by the registry: a typo is
  a :class:`~ptsynth.errors.ConfigError` naming the key.
* Public domains: SDV metadata holds none that is known to be public, so they come from
  ``domains=`` (see :mod:`ptsynth.sdv`). Columns left without one make :meth:`fit` refuse unless
  ``allow_unconfirmed_domains=True``: their domains are then read from the frame, and the object
  says **NOT FOR RELEASE** (``repr``, :meth:`get_parameters`, the saved file), as the CLI does.
  So does a ``seed`` (reproducible noise, for tests only); without one all noise comes from the
  operating system's CSPRNG.

Privacy: ``fit`` reads the frame once through :func:`~ptsynth.ingest.read_records` (rows sharing
the subject id, SDV's primary key, merge into one person), measures only through an
:class:`~ptsynth.privacy.Accountant` on counts from a :class:`~ptsynth.counting.NumpyBackend`,
and spends exactly the requested (ε, δ). ``sample`` is post-processing: call it any number of
times. A fitted object refuses a second ``fit`` (it would spend again on the same people). With
a release config that names a dataset ledger, ``fit`` reserves its ρ in that lifetime budget
before measuring and commits its entries after, as a release does (a failure not decided from
a DP output is refunded, as for a release). The saved file never holds the seed of a seeded
fit (with it anyone could redraw the noise), nor a finer time than a date.
:meth:`released_shape` turns real records into the shape ``sample`` returns, for a **private**
comparison such as SDV's quality report; its output must never be published.

Differences from SDV, on purpose: ``sample`` returns a DataFrame (SDV 2.x returns
``{table: DataFrame}``; ``fit`` accepts both); numerical and datetime columns come back as their
public bin / period labels (ordered categoricals), so compare with :meth:`get_metadata` (the
metadata of what ``sample`` returns) rather than the input metadata; the primary key is never
synthesized; ``save`` writes versioned JSON, never a pickle, so loading a model runs no code.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ptsynth.config import ReleaseConfig
from ptsynth.errors import (
    BundleError,
    ConfigError,
    InputError,
    LedgerError,
    NotFittedError,
    PtsynthError,
)
from ptsynth.privacy import (
    Accountant,
    Ledger,
    RandomSource,
    random_source,
    rho_from_epsilon_delta,
)
from ptsynth.progress import ProgressCallback, ProgressReporter, reporter
from ptsynth.schema import Schema
from ptsynth.synth import persist, registry
from ptsynth.synth.options import build_options, options_dict

#: ``method`` → registered synthesizer ("aim" is the graphical-model synthesizer).
METHODS = {"aim": "pgm", "pgm": "pgm", "aggregate": "aggregate"}
FORMAT = "ptsynth-dpsynthesizer"
VERSION = 1
NOT_FOR_RELEASE = "NOT FOR RELEASE"


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False, default=_json_default).encode("ascii")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # TOML / schema dates
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _positive_int(value: Any, key: str, *, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ConfigError(f"must be an integer ≥ {lo}", key=key)
    return value


class DPSynthesizer:
    """See the module docstring. Every argument after ``domains`` is keyword-only."""

    def __init__(
        self,
        metadata: Any,
        epsilon: float | None = None,
        delta: float | None = None,
        method: str = "aim",
        domains: Any = None,
        *,
        reporting_length: int | None = None,
        k: int | None = None,
        seed: int | None = None,
        allow_unconfirmed_domains: bool = False,
        table_name: str | None = None,
        progress: ProgressReporter | ProgressCallback | None = None,
        **options: Any,
    ) -> None:
        # A release config's [privacy] and [release] values are the defaults; arguments given
        # here override them, as the CLI's --epsilon / --k do (1.0, 1e-6, 3, 10 otherwise).
        config = metadata if isinstance(metadata, ReleaseConfig) else None
        if epsilon is None:
            epsilon = config.privacy.epsilon if config is not None else 1.0
        if delta is None:
            delta = config.privacy.delta if config is not None else 1e-6
        if reporting_length is None:
            reporting_length = config.release.reporting_length if config is not None else 3
        if k is None:
            k = config.release.k if config is not None else 10
        for key, value in (("epsilon", epsilon), ("delta", delta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ConfigError("must be a finite number", key=key)
        if epsilon <= 0:
            raise ConfigError("must be positive", key="epsilon")
        if not 0 < delta < 1:
            raise ConfigError("must lie strictly between 0 and 1", key="delta")
        if method not in METHODS:
            raise ConfigError(f"must be one of {', '.join(repr(m) for m in METHODS)}", key="method")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError("must be an integer (tests only) or None", key="seed")
        if not isinstance(allow_unconfirmed_domains, bool):
            raise ConfigError("must be True or False", key="allow_unconfirmed_domains")
        self.epsilon, self.delta, self.method = float(epsilon), float(delta), method
        self.reporting_length = _positive_int(reporting_length, "reporting_length")
        self.k = _positive_int(k, "k")
        self.seed = seed
        #: Noise from a seeded generator (a test fit): kept after load, the seed itself is not.
        self._seeded = seed is not None
        self.allow_unconfirmed_domains = allow_unconfirmed_domains
        self._name = METHODS[method]
        self._options = build_options(registry.get(self._name).Options, options,
                                      where=f"DPSynthesizer(method={method!r})")
        self._progress = progress
        self._config: ReleaseConfig | None = None  # its lifetime ledger, its DP-bins share
        self._dataset: Any = None
        self._resolved: Any = None
        self._schema: Schema | None = None
        self._table_name = table_name or "table"
        self._unconfirmed: list[str] = []
        if isinstance(metadata, ReleaseConfig):
            if domains is not None:
                raise ConfigError("a release config carries its own domains; drop domains=",
                                  key="domains")
            self._schema = metadata.schema
            self._config, self._dataset = metadata, metadata.dataset
            self._table_name = table_name or metadata.dataset.name
            if not metadata.domains_confirmed:
                self._unconfirmed = [c.name for c in metadata.schema.data_columns]
        elif isinstance(metadata, Schema):
            if domains is not None:
                raise ConfigError("a Schema carries its own domains; drop domains=", key="domains")
            self._schema = metadata
        else:
            from ptsynth.sdv import resolve

            self._resolved = resolve(metadata, domains=domains, table_name=table_name)
            self._table_name = self._resolved.table.name
            self._unconfirmed = self._resolved.unconfirmed
            if not self._unconfirmed:
                self._schema = self._resolved.schema()
        if self._config is None and self._schema is not None and self._schema.dp_bin_columns:
            raise ConfigError("DP bin edges (bins = 'dp-quantiles') are measured with a release "
                              "config's budget share: pass the ReleaseConfig", key="bins")
        self._synth: Any = None
        self._ledger: Ledger | None = None
        self._rng: RandomSource | None = None
        self._warnings: list[str] = []
        self._domains_from_data: list[str] = []

    # -- state ---------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self._synth is not None

    @property
    def release_reasons(self) -> list[str]:
        """Why this model must not be published (empty: nothing against it)."""
        reasons = []
        if self._domains_from_data:
            reasons.append(
                "domains of " + ", ".join(self._domains_from_data) + " were read from the data, "
                "not confirmed public: values may be disclosed by the domain itself")
        if self._seeded:
            reasons.append("noise drawn from a seeded generator: reproducible, for tests only")
        return reasons

    @property
    def not_for_release(self) -> bool:
        return bool(self.release_reasons)

    @property
    def release_status(self) -> str:
        """``"ok"``, or ``"NOT FOR RELEASE: <reasons>"``."""
        reasons = self.release_reasons
        return f"{NOT_FOR_RELEASE}: " + "; ".join(reasons) if reasons else "ok"

    @property
    def warnings(self) -> list[str]:
        """Warnings about the fit (e.g. too few records for the budget: counts mostly noise)."""
        return list(self._warnings)

    @property
    def dp_record_count(self) -> float:
        """The DP estimate of the number of persons (a natural ``num_rows`` for :meth:`sample`)."""
        return float(self._fitted().dp_record_count)

    def _fitted(self) -> Any:
        if self._synth is None:
            raise NotFittedError("fit the DPSynthesizer first (DPSynthesizer.fit(data))")
        return self._synth

    def __repr__(self) -> str:
        parts = [f"method={self.method!r}", f"epsilon={self.epsilon:g}", f"delta={self.delta:g}"]
        if self.fitted:
            assert self._ledger is not None and self._schema is not None
            parts.append(f"fitted on {len(self._schema.data_columns)} columns, spent "
                         f"epsilon={self._ledger.total['epsilon']:.4g}")
        else:
            parts.append("not fitted")
            if self._unconfirmed:
                parts.append(f"no public domain for {len(self._unconfirmed)} column(s)")
        if self.not_for_release:
            parts.append(self.release_status)
        return f"DPSynthesizer({', '.join(parts)})"

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, data: Any, *, progress: ProgressReporter | ProgressCallback | None = None
            ) -> DPSynthesizer:
        """Fit on the records in ``data`` (a DataFrame, SDV 2.x's ``{table: DataFrame}``, or a
        path / Arrow table when the metadata is a ptsynth schema), spending (ε, δ).

        ``progress`` (default: the constructor's) receives ``read`` / ``measure`` / ``estimate``
        tasks (:mod:`ptsynth.progress`; e.g. ``with ptsynth.progress.console_progress() as p:
        synth.fit(df, progress=p)``).
        """
        from ptsynth.counting import NumpyBackend
        from ptsynth.ingest import read_records
        from ptsynth.release.dp_bins import read_schema, resolve_dp_bins
        from ptsynth.release.pipeline import (
            CHARGED_FAILURES,
            failure_reason,
            new_release_id,
            refuse_if_noise_dominates,
        )

        if self._synth is not None or (self._ledger is not None and self._ledger.entries):
            raise ConfigError(
                "this synthesizer has already spent its budget on records: fitting again would "
                "spend another epsilon on the same people; create a new DPSynthesizer (and count "
                "both spends)", key="fit")
        frame = _single_frame(data, self._table_name)
        schema, from_data = self._schema_for(frame)
        if self._resolved is not None and isinstance(frame, pd.DataFrame):
            from ptsynth.sdv import parse_datetimes

            frame = parse_datetimes(frame, self._resolved.table.datetime_formats)
        progress = reporter(progress if progress is not None else self._progress)
        # nothing spent yet; DP-bins columns are read on their public candidate grid
        table = read_records(frame, read_schema(schema), progress=progress)
        rng = random_source(self.seed)
        release_id = new_release_id()
        accountant = Accountant(self.epsilon, self.delta, rng=rng, release_id=release_id,
                                privacy_unit=schema.privacy_unit)
        lifetime = self._lifetime_ledger()
        if lifetime is not None:  # the dataset's lifetime budget, reserved before measuring
            lifetime.reserve(release_id, accountant.target_rho, detail={
                "pid": os.getpid(), "host": socket.gethostname(), "release_id": release_id,
                "by": "DPSynthesizer.fit"})
        try:
            if self._config is not None and schema.dp_bin_columns:  # the edges, then the rest
                config, table, _ = resolve_dp_bins(replace(self._config, schema=schema), table,
                                                   accountant, progress)
                schema = config.schema
            synth = registry.get(self._name).create(
                self._options, reporting_length=self.reporting_length, k=self.k,
                structural_zeros=schema.structural_zeros)
            synth.fit(NumpyBackend(table), accountant, progress=progress)
        except BaseException as exc:
            # As a failed release: nothing left this object, so it is refunded unless the
            # failure was decided from a DP output; then it is spent and a refit is refused.
            charged = isinstance(exc, CHARGED_FAILURES)
            if lifetime is not None:
                lifetime.abort(release_id, refund=not charged, reason=failure_reason(exc))
            if charged:
                self._ledger = accountant.ledger()
            raise
        self._ledger = accountant.ledger()
        if lifetime is not None:
            lifetime.commit(release_id, self._ledger.entries)
        warnings = []
        try:
            refuse_if_noise_dominates(int(max(round(synth.dp_record_count), 1)), accountant)
        except InputError as exc:
            warnings.append(exc.rule)
        self._schema, self._synth, self._rng = schema, synth, rng
        self._domains_from_data, self._warnings = from_data, warnings
        return self

    def _lifetime_ledger(self) -> Any:
        """The dataset ledger a release config names (``None``: none), opened before reading."""
        if self._dataset is None or self._dataset.ledger is None:
            return None
        from ptsynth.privacy import DatasetLedger

        return DatasetLedger(self._dataset.ledger, lifetime_epsilon=self._dataset.lifetime_epsilon,
                             lifetime_delta=self._dataset.lifetime_delta)

    def _schema_for(self, frame: Any) -> tuple[Schema, list[str]]:
        """The schema to fit with, and the columns whose domains were read from the data."""
        if not self._unconfirmed:
            assert self._schema is not None
            return self._schema, []
        if not self.allow_unconfirmed_domains:
            raise ConfigError(
                f"no public domain for {len(self._unconfirmed)} column(s) "
                f"({', '.join(self._unconfirmed)}): a domain read from the records would publish "
                "their rare values without budget. Pass domains={column: values or bin edges} "
                "from a code list or a preset config (or domains='metadata' if the metadata's "
                "ranges are public), or allow_unconfirmed_domains=True for a NOT FOR RELEASE "
                "trial run", key="domains")
        if self._resolved is None:  # a release config with unconfirmed domains
            assert self._schema is not None
            return self._schema, list(self._unconfirmed)
        if not isinstance(frame, pd.DataFrame):
            raise ConfigError("reading domains from the data needs a DataFrame", key="domains")
        return self._resolved.schema(frame), list(self._unconfirmed)

    # -- sampling ------------------------------------------------------------------------------
    def sample(self, num_rows: int) -> pd.DataFrame:
        """``num_rows`` synthetic records as a DataFrame of categoricals over the public labels
        (ordered for ordinal, numeric-bin and date-period columns; see
        :meth:`ptsynth.schema.Schema.decode`). Post-processing: no budget."""
        synth = self._fitted()
        n = _positive_int(num_rows, "num_rows")
        assert self._schema is not None and self._rng is not None
        return self._schema.decode(synth.sample(n, self._rng), typed=True)

    def released_shape(self, data: Any) -> pd.DataFrame:
        """Real records in the shape :meth:`sample` returns (rows merged by subject id, values
        as public labels), for a **private** comparison, e.g. ``evaluate_quality(
        synth.released_shape(real), synth.sample(n), synth.get_metadata())``. Never publish it."""
        from ptsynth.ingest import read_records

        schema = self.get_schema()
        frame = _single_frame(data, self._table_name)
        if self._resolved is not None and isinstance(frame, pd.DataFrame):
            from ptsynth.sdv import parse_datetimes

            frame = parse_datetimes(frame, self._resolved.table.datetime_formats)
        return schema.decode(read_records(frame, schema), typed=True)

    # -- what the object says about itself -------------------------------------------------------
    def get_schema(self) -> Schema:
        """The ptsynth schema (public domains) the synthesizer uses."""
        if self._schema is None:
            raise NotFittedError("the schema is known once fit has read the domains; pass "
                                 "domains= to know it before fitting")
        return self._schema

    def get_metadata(self) -> Any:
        """SDV ``Metadata`` of the frames :meth:`sample` returns (needs ``ptsynth[sdv]``)."""
        from ptsynth.sdv import schema_to_sdv

        return schema_to_sdv(self.get_schema().released(), table_name=self._table_name)

    def get_parameters(self) -> dict[str, Any]:
        """The parameters the synthesizer was created with, the effective options of the
        chosen method, and its release status (``"ok"`` or ``"NOT FOR RELEASE: ..."``)."""
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "method": self.method,
            "synthesizer": self._name,
            "reporting_length": self.reporting_length,
            "k": self.k,
            "seeded": self._seeded,
            "allow_unconfirmed_domains": self.allow_unconfirmed_domains,
            **options_dict(self._options),
            "release_status": self.release_status,
        }

    def get_budget(self) -> Ledger:
        """The privacy ledger of the fit (hash-chained entries, totals at ``delta``); before
        ``fit``, an empty ledger with the target."""
        if self._ledger is not None:
            return self._ledger
        rho = rho_from_epsilon_delta(self.epsilon, self.delta)
        return Ledger.from_entries([], delta=self.delta,
                                   target={"epsilon": self.epsilon, "delta": self.delta, "rho": rho})

    # -- persistence ---------------------------------------------------------------------------
    def _document(self) -> dict[str, Any]:
        synth = self._fitted()
        assert self._ledger is not None and self._schema is not None
        schema = self._schema
        body = {
            "format": FORMAT,
            "version": VERSION,
            "release_status": self.release_status,
            "not_for_release": self.not_for_release,
            "created": datetime.now(UTC).date().isoformat(),  # a date: no timing side channel
            "parameters": self.get_parameters(),
            "table_name": self._table_name,
            "schema": {"subject_id": schema.subject_id, "extra_columns": schema.extra_columns,
                       "columns": schema.to_dict(), **schema.structure_dict()},
            "domains_from_data": list(self._domains_from_data),
            "warnings": list(self._warnings),
            "budget": self._ledger.to_dict(),
            "model": persist.to_document(synth),
        }
        body = json.loads(_canonical(body))  # dates as ISO strings, as they will be read
        return {**body, "sha256": hashlib.sha256(_canonical(body)).hexdigest()}

    def save(self, filepath: str | Path) -> Path:
        """Write the fitted synthesizer as versioned JSON (no pickle): the model (post-processed
        DP measurements only), the schema, the parameters, the ledger and the release status."""
        path = Path(filepath)
        text = json.dumps(self._document(), indent=1, ensure_ascii=False) + "\n"
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, filepath: str | Path) -> DPSynthesizer:
        """Read a file written by :meth:`save`. Never executes code from it; refuses a file of
        another format or version, or one whose checksum, ledger or model does not verify
        (:class:`~ptsynth.errors.BundleError`). The checksum detects edits and truncation, not
        a forger who recomputes it: keep the file's own hash somewhere trusted to anchor it."""
        path = Path(filepath)
        return cls._from_document(persist.read_json(path, what="synthesizer"), source=str(path))

    @classmethod
    def _from_document(cls, doc: Any, *, source: str) -> DPSynthesizer:
        body = persist.verified_body(doc, fmt=FORMAT, version=VERSION,
                                     what="DPSynthesizer file", source=source)
        try:
            params = dict(body["parameters"])
            schema_doc = body["schema"]
            schema = Schema.from_dict(schema_doc["columns"], subject_id=schema_doc["subject_id"],
                                      extra_columns=schema_doc["extra_columns"], source=source,
                                      hierarchies=schema_doc.get("hierarchies", ()),
                                      constraints=schema_doc.get("constraints", ()))
            ledger = Ledger.from_dict(body["budget"], source=f"{source} budget")
            model = persist.from_document(body["model"], source=f"{source} model")
            options = {k: params[k] for k in persist_option_names(params["synthesizer"])}
            self = cls(schema, params["epsilon"], params["delta"], params["method"],
                       reporting_length=params["reporting_length"], k=params["k"],
                       allow_unconfirmed_domains=params["allow_unconfirmed_domains"],
                       table_name=body["table_name"], **options)
            self._seeded = bool(params["seeded"])
        except LedgerError as exc:
            raise BundleError(f"its ledger does not verify ({exc.rule})", file=source) from None
        except BundleError:
            raise
        except PtsynthError as exc:
            raise BundleError(f"invalid ({exc.rule})", file=source) from None
        except (KeyError, TypeError, ValueError, AttributeError):
            raise BundleError("is incomplete or inconsistent", file=source) from None
        if model.name != self._name or tuple(model.fitted_domains) != schema.encoded_domains():
            raise BundleError("its model does not match its schema", file=source)
        if ledger.total["rho"] > (ledger.target or {}).get("rho", math.inf) * (1 + 1e-9) or \
                not math.isclose(float((ledger.target or {}).get("epsilon", -1)), self.epsilon):
            raise BundleError("its ledger does not match its budget", file=source)
        # Sampling is post-processing: a loaded model samples from the CSPRNG. The file holds no
        # seed: with it, anyone could redraw the noise of a seeded fit and subtract it.
        self._synth, self._ledger, self._rng = model, ledger, random_source(None)
        self._domains_from_data = [str(c) for c in body.get("domains_from_data", [])]
        self._warnings = [str(w) for w in body.get("warnings", [])]
        return self


def persist_option_names(synthesizer: str) -> tuple[str, ...]:
    """Names of the options of a registered synthesizer (the keys saved in the parameters)."""
    from ptsynth.synth.options import option_names

    return option_names(registry.get(synthesizer).Options)


def _single_frame(data: Any, table_name: str) -> Any:
    """A DataFrame from ``data`` or SDV 2.x's ``{table_name: DataFrame}``; other inputs as is."""
    if isinstance(data, Mapping):
        if len(data) != 1:
            raise InputError(f"pass one table (a DataFrame or {{{table_name!r}: DataFrame}}), "
                             f"not {len(data)}")
        (frame,) = data.values()
        if not isinstance(frame, pd.DataFrame):
            raise InputError("the table must be a pandas DataFrame")
        return frame
    return data


__all__ = ["DPSynthesizer", "METHODS", "NOT_FOR_RELEASE"]
