"""The DP aggregate release as an artefact: noisy combination counts, their export and reader.

Why a type: the aggregate table is both a public release file (Synthetic Data Showcase's
``selections`` / ``protected_count`` format, CSV and Parquet) and the input of the aggregate-seeded
synthesizer and of count queries on a published bundle. It holds post-processed DP outputs
only, plus the public parameters of each length's measurement (σ, sensitivity, threshold), so a
reader of the bundle can attach an uncertainty to every released count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptsynth.aggregates.combinations import CombinationIndex, attribute_offsets, candidates
from ptsynth.counting import NumpyBackend
from ptsynth.errors import BundleError
from ptsynth.spreadsheet import neutralise
from ptsynth.table import ColumnDomain, EncodedTable

#: Parquet key-value metadata entry holding the release's public parameters.
PARQUET_METADATA_KEY = b"ptsynth.aggregates"
#: The SDS row holding the record count.
RECORD_COUNT_ROW = "record_count"


@dataclass(frozen=True)
class LengthSpec:
    """Public parameters and outcome of the measurement of one combination length."""

    length: int
    rho: float
    sigma: float
    sensitivity: float
    threshold: float
    n_column_sets: int = 0
    n_candidates: int = 0
    n_released: int = 0
    measured: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LengthSpec:
        """Inverse of :meth:`to_dict` (infinite σ / threshold stored as JSON numbers or null)."""
        def num(key: str) -> float:
            v = data.get(key)
            return float("inf") if v is None else float(v)

        return cls(
            length=int(data["length"]), rho=float(data["rho"]), sigma=num("sigma"),
            sensitivity=float(data["sensitivity"]), threshold=num("threshold"),
            n_column_sets=int(data.get("n_column_sets", 0)),
            n_candidates=int(data.get("n_candidates", 0)),
            n_released=int(data.get("n_released", 0)), measured=bool(data.get("measured", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an infinite σ or threshold, of a length that holds no combination,
        becomes ``null``)."""
        def finite(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "length": self.length,
            "rho": self.rho,
            "sigma": finite(self.sigma),
            "sensitivity": self.sensitivity,
            "threshold": finite(self.threshold),
            "n_column_sets": self.n_column_sets,
            "n_candidates": self.n_candidates,
            "n_released": self.n_released,
            "measured": self.measured,
        }


