"""Differentially private aggregate release: noisy counts of attribute combinations.

Why: the aggregate table ("how many records hold these ≤ L attributes together") is the release
format Synthetic Data Showcase made familiar to the counter-trafficking community (CTDC), and the
seed of the aggregate-seeded synthesizer. This module measures it under zCDP, following the
"DP marginals" design of Gopi, Mahabadi and Yekhanin used by SDS / pac-synth, with these changes:

* **Public domains.** Length-1 candidates are *all* values of each column's public domain, so no
  δ-calibrated threshold is spent on learning which values exist (SDS learns the domain from the
  data). Every candidate is noised, including those with true count 0.
* **DP contribution bound.** Let ``a_i`` be the number of present attributes of record i
  (never-missing columns always count) and ``m_pub`` the number of columns (its public maximum).
  A record holding ``a`` attributes holds ``C(a, ℓ)`` length-ℓ combinations, so with a per-record
  cap ``m`` the L2 sensitivity of the vector of all length-ℓ candidate counts is
  ``Δ_ℓ = sqrt(C(m, ℓ))``. As in SDS, a small share of ρ (``quantile_share``, 1%) buys a DP
  ``quantile`` (default 0.95) of ``a_i`` with the exponential mechanism over ``c = 1..m_pub``
  and utility ``u(c) = −|#{i : a_i ≤ c} − q·n|``; that ``c`` becomes ``m``. Records holding more
  keep a uniformly random subset of ``m`` of their present attributes for counting
  (contribution bounding, drawn with ``accountant.rng``), so Δ_ℓ holds for every dataset and
  the choice of ``m`` composes adaptively. On the demo data (32 encoded columns) the cap drops
  from 32 to ≈ 17, cutting Δ_3 from √4960 to √680. Passing ``max_attributes=`` uses that public
  cap instead and spends nothing on the quantile.

  *Sensitivity of the utility.* Adding one record (unbounded neighbours) raises n by 1 and the
  count ``#{a_i ≤ c}`` by 1 (if its ``a ≤ c``) or 0; so ``#{a_i ≤ c} − q·n`` moves by ``1 − q``
  or ``−q``, and ``u(c)`` by at most ``max(q, 1 − q)`` in absolute value, for every c
  (removal: the same with signs flipped). The mechanism is run with that sensitivity (≤ 1) and
  costs ``ρ_q = ε_q²/8`` (bounded-range analysis of the exponential mechanism).

  *Why not one quantile per length* (of ``C(a_i, ℓ)``): ``a ↦ C(a, ℓ)`` is non-decreasing, so
  its q-quantile is ``C(quantile_q(a), ℓ)``: per-length quantiles at the same q give the same
  caps and would pay for the same information L times.
* **One Gaussian mechanism per length.** All length-ℓ candidates form one vector measured with
  discrete Gaussian noise of standard deviation σ_ℓ: one ledger entry per length.

Attributes are ``(column, code)`` pairs with ``code`` not the column's missing code (missing means
"absent", as in SDS). A combination of length ℓ is a set of ℓ attributes on distinct columns,
stored in canonical (ascending column) order. Set-member columns of one multi-valued source are
separate columns here.

Algorithm (ρ = the budget given, by default the accountant's remaining budget):

1. 1% of ρ buys a discrete-Gaussian record count (sensitivity 1), and (unless
   ``max_attributes`` is given) ``quantile_share`` of ρ the DP contribution bound ``m``.
2. The rest is split across lengths 1..L by ``noise_split`` (σ_ℓ ∝ weight_ℓ) with
   ``ρ_ℓ = Δ_ℓ² / (2σ_ℓ²)``.
3. Length ℓ candidates: ℓ = 1 all attributes; ℓ ≥ 2 extensions of released (ℓ−1)-combinations
   by one released attribute of a higher column, kept only if all their (ℓ−1)-sub-combinations
   were released (Apriori). Candidates depend on earlier *noisy* outputs only (adaptive
   composition), never on the data directly.
4. Keep noisy counts ≥ τ_ℓ = max(k, c_ℓ·σ_ℓ) (``threshold_factor``; default c_1 = 1, c_ℓ = 0
   for ℓ ≥ 2, see ``DEFAULT_THRESHOLD_FACTOR``). Values of columns that forbid missing use
   τ = k at length 1: every record holds exactly one of them, so a column whose values all fall
   below τ_1 would leave the synthesizer no way to complete a record within its guarantee.
5. Post-processing: cap each count at the minimum of its (ℓ−1)-sub-combination counts, drop counts
   below k (every released count is ≥ k), and raise the record count to at least every 1-way
   count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ptsynth.table import ColumnDomain, EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import Accountant, RandomSource

#: Share of ρ spent on the noisy record count.
RECORD_COUNT_SHARE = 0.01
#: Share of ρ spent on the DP quantile of present attributes per record (the contribution bound).
DEFAULT_QUANTILE_SHARE = 0.01
#: Quantile of the number of present attributes per record used as the contribution bound.
DEFAULT_ATTRIBUTE_QUANTILE = 0.95
#: Default threshold factors c_ℓ in τ_ℓ = max(k, c_ℓ·σ_ℓ), by length (the last repeats).
#: Candidates come from public domains and earlier noisy outputs only, so any τ is
#: post-processing; it trades fabricated (noise-only) combinations against suppressed real
#: ones. Length 1 keeps c = 1 (≈ 16% of zero-count public values pass, out of a few hundred);
#: longer lengths use τ = k: the synthesizer may only emit released combinations, and every
#: suppressed real triple forbids whole records, so on the demo data (32 columns, L = 3)
#: τ = k cut the synthetic data's 1-way TVD from 0.30 to 0.23 at ε = 1 and 0.23 to 0.16 at
#: ε = 4 compared with c = 3 (δ = 1e-6, 19.4k records). The price is an aggregate table in which
#: many long combinations are noise around a true count of 0; pass ``threshold_factor=3`` for an
#: aggregates-only release.
DEFAULT_THRESHOLD_FACTOR: tuple[float, ...] = (1.0, 0.0)
#: Presets of the noise split: weight of σ_ℓ as a function of the length ℓ.
NOISE_SPLITS = {
    "balanced": lambda ell: 1.0,
    "long": lambda ell: 1.0 / ell,
    "short": lambda ell: float(ell),
}
#: Default preset. Δ_ℓ² = C(m, ℓ) grows steeply with ℓ, so equal σ already puts most of ρ on
#: the longest length; "long" (SDS's default, σ_ℓ ∝ 1/ℓ) would multiply σ_1 by L for a few
#: percent less noise at length L.
DEFAULT_NOISE_SPLIT = "balanced"
#: Above this many cells a column set is counted with sorted sparse keys instead of bincount.
_DENSE_CELLS = 1 << 16
#: Tolerance kept below the budget so float rounding never exceeds it.
_RHO_SLACK = 1e-9


# ---------------------------------------------------------------------------------------------
# attribute numbering and combination lookup (shared with the aggregate-seeded synthesizer)
# ---------------------------------------------------------------------------------------------
def attribute_offsets(domains: Sequence[ColumnDomain]) -> np.ndarray:
    """Global attribute id of (column j, code c) is ``offsets[j] + c``; ids ascend with columns.

    Only non-missing codes are attributes, so column j owns ``len(labels)`` ids.
    """
    sizes = np.array([len(d.labels) for d in domains], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


class CombinationIndex:
    """Vectorised membership / id lookup of combinations given as sorted global attribute ids.

    Why not a dict: the synthesizer looks up millions of (record context + candidate value)
    combinations; doing it with ``searchsorted`` on integer keys keeps it in numpy. The key of a
    length-ℓ combination is ``id(prefix of length ℓ−1) * G + last attribute``, where ``id`` is the
    position of the prefix in the sorted released combinations of length ℓ−1 (a released
    combination's prefix is always released: the release is downward closed). Keys stay below
    ``n_{ℓ−1} · G``, far from int64 overflow.
    """

    def __init__(self, n_attributes: int, rows: dict[int, np.ndarray]) -> None:
        self.n_attributes = int(n_attributes)
        self.keys: dict[int, np.ndarray] = {}
        self.order: dict[int, np.ndarray] = {}
        for ell in sorted(rows):
            g = np.asarray(rows[ell], dtype=np.int64).reshape(-1, ell)
            if ell == 1:
                key = g[:, 0].copy()
            else:
                prefix = self.lookup(g[:, :-1])
                if np.any(prefix < 0):
                    raise ValueError(f"length-{ell} combinations are not downward closed")
                key = prefix * self.n_attributes + g[:, -1]
            order = np.argsort(key, kind="stable")
            self.keys[ell] = key[order]
            self.order[ell] = order
            if key.size > 1 and np.any(np.diff(self.keys[ell]) == 0):
                raise ValueError(f"duplicate length-{ell} combinations")

    def lookup(self, g: np.ndarray) -> np.ndarray:
        """Ids (positions in sorted key order) of the rows of ``g`` (shape (N, ℓ), each row
        ascending); −1 where the combination is not in the index."""
        g = np.asarray(g, dtype=np.int64)
        n, ell = g.shape
        ids = np.full(n, -1, dtype=np.int64)
        if ell == 0:
            return np.zeros(n, dtype=np.int64)
        ok = np.ones(n, dtype=bool)
        key = g[:, 0]
        for i in range(1, ell + 1):
            keys = self.keys.get(i)
            if keys is None or keys.size == 0:
                return np.full(n, -1, dtype=np.int64)
            pos = np.searchsorted(keys, key)
            pos_c = np.minimum(pos, keys.size - 1)
            ok &= (pos < keys.size) & (keys[pos_c] == key)
            ids = np.where(ok, pos_c, -1)
            if i < ell:
                key = np.maximum(ids, 0) * self.n_attributes + g[:, i]
        return ids


# ---------------------------------------------------------------------------------------------
# the release
# ---------------------------------------------------------------------------------------------
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "length": self.length,
            "rho": self.rho,
            "sigma": self.sigma,
            "sensitivity": self.sensitivity,
            "threshold": self.threshold,
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
        cols, radix = _present_codes(table)
        rows: dict[int, np.ndarray] = {}
        counts: dict[int, np.ndarray] = {}
        index = CombinationIndex(n_attr, {})
        for ell in range(1, reporting_length + 1):
            cand = _candidates(ell, rows, index, g_col, n_attr)
            true, _ = _count_candidates(cols, radix, g_col[cand], g_code[cand])
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
        """Write :meth:`to_frame` as CSV (``sep="\\t"`` gives SDS's own TSV layout)."""
        path = Path(path)
        self.to_frame().to_csv(path, index=False, sep=sep)
        return path

    def write_parquet(self, path: str | Path) -> Path:
        """Write :meth:`to_frame` as Parquet, with the public parameters in the file metadata."""
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        table = pa.Table.from_pandas(self.to_frame(), preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"ptsynth.aggregates"] = json.dumps(self.metadata()).encode()
        pq.write_table(table.replace_schema_metadata(meta), path)
        return path


# ---------------------------------------------------------------------------------------------
# planning (public inputs only)
# ---------------------------------------------------------------------------------------------
def _split_weights(noise_split: str | Sequence[float], reporting_length: int) -> np.ndarray:
    if isinstance(noise_split, str):
        try:
            fn = NOISE_SPLITS[noise_split]
        except KeyError:
            raise ValueError(
                f"unknown noise_split {noise_split!r}; use one of {sorted(NOISE_SPLITS)} "
                "or a sequence of positive weights"
            ) from None
        w = np.array([fn(ell) for ell in range(1, reporting_length + 1)], dtype=np.float64)
    else:
        w = np.asarray(list(noise_split), dtype=np.float64)
        if w.shape != (reporting_length,) or np.any(~np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("noise_split weights must be reporting_length positive numbers")
    return w


def _threshold_factors(
    threshold_factor: float | Sequence[float], reporting_length: int
) -> np.ndarray:
    """One factor per length; a shorter sequence repeats its last value."""
    if isinstance(threshold_factor, (int, float)):
        c = np.full(reporting_length, float(threshold_factor))
    else:
        c = np.asarray(list(threshold_factor), dtype=np.float64).ravel()
        if c.size == 0:
            raise ValueError("threshold_factor must be a number or a non-empty sequence")
        c = np.concatenate([c, np.full(max(0, reporting_length - c.size), c[-1])])
        c = c[:reporting_length]
    if np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ValueError("threshold factors must be finite and non-negative")
    return c


def _check_common(reporting_length: int, k: int, rho: float) -> None:
    if reporting_length < 1:
        raise ValueError("reporting_length must be at least 1")
    if k < 1:
        raise ValueError("k must be at least 1")
    if not rho > 0 or not math.isfinite(rho):
        raise ValueError("rho must be a positive finite number")


def length_sensitivity(m: int, ell: int) -> float:
    """L2 sensitivity of all length-ℓ counts when each record holds at most m attributes:
    one record changes at most C(m, ℓ) counts, each by one."""
    return math.sqrt(math.comb(int(m), int(ell)))


def _length_specs(
    n_cols: int,
    m: int,
    *,
    rho_lengths: float,
    reporting_length: int,
    k: int,
    noise_split: str | Sequence[float],
    threshold_factor: float | Sequence[float],
) -> list[LengthSpec]:
    """Per-length σ_ℓ, ρ_ℓ, Δ_ℓ = √C(m, ℓ), τ_ℓ for a contribution bound ``m`` and the ρ left
    for the lengths (public inputs, or ``m`` itself a DP output)."""
    w = _split_weights(noise_split, reporting_length)
    c = _threshold_factors(threshold_factor, reporting_length)
    lengths = np.arange(1, reporting_length + 1)
    delta2 = np.array([length_sensitivity(m, int(ell)) ** 2 for ell in lengths])
    live = delta2 > 0  # lengths longer than m hold no combination
    if not live.any():
        raise ValueError("no combination length is possible with these columns")
    s = math.sqrt(float(np.sum(delta2[live] / w[live] ** 2)) / (2.0 * rho_lengths))
    specs = []
    for i, ell in enumerate(lengths):
        ell = int(ell)
        if not live[i]:
            specs.append(LengthSpec(ell, 0.0, math.inf, 0.0, math.inf, 0))
            continue
        sigma = s * w[i]
        specs.append(
            LengthSpec(
                length=ell,
                rho=delta2[i] / (2.0 * sigma**2),
                sigma=sigma,
                sensitivity=float(math.sqrt(delta2[i])),
                threshold=max(float(k), c[i] * sigma),
                n_column_sets=math.comb(n_cols, ell),
            )
        )
    return specs


@dataclass(frozen=True)
class _Budget:
    """How ρ is divided (public inputs only)."""

    rho_count: float
    sigma_count: float
    rho_quantile: float  # 0 when max_attributes is public
    rho_lengths: float
    m_public: int  # the public cap (given max_attributes, else the number of columns)


def _budget(
    domains: Sequence[ColumnDomain],
    *,
    rho: float,
    reporting_length: int,
    k: int,
    max_attributes: int | None,
    quantile_share: float,
) -> _Budget:
    _check_common(reporting_length, k, rho)
    n_cols = len(domains)
    if n_cols < 1:
        raise ValueError("no columns")
    if max_attributes is None:
        m = n_cols
        if not 0 < quantile_share < 1:
            raise ValueError("quantile_share must lie strictly between 0 and 1")
    else:
        m = int(max_attributes)
        if m < 1:
            raise ValueError("max_attributes must be at least 1")
        m = min(m, n_cols)
    rho = rho * (1.0 - _RHO_SLACK)
    rho_count = RECORD_COUNT_SHARE * rho
    rho_q = quantile_share * rho if max_attributes is None else 0.0
    return _Budget(
        rho_count=rho_count,
        sigma_count=1.0 / math.sqrt(2.0 * rho_count),
        rho_quantile=rho_q,
        rho_lengths=rho - rho_count - rho_q,
        m_public=m,
    )


def plan_aggregates(
    domains: Sequence[ColumnDomain],
    *,
    rho: float,
    reporting_length: int,
    k: int = 10,
    max_attributes: int | None = None,
    noise_split: str | Sequence[float] = DEFAULT_NOISE_SPLIT,
    threshold_factor: float | Sequence[float] = DEFAULT_THRESHOLD_FACTOR,
    attribute_quantile: float = DEFAULT_ATTRIBUTE_QUANTILE,
    quantile_share: float = DEFAULT_QUANTILE_SHARE,
) -> list[dict[str, Any]]:
    """Per length ℓ: ρ_ℓ, σ_ℓ (standard deviation of one noisy count), Δ_ℓ (L2 sensitivity),
    τ_ℓ (threshold) and the number of candidate column sets. Reads public inputs only (for
    ``ptsynth release --plan``). The record count takes ``RECORD_COUNT_SHARE`` of ρ besides.

    Without ``max_attributes`` the contribution bound is a DP quantile chosen at release time
    (``quantile_rho`` of ρ); σ, Δ and τ are then shown at the public cap (number of columns):
    upper bounds, the release's own values are smaller (see ``max_attributes_source``).
    """
    bud = _budget(
        domains,
        rho=rho,
        reporting_length=reporting_length,
        k=k,
        max_attributes=max_attributes,
        quantile_share=quantile_share,
    )
    specs = _length_specs(
        len(domains),
        bud.m_public,
        rho_lengths=bud.rho_lengths,
        reporting_length=reporting_length,
        k=k,
        noise_split=noise_split,
        threshold_factor=threshold_factor,
    )
    source = "public" if max_attributes is not None else f"dp_quantile_{attribute_quantile:g}"
    out = []
    for spec in specs:
        d = spec.to_dict()
        del d["n_candidates"], d["n_released"], d["measured"]
        d["max_attributes"] = bud.m_public
        d["max_attributes_source"] = source
        d["max_candidates_length_1"] = int(sum(len(dom.labels) for dom in domains))
        d["record_count_rho"] = bud.rho_count
        d["record_count_sigma"] = bud.sigma_count
        d["quantile_rho"] = bud.rho_quantile
        out.append(d)
    return out


def dp_max_attributes(
    table: EncodedTable,
    accountant: Accountant,
    *,
    rho: float,
    quantile: float = DEFAULT_ATTRIBUTE_QUANTILE,
) -> int:
    """DP ``quantile`` of the number of present attributes per record (exponential mechanism
    over the public candidates 1..number of columns), spending ``rho`` (ε = √(8ρ)).

    Utility ``u(c) = −|#{a_i ≤ c} − q·n|`` with sensitivity ``max(q, 1 − q)`` under add/remove
    of one record (see the module docstring). One ledger entry.
    """
    if not 0 < quantile < 1:
        raise ValueError("quantile must lie strictly between 0 and 1")
    d = table.n_columns
    codes = np.asarray(table.codes)
    a = np.zeros(table.n_records, dtype=np.int64)
    for j, dom in enumerate(table.domains):
        a += (codes[:, j] != dom.missing_code) if dom.allows_missing else 1
    at_most = np.cumsum(np.bincount(a, minlength=d + 1))[1 : d + 1]  # #{a_i ≤ c}, c = 1..d
    scores = -np.abs(at_most - quantile * table.n_records)
    sens = max(quantile, 1.0 - quantile)
    epsilon = math.sqrt(8.0 * rho)
    pick = accountant.select_exponential(
        scores.astype(np.float64),
        epsilon=epsilon,
        sensitivity=sens,
        query=(
            f"contribution bound: DP {quantile:g}-quantile of present attributes per record "
            f"(exponential mechanism over 1..{d}; utility -|#{{a_i <= c}} - q*n|, "
            f"sensitivity {sens:g})"
        ),
    )
    return int(pick) + 1


# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------
def _bounded_codes(
    table: EncodedTable, m: int, rng: RandomSource
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per column int64 codes where "absent" is ``len(labels)`` (missing, or dropped by the
    contribution bound), and the per-column radix ``len(labels) + 1``.

    Records with more than ``m`` present attributes keep a uniformly random subset of ``m``
    (random keys from ``rng``, absent ones sorted last)."""
    codes = np.asarray(table.codes)
    n, d = codes.shape
    absent = np.array([len(dom.labels) for dom in table.domains], dtype=np.int64)
    work = codes.astype(np.int64, copy=True)
    present = np.ones((n, d), dtype=bool)
    for j, dom in enumerate(table.domains):
        if dom.allows_missing:
            present[:, j] = codes[:, j] != dom.missing_code
    if m < d and n:
        n_present = present.sum(axis=1)
        over = np.flatnonzero(n_present > m)
        if over.size:
            keys = rng.uniform(over.size * d).reshape(over.size, d)
            keys[~present[over]] = 2.0
            drop = np.argsort(keys, axis=1)[:, m:]
            work[over[:, None], drop] = absent[drop]
    return [np.ascontiguousarray(work[:, j]) for j in range(d)], absent + 1


def _count_candidates(
    cols: list[np.ndarray], radix: np.ndarray, cand_cols: np.ndarray, cand_codes: np.ndarray
) -> tuple[np.ndarray, int]:
    """True counts of candidate combinations (rows of columns / codes, shape (N, ℓ)).

    Loops over distinct column sets (never over records or cells): one mixed-radix key per record
    per column set, counted with bincount (small product domains) or sorted keys (large ones).
    Column sets sharing a prefix reuse the prefix key.
    """
    n_cand, ell = cand_cols.shape
    out = np.zeros(n_cand, dtype=np.int64)
    if n_cand == 0:
        return out, 0
    n_rec = cols[0].shape[0] if cols else 0
    d = len(cols)
    set_id = np.zeros(n_cand, dtype=np.int64)
    for i in range(ell):
        set_id = set_id * d + cand_cols[:, i]
    order = np.argsort(set_id, kind="stable")
    sid_sorted = set_id[order]
    starts = np.flatnonzero(np.r_[True, sid_sorted[1:] != sid_sorted[:-1]])
    ends = np.r_[starts[1:], n_cand]
    prefix_cache: tuple[tuple[int, ...], np.ndarray] | None = None
    for a, b in zip(starts, ends, strict=True):
        idx = order[a:b]
        cs = tuple(int(c) for c in cand_cols[idx[0]])
        r = radix[list(cs)]
        if prefix_cache is not None and prefix_cache[0] == cs[:-1]:
            pkey = prefix_cache[1]
        else:
            pkey = np.zeros(n_rec, dtype=np.int64)
            for c in cs[:-1]:
                pkey = pkey * radix[c] + cols[c]
            prefix_cache = (cs[:-1], pkey)
        key = pkey * r[-1] + cols[cs[-1]]
        ccell = np.zeros(idx.size, dtype=np.int64)
        for i in range(ell):
            ccell = ccell * r[i] + cand_codes[idx, i]
        n_cells = int(np.prod(r.astype(np.float64)))
        if n_cells <= max(_DENSE_CELLS, 4 * n_rec):
            out[idx] = np.bincount(key, minlength=n_cells)[ccell]
        else:
            skey = np.sort(key)
            out[idx] = np.searchsorted(skey, ccell, "right") - np.searchsorted(skey, ccell, "left")
    return out, len(starts)


def _extend(
    prev_rows: np.ndarray, attr_g: np.ndarray, attr_col: np.ndarray, g_col: np.ndarray
) -> np.ndarray:
    """All extensions of each (ℓ−1)-combination by one length-1 attribute of a higher column.

    ``prev_rows`` (n, ℓ−1) global ids in key order; ``attr_g`` the released length-1 attributes
    (ascending). Returns (N, ℓ) rows, in key order (prefix id, then last attribute)."""
    n_prev, ellm1 = prev_rows.shape
    if n_prev == 0 or attr_g.size == 0:
        return np.zeros((0, ellm1 + 1), dtype=np.int64)
    last_col = g_col[prev_rows[:, -1]]
    start = np.searchsorted(attr_col, last_col, side="right")
    n_ext = attr_g.size - start
    total = int(n_ext.sum())
    parent = np.repeat(np.arange(n_prev), n_ext)
    within = np.arange(total) - np.repeat(np.cumsum(n_ext) - n_ext, n_ext)
    ext = attr_g[np.repeat(start, n_ext) + within]
    return np.column_stack([prev_rows[parent], ext])


def _candidates(
    ell: int,
    released: dict[int, np.ndarray],
    index: CombinationIndex,
    g_col: np.ndarray,
    n_attr: int,
) -> np.ndarray:
    """Length-ℓ candidates (rows of global ids, key order) from the released shorter ones."""
    if ell == 1:
        return np.arange(n_attr, dtype=np.int64)[:, None]
    prev = released.get(ell - 1, np.zeros((0, ell - 1), dtype=np.int64))
    attr_g = released.get(1, np.zeros((0, 1), dtype=np.int64))[:, 0]
    cand = _extend(prev, attr_g, g_col[attr_g], g_col)
    # Apriori: every (ℓ−1)-sub-combination must be released. Dropping the last attribute
    # gives the prefix (released by construction); for ℓ = 2 dropping the first gives a
    # released attribute (also by construction).
    keep = np.ones(cand.shape[0], dtype=bool)
    if ell >= 3:
        for drop in range(ell - 1):
            keep &= index.lookup(np.delete(cand, drop, axis=1)) >= 0
    return cand[keep]


def _present_codes(table: EncodedTable) -> tuple[list[np.ndarray], np.ndarray]:
    """Per column int64 codes with "absent" = ``len(labels)``, and radix ``len(labels) + 1``."""
    absent = np.array([len(dom.labels) for dom in table.domains], dtype=np.int64)
    return [
        np.ascontiguousarray(table.codes[:, j], dtype=np.int64) for j in range(table.n_columns)
    ], absent + 1


def measure_aggregates(
    table: EncodedTable,
    accountant: Accountant,
    *,
    reporting_length: int,
    k: int,
    rho: float | None = None,
    max_attributes: int | None = None,
    noise_split: str | Sequence[float] = DEFAULT_NOISE_SPLIT,
    threshold_factor: float | Sequence[float] = DEFAULT_THRESHOLD_FACTOR,
    attribute_quantile: float = DEFAULT_ATTRIBUTE_QUANTILE,
    quantile_share: float = DEFAULT_QUANTILE_SHARE,
) -> AggregateRelease:
    """Measure the DP aggregate release of ``table`` (see the module docstring).

    Spends ``rho`` (default: ``accountant.remaining_rho``), checked against the budget before
    any data is read, in these ledger entries: record count; the DP contribution bound (only
    when ``max_attributes`` is None); then one per length. Lengths with no candidate left
    spend nothing. ``threshold_factor`` may be one number or one per length.
    """
    if rho is None:
        rho = float(accountant.remaining_rho)
    rho = float(rho)
    domains = table.domains
    bud = _budget(
        domains,
        rho=rho,
        reporting_length=reporting_length,
        k=k,
        max_attributes=max_attributes,
        quantile_share=quantile_share,
    )
    spec_args = {
        "rho_lengths": bud.rho_lengths,
        "reporting_length": reporting_length,
        "k": k,
        "noise_split": noise_split,
        "threshold_factor": threshold_factor,
    }
    if max_attributes is None and not 0 < attribute_quantile < 1:
        raise ValueError("attribute_quantile must lie strictly between 0 and 1")
    _length_specs(len(domains), bud.m_public, **spec_args)  # validate before spending
    accountant.check(
        bud.rho_count + bud.rho_quantile + bud.rho_lengths,
        f"aggregate release up to length {reporting_length}",
    )

    noisy_n = accountant.measure_gaussian(
        np.array([table.n_records], dtype=np.int64),
        sigma=bud.sigma_count,
        l2_sensitivity=1.0,
        query="record count",
    )
    record_count = max(int(noisy_n[0]), 0)
    if max_attributes is None:
        m = dp_max_attributes(
            table, accountant, rho=bud.rho_quantile, quantile=attribute_quantile
        )
        source = f"dp_quantile_{attribute_quantile:g}"
    else:
        m, source = bud.m_public, "public"
    # a DP cap below the reporting length leaves the longer lengths empty; their share of ρ
    # then goes to the shorter ones (Δ_ℓ = 0 there), which _length_specs does by construction
    specs = _length_specs(len(domains), m, **spec_args)

    offsets = attribute_offsets(domains)
    n_attr = int(offsets[-1])
    g_col = np.repeat(np.arange(len(domains)), np.diff(offsets)).astype(np.int64)
    g_code = np.arange(n_attr, dtype=np.int64) - offsets[g_col]
    cols, radix = _bounded_codes(table, m, accountant.rng)
    never_missing = np.array([not dom.allows_missing for dom in domains], dtype=bool)

    released_rows: dict[int, np.ndarray] = {}
    released_counts: dict[int, np.ndarray] = {}
    out_specs: list[LengthSpec] = []
    index = CombinationIndex(n_attr, {})
    for spec in specs:
        ell = spec.length
        cand = _candidates(ell, released_rows, index, g_col, n_attr)
        if cand.shape[0] == 0 or not math.isfinite(spec.sigma):
            out_specs.append(spec)
            released_rows[ell] = np.zeros((0, ell), dtype=np.int64)
            released_counts[ell] = np.zeros(0, dtype=np.int64)
            index = CombinationIndex(n_attr, released_rows)
            continue
        true, n_sets = _count_candidates(cols, radix, g_col[cand], g_code[cand])
        noisy = accountant.measure_gaussian(
            true,
            sigma=spec.sigma,
            l2_sensitivity=spec.sensitivity,
            query=(
                f"all length-{ell} combination counts ({cand.shape[0]} candidates over "
                f"{n_sets} column sets; contribution bound {m} attributes per record)"
            ),
        )
        del true
        noisy = np.asarray(noisy, dtype=np.int64)
        thr = np.full(cand.shape[0], spec.threshold)
        if ell == 1:  # every record holds one value of a never-missing column: see module doc
            thr[never_missing[g_col[cand[:, 0]]]] = float(k)
        keep = noisy >= thr
        rows, cnt = cand[keep], noisy[keep]
        if ell >= 2 and rows.shape[0]:
            cap = np.full(rows.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
            for drop in range(ell):
                sub_ids = index.lookup(np.delete(rows, drop, axis=1))
                cap = np.minimum(cap, released_counts[ell - 1][sub_ids])
            cnt = np.minimum(cnt, cap)
        ok = cnt >= k
        rows, cnt = rows[ok], cnt[ok]
        released_rows[ell] = rows  # candidates were generated in key order; keep it
        released_counts[ell] = cnt
        index = CombinationIndex(n_attr, released_rows)
        out_specs.append(
            LengthSpec(
                length=ell,
                rho=spec.rho,
                sigma=spec.sigma,
                sensitivity=spec.sensitivity,
                threshold=spec.threshold,
                n_column_sets=n_sets,
                n_candidates=int(cand.shape[0]),
                n_released=int(rows.shape[0]),
                measured=True,
            )
        )

    if released_counts.get(1) is not None and released_counts[1].size:
        record_count = max(record_count, int(released_counts[1].max()))
    combos = {
        ell: np.stack([g_col[r], g_code[r]], axis=-1).reshape(-1, ell, 2)
        for ell, r in released_rows.items()
    }
    return AggregateRelease(
        domains=domains,
        record_count=record_count,
        reporting_length=reporting_length,
        k=k,
        combinations=combos,
        counts=released_counts,
        lengths=tuple(out_specs),
        max_attributes=m,
        record_count_sigma=bud.sigma_count,
        record_count_rho=bud.rho_count,
        max_attributes_source=source,
        quantile_rho=bud.rho_quantile,
    )