@dataclass(frozen=True)
class AggregateRelease:
    """Noisy, thresholded, consistent combination counts (all post-processed DP outputs).

    ``combinations[ℓ]`` is an int64 array ``(n_ℓ, ℓ, 2)`` of (column, code) pairs in ascending
    column order, ``counts[ℓ]`` the matching int64 counts (each ≥ k), rows in canonical key order.
    """

    domains: tuple[ColumnDomain, ...]
    record_count: int
    reporting_length: int
    k: int
    combinations: dict[int, np.ndarray]
    counts: dict[int, np.ndarray]
    lengths: tuple[LengthSpec, ...] = ()
    max_attributes: int | None = None
    record_count_sigma: float | None = None
    record_count_rho: float = 0.0
    #: "public" (a given cap) or "dp_quantile_<q>" (bought with ``quantile_rho``).
    max_attributes_source: str = "public"
    quantile_rho: float = 0.0
    _index: CombinationIndex = field(init=False, repr=False, compare=False)
    _offsets: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "domains", tuple(self.domains))
        offsets = attribute_offsets(self.domains)
        rows: dict[int, np.ndarray] = {}
        combos: dict[int, np.ndarray] = {}
        counts: dict[int, np.ndarray] = {}
        for ell in range(1, self.reporting_length + 1):
            c = np.asarray(self.combinations.get(ell, np.zeros((0, ell, 2))), dtype=np.int64)
            c = c.reshape(-1, ell, 2)
            rows[ell] = offsets[c[:, :, 0]] + c[:, :, 1]
            combos[ell] = c
            counts[ell] = np.asarray(self.counts.get(ell, np.zeros(0)), dtype=np.int64)
            if counts[ell].shape != (c.shape[0],):
                raise ValueError(f"length {ell}: counts do not match combinations")
        index = CombinationIndex(int(offsets[-1]), rows)
        for ell in rows:  # canonical order: sorted by key
            combos[ell] = combos[ell][index.order[ell]]
            counts[ell] = counts[ell][index.order[ell]]
        object.__setattr__(self, "combinations", combos)
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_offsets", offsets)

    @classmethod
    def from_table(
        cls,
        table: EncodedTable,
        *,
        reporting_length: int,
        k: int,
        max_attributes: int | None = None,
    ) -> AggregateRelease:
        """Exact aggregates (counts ≥ k) of a table that is already public, e.g. DP synthetic
        records. **No noise:** never call this on sensitive data; it spends no budget because
        its input must already be a DP output."""
        if reporting_length < 1 or k < 1:
            raise ValueError("reporting_length and k must be at least 1")
        domains = table.domains
        offsets = attribute_offsets(domains)
        n_attr = int(offsets[-1])
        g_col = np.repeat(np.arange(len(domains)), np.diff(offsets)).astype(np.int64)
        g_code = np.arange(n_attr, dtype=np.int64) - offsets[g_col]
        counter = NumpyBackend(table).combination_counter(None, None)
        rows: dict[int, np.ndarray] = {}
        counts: dict[int, np.ndarray] = {}
        index = CombinationIndex(n_attr, {})
        for ell in range(1, reporting_length + 1):
            cand = candidates(ell, rows, index, g_col, n_attr)
            true, _ = counter.combination_counts(g_col[cand], g_code[cand])
            ok = true >= k  # exact counts are monotone: Apriori loses nothing
            rows[ell], counts[ell] = cand[ok], true[ok]
            index = CombinationIndex(n_attr, rows)
        combos = {
            ell: np.stack([g_col[r], g_code[r]], axis=-1).reshape(-1, ell, 2)
            for ell, r in rows.items()
        }
        return cls(
            domains=domains,
            record_count=table.n_records,
            reporting_length=reporting_length,
            k=k,
            combinations=combos,
            counts=counts,
            max_attributes=max_attributes,
        )

    # -- lookups ---------------------------------------------------------------------------
    @property
    def index(self) -> CombinationIndex:
        return self._index

    @property
    def offsets(self) -> np.ndarray:
        """Global attribute id offsets per column (see :func:`attribute_offsets`)."""
        return self._offsets

    def attribute_rows(self, length: int) -> np.ndarray:
        """Combinations of ``length`` as sorted global attribute ids, shape (n, length)."""
        c = self.combinations[length]
        return self._offsets[c[:, :, 0]] + c[:, :, 1]

    def count(self, attrs: tuple[tuple[int, int], ...]) -> int | None:
        """Released count of a combination of (column, code) attributes (any order), or ``None``
        when it was not released (suppressed, never a candidate, or not a valid combination).
        The empty combination returns the record count."""
        attrs = tuple(sorted((int(c), int(v)) for c, v in attrs))
        if not attrs:
            return int(self.record_count)
        ell = len(attrs)
        cols = [c for c, _ in attrs]
        if ell > self.reporting_length or len(set(cols)) != ell:
            return None
        for c, v in attrs:
            if not (0 <= c < len(self.domains)) or not (0 <= v < len(self.domains[c].labels)):
                return None
        g = np.array([[self._offsets[c] + v for c, v in attrs]], dtype=np.int64)
        i = int(self._index.lookup(g)[0])
        return None if i < 0 else int(self.counts[ell][i])

    def iter_counts(self):
        """Yield ``(attrs, count)`` with ``attrs`` a tuple of ``(column, code)`` pairs, by length
        (for evaluation against true counts)."""
        for ell in range(1, self.reporting_length + 1):
            combos, counts = self.combinations[ell], self.counts[ell]
            for i in range(counts.size):
                yield tuple((int(c), int(v)) for c, v in combos[i]), int(counts[i])

    def by_length(self) -> dict[int, int]:
        """Number of released combinations per length."""
        return {ell: int(self.counts[ell].size) for ell in range(1, self.reporting_length + 1)}

    # -- export ----------------------------------------------------------------------------
    def _attribute_strings(self) -> np.ndarray:
        """``column:value`` per global attribute id, as SDS writes them (set members as
        ``source:member``)."""
        out: list[str] = []
        for d in self.domains:
            prefix = d.source + "="
            if d.kind == "set_member" and d.name.startswith(prefix):
                out.extend(f"{d.source}:{d.name[len(prefix) :]}" for _ in d.labels)
            else:
                out.extend(f"{d.name}:{label}" for label in d.labels)
        return np.array(out, dtype=object)

    def to_frame(self) -> pd.DataFrame:
        """SDS form: ``selections`` (attributes joined with ``;`` in column order) and
        ``protected_count``; the first row is ``record_count``."""
        strings = self._attribute_strings()
        selections: list[np.ndarray] = [np.array(["record_count"], dtype=object)]
        counts: list[np.ndarray] = [np.array([self.record_count], dtype=np.int64)]
        for ell in range(1, self.reporting_length + 1):
            g = self.attribute_rows(ell)
            if g.shape[0] == 0:
                continue
            s = strings[g[:, 0]]
            for i in range(1, ell):
                s = s + ";" + strings[g[:, i]]
            selections.append(s)
            counts.append(self.counts[ell])
        return pd.DataFrame(
            {
                "selections": np.concatenate(selections).astype(object),
                "protected_count": np.concatenate(counts).astype(np.int64),
            }
        )

    def metadata(self) -> dict[str, Any]:
        """Public parameters of the release (for manifests and file metadata)."""
        return {
            "record_count": int(self.record_count),
            "reporting_length": int(self.reporting_length),
            "k": int(self.k),
            "max_attributes": self.max_attributes,
            "max_attributes_source": self.max_attributes_source,
            "quantile_rho": self.quantile_rho,
            "record_count_sigma": self.record_count_sigma,
            "record_count_rho": self.record_count_rho,
            "lengths": [spec.to_dict() for spec in self.lengths],
            "by_length": self.by_length(),
        }

    def write_csv(self, path: str | Path, *, sep: str = ",") -> Path:
        """Write :meth:`to_frame` as CSV (``sep="\\t"`` gives SDS's own TSV layout), cells that
        a spreadsheet would run as formulas neutralised (:mod:`ptsynth.spreadsheet`)."""
        path = Path(path)
        neutralise(self.to_frame()).to_csv(path, index=False, sep=sep)
        return path

    def write_parquet(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` as Parquet, with the public parameters in the file metadata."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[PARQUET_METADATA_KEY] = json.dumps(self.metadata()).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)
        return path

    # -- reading a published release back ---------------------------------------------------
    @classmethod
    def read_parquet(cls, path: str | Path, domains: tuple[ColumnDomain, ...]) -> AggregateRelease:
        """Read a release written by :meth:`write_parquet` over the same public ``domains``.

        Raises :class:`~ptsynth.errors.BundleError` naming the file and the rule when the file
        is not such a release (unreadable, no ptsynth metadata, an unknown attribute).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException):
            raise BundleError(f"{path.name}: cannot be read as Parquet") from None
        raw = (table.schema.metadata or {}).get(PARQUET_METADATA_KEY)
        if raw is None:
            raise BundleError(f"{path.name}: holds no ptsynth aggregate metadata")
        try:
            meta = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BundleError(f"{path.name}: aggregate metadata is not JSON") from None
        return cls.from_frame(table.to_pandas(), domains, meta, source=path.name)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        domains: tuple[ColumnDomain, ...],
        metadata: dict[str, Any],
        *,
        source: str = "aggregates",
    ) -> AggregateRelease:
        """Rebuild a release from its SDS frame (:meth:`to_frame`) and :meth:`metadata`.

        ``selections`` strings are matched against the public attribute strings of
        ``domains``; an attribute label may itself hold ``;`` (tokens are joined until they
        name a known attribute).
        """
        if list(frame.columns[:2]) != ["selections", "protected_count"]:
            raise BundleError(f"{source}: columns must be selections, protected_count")
        try:
            L, k = int(metadata["reporting_length"]), int(metadata["k"])
            lengths = tuple(LengthSpec.from_dict(s) for s in metadata.get("lengths", []))
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{source}: aggregate metadata lacks reporting_length / k") from None
        probe = cls(domains=domains, record_count=0, reporting_length=L, k=k,
                    combinations={}, counts={})
        ids = {s: g for g, s in enumerate(probe._attribute_strings())}
        offsets = probe.offsets
        g_col = np.repeat(np.arange(len(domains)), np.diff(offsets)).astype(np.int64)
        record_count = None
        rows: dict[int, list[list[int]]] = {ell: [] for ell in range(1, L + 1)}
        counts: dict[int, list[int]] = {ell: [] for ell in range(1, L + 1)}
        # With no ";" inside an attribute string, a selection splits into its attributes.
        plain = not any(";" in s for s in ids)
        numbers = pd.to_numeric(frame["protected_count"], errors="coerce")
        if numbers.isna().any() or not np.all(np.isfinite(numbers)) \
                or not np.array_equal(numbers, np.round(numbers)):
            raise BundleError(f"{source}: protected_count must hold whole numbers")
        for sel, cnt in zip(frame["selections"].astype(str), numbers.tolist(), strict=True):
            if sel == RECORD_COUNT_ROW:
                record_count = int(cnt)
                continue
            if plain:
                try:
                    attrs = [ids[t] for t in sel.split(";")]
                except KeyError:
                    attrs = None
            else:
                attrs = _parse_selection(sel, ids)
            if attrs is None or not 1 <= len(attrs) <= L \
                    or len(set(g_col[attrs].tolist())) != len(attrs):
                raise BundleError(f"{source}: a selection names no known attribute combination")
            attrs.sort()
            rows[len(attrs)].append(attrs)
            counts[len(attrs)].append(int(cnt))
        if record_count is None:
            raise BundleError(f"{source}: no {RECORD_COUNT_ROW} row")
        combos = {}
        for ell in rows:
            g = np.asarray(rows[ell], dtype=np.int64).reshape(-1, ell)
            combos[ell] = np.stack([g_col[g], g - offsets[g_col[g]]], axis=-1).reshape(-1, ell, 2)
        ma = metadata.get("max_attributes")
        return cls(
            domains=domains, record_count=record_count, reporting_length=L, k=k,
            combinations=combos,
            counts={ell: np.asarray(c, dtype=np.int64) for ell, c in counts.items()},
            lengths=lengths, max_attributes=None if ma is None else int(ma),
            record_count_sigma=metadata.get("record_count_sigma"),
            record_count_rho=float(metadata.get("record_count_rho") or 0.0),
            max_attributes_source=str(metadata.get("max_attributes_source", "public")),
            quantile_rho=float(metadata.get("quantile_rho") or 0.0),
        )

    def sigma(self, length: int) -> float | None:
        """Standard deviation of the noise on one released count of ``length`` (``None`` when
        the counts were not measured with noise, e.g. counted on DP synthetic records)."""
        for spec in self.lengths:
            if spec.length == length and spec.measured and np.isfinite(spec.sigma):
                return float(spec.sigma)
        return None


def _parse_selection(selection: str, ids: dict[str, int]) -> list[int] | None:
    """Global attribute ids of a ``;``-joined selection, or ``None`` if it does not parse."""
    tokens = selection.split(";")
    out: list[int] = []
    i = 0
    while i < len(tokens):
        for j in range(i + 1, len(tokens) + 1):  # shortest join that names an attribute
            g = ids.get(";".join(tokens[i:j]))
            if g is not None:
                out.append(g)
                i = j
                break
        else:
            return None
    return out
