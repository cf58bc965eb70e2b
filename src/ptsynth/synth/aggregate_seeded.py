"""Aggregate-seeded synthesizer: synthetic records built from a DP aggregate release only.

Why: the counter-trafficking community knows this method from Synthetic Data Showcase, where
the published aggregates and the synthetic microdata agree by construction. After ``fit`` (one
call of :func:`~ptsynth.aggregates.measure_aggregates`) everything here is post-processing of
noisy counts, so sampling costs no budget and may be repeated.

Hard guarantee: no synthetic record holds a combination of up to ``reporting_length`` present
attributes that the aggregates do not contain. Rare real combinations (suppressed below the
threshold or k) can therefore never reappear.

How a batch of records is built (vectorised across records, one column at a time):

* columns are visited in a random order, fresh per batch, with the columns that forbid missing
  first (only they can reach a dead end, least likely while few values are chosen);
* a per-record bitmask over all attributes holds the values still *allowed*: v is allowed iff
  T ∪ {v} is released for every subset T (|T| ≤ L−1) of the record's present attributes. It is
  kept up to date incrementally: choosing attribute a ANDs the mask with the "released
  extensions" bitmask of T′ ∪ {a} for each subset T′ (|T′| ≤ L−2) of the earlier attributes;
* the value is drawn from P(column | context columns), where the context is the L−1 columns
  already drawn with the highest mutual information with this column (estimated from the 2-way
  aggregates), chosen per column, not per record (a per-record choice biases the marginals).
  The conditional comes from a dense contingency table over context + column *with "absent"
  cells*, rebuilt from the aggregates by inclusion–exclusion (absent = parent count minus the
  released children), unreleased combinations imputed from their sub-combinations;
* forbidden values get weight 0, then the batch is raked per context cell so its expected
  counts match the unconstrained conditional (the hard constraint would otherwise shift mass
  and bias the marginals); the draw is a vectorised inverse CDF on ``rng.uniform``;
* a record reaching a column that forbids missing with no allowed value is discarded (it cannot
  be completed without breaking the guarantee); more records are drawn to reach the target.

Known zeros: combinations the schema declares impossible (``structural_zeros``, public, see
:mod:`ptsynth.structure`) are never candidates of the measurement (so never released), get zero
weight in the dense tables the sampler conditions on (instead of an imputed count), and are
masked out of every record's allowed values once the other columns of the combination are
drawn, also for relaxed columns: no synthetic record holds one.

Dead ends (decision). A column that forbids missing must hold a value, so when *none* of its
values is released the guarantee cannot hold for any record. The measurement already makes this
rare (its length-1 values are kept down to τ = k, since a public domain needs no δ-threshold);
when it still happens (tiny data, small ε) ``on_dead_end="relax"`` (default) draws exactly those
columns outside the guarantee, uniformly over their public labels (no released count says
more; the sub-k noisy counts stay unpublished), and never lets them constrain or extend the
other columns' combinations, so the guarantee still holds for every combination of the other
columns. This is decided from the aggregates before sampling. Only if no complete record can
be drawn even then (e.g. two never-missing columns without a released pair) are all
never-missing columns relaxed. ``relaxed_columns_`` and ``diagnostics_`` say which columns and
why (names and counts from the public release only, never a data value); ``"error"`` raises.

Limits (inherent to the guarantee): a record with a present attributes needs all C(a, ℓ) of its
combinations released for every ℓ ≤ L. With noisy counts many real triples are suppressed, so
the allowed sets shrink as a record fills up and later values go missing more often than in the
data. Demo data (32 encoded columns, 19.4k records, δ = 1e-6, defaults): 1-way / 2-way mean
TVD 0.22 / 0.36 at ε = 1 and 0.15 / 0.25 at ε = 4 with L = 3 (0.35 / 0.57 and 0.27 / 0.46
before the DP contribution bound and τ = k), but 0.04 / 0.09 and 0.02 / 0.05
with L = 2. Use L = 2 for wide tables unless triples must be published.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ptsynth.aggregates import (
    DEFAULT_ATTRIBUTE_QUANTILE,
    DEFAULT_NOISE_SPLIT,
    DEFAULT_QUANTILE_SHARE,
    DEFAULT_THRESHOLD_FACTOR,
    NOISE_SPLITS,
    AggregateRelease,
    measure_aggregates,
    plan_aggregates,
)
from ptsynth.counting import cell_key
from ptsynth.errors import NotFittedError, SynthesisError
from ptsynth.progress import ProgressCallback, ProgressReporter, reporter
from ptsynth.structure import StructuralZero
from ptsynth.synth.options import build_options, is_int, is_number, require
from ptsynth.table import ColumnDomain, EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.counting import CountingBackend
    from ptsynth.privacy import Accountant, RandomSource

#: Records built together (one random column order per batch).
DEFAULT_BATCH_SIZE = 8192
#: Give up when this many consecutive batches produce no complete record.
_MAX_EMPTY_BATCHES = 20

#: Largest dense context table (cells) the sampler builds per column.
_MAX_DENSE_CELLS = 1 << 18
#: Largest dense attribute-pair id table (entries); beyond it pairs use the sorted index.
_MAX_PAIR_TABLE = 1 << 22

#: Raking passes and the largest factor one pass may apply (see :func:`_rake`).
_RAKE_ITERATIONS = 4
_RAKE_CAP = 20.0

_BIT = (np.uint8(128) >> np.arange(8, dtype=np.uint8)).astype(np.uint8)


@dataclass(frozen=True, kw_only=True)
class AggregateOptions:
    """Knobs of :class:`AggregateSeededSynthesizer` (``[release.aggregate]``). The reporting
    length and k come from ``[release]``.

    Attributes:
        max_attributes: a public cap on the attributes one record contributes; ``None`` buys a
            DP quantile of it (``quantile_share`` of the budget).
        noise_split: ``"balanced"``, ``"long"``, ``"short"`` or one positive weight per length
            (σ_ℓ ∝ weight), see :mod:`ptsynth.aggregates.plan`.
        threshold_factor: c_ℓ in τ_ℓ = max(k, c_ℓ·σ_ℓ): one number, or one per length (the last
            repeats).
        attribute_quantile: the quantile of attributes per record used as the bound.
        quantile_share: share of the budget spent on that quantile.
        batch_size: records built together (one random column order per batch).
        impute: estimate unreleased combination counts from their sub-combinations instead
            of counting them as 0 (SDS's bias towards empty attributes).
        on_dead_end: ``"relax"`` (draw never-missing columns with no released value outside the
            guarantee, reported) or ``"error"``.
    """

    max_attributes: int | None = None
    noise_split: str | tuple[float, ...] = DEFAULT_NOISE_SPLIT
    threshold_factor: float | tuple[float, ...] = DEFAULT_THRESHOLD_FACTOR
    attribute_quantile: float = DEFAULT_ATTRIBUTE_QUANTILE
    quantile_share: float = DEFAULT_QUANTILE_SHARE
    batch_size: int = DEFAULT_BATCH_SIZE
    impute: bool = True
    on_dead_end: str = "relax"

    def __post_init__(self) -> None:
        require(self.max_attributes is None or (is_int(self.max_attributes) and self.max_attributes >= 1),
                "max_attributes", "must be an integer ≥ 1")
        if isinstance(self.noise_split, str):
            require(self.noise_split in NOISE_SPLITS, "noise_split",
                    f"must be one of {', '.join(sorted(NOISE_SPLITS))} or a list of positive weights")
        else:
            require(isinstance(self.noise_split, (list, tuple)) and len(self.noise_split) > 0
                    and all(is_number(w) and w > 0 for w in self.noise_split),
                    "noise_split", "weights must be positive numbers, one per length")
            object.__setattr__(self, "noise_split", tuple(float(w) for w in self.noise_split))
        if isinstance(self.threshold_factor, (list, tuple)):
            require(len(self.threshold_factor) > 0
                    and all(is_number(c) and c >= 0 for c in self.threshold_factor),
                    "threshold_factor", "must be non-negative numbers")
            object.__setattr__(self, "threshold_factor", tuple(float(c) for c in self.threshold_factor))
        else:
            require(is_number(self.threshold_factor) and self.threshold_factor >= 0,
                    "threshold_factor", "must be a non-negative number or a list of them")
        require(is_number(self.attribute_quantile) and 0 < self.attribute_quantile < 1,
                "attribute_quantile", "must lie strictly between 0 and 1")
        require(is_number(self.quantile_share) and 0 < self.quantile_share < 1,
                "quantile_share", "must lie strictly between 0 and 1")
        require(is_int(self.batch_size) and self.batch_size >= 1, "batch_size",
                "must be an integer ≥ 1")
        require(isinstance(self.impute, bool), "impute", "must be true or false")
        require(self.on_dead_end in ("relax", "error"), "on_dead_end", 'must be "relax" or "error"')


class AggregateSeededSynthesizer:
    """Synthesizer over an :class:`~ptsynth.aggregates.AggregateRelease` (name ``"aggregate"``).

    Knobs: :class:`AggregateOptions` (an options object, or the knobs as keywords).
    """

    name: ClassVar[str] = "aggregate"
    summary: ClassVar[str] = (
        "SDS-style: DP aggregate table, records built only from released combinations"
    )
    Options: ClassVar[type[AggregateOptions]] = AggregateOptions

    def __init__(
        self,
        options: AggregateOptions | None = None,
        /,
        *,
        reporting_length: int = 3,
        k: int = 10,
        structural_zeros: Sequence[StructuralZero] = (),
        **knobs: Any,
    ) -> None:
        if options is not None and knobs:
            raise TypeError("pass an options object or keyword knobs, not both")
        self.options = options if options is not None else build_options(
            AggregateOptions, knobs, where="AggregateSeededSynthesizer"
        )
        require(is_int(reporting_length) and reporting_length >= 1, "reporting_length",
                "must be an integer ≥ 1")
        require(is_int(k) and k >= 1, "k", "must be an integer ≥ 1")
        self.reporting_length = int(reporting_length)
        self.k = int(k)
        #: Impossible combinations (public): never released, never drawn.
        self.structural_zeros: tuple[StructuralZero, ...] = tuple(structural_zeros)
        self.aggregates_: AggregateRelease | None = None
        self.discarded_: int = 0
        #: Names of never-missing columns sampled outside the guarantee (see ``sample``).
        self.relaxed_columns_: tuple[str, ...] = ()
        #: Public facts about the fit and the last ``sample`` call, for the release report.
        self.diagnostics_: dict[str, Any] = {}

    def __repr__(self) -> str:
        return (f"AggregateSeededSynthesizer({self.options!r}, reporting_length="
                f"{self.reporting_length}, k={self.k})")

    @classmethod
    def create(
        cls, options: AggregateOptions, *, reporting_length: int, k: int,
        structural_zeros: Sequence[StructuralZero] = (),
    ) -> AggregateSeededSynthesizer:
        """The synthesizer a release with these options uses (registry factory)."""
        return cls(options, reporting_length=reporting_length, k=k,
                   structural_zeros=structural_zeros)

    @classmethod
    def plan_release(
        cls, domains: Sequence[ColumnDomain], *, rho: float, options: AggregateOptions,
        reporting_length: int, k: int,
    ) -> dict[str, Any]:
        """Per length the budget, noise, sensitivity and threshold, from public inputs only."""
        return {"lengths": plan_aggregates(
            domains, rho=rho, reporting_length=reporting_length, k=k,
            max_attributes=options.max_attributes, noise_split=options.noise_split,
            threshold_factor=options.threshold_factor,
            attribute_quantile=options.attribute_quantile, quantile_share=options.quantile_share,
        )}

    # -- what a release needs from a fitted synthesizer ---------------------------------------
    @property
    def dp_record_count(self) -> float:
        """The released (DP) record count."""
        return float(self._fitted().record_count)

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Public facts about the release and the last ``sample`` call."""
        self._fitted()
        return self.diagnostics_

    @property
    def aggregates(self) -> AggregateRelease:
        """The DP aggregate release this synthesizer measured (published with the bundle)."""
        return self._fitted()

    def _fitted(self) -> AggregateRelease:
        if self.aggregates_ is None:
            raise NotFittedError("fit() or from_aggregates() the aggregate synthesizer first")
        return self.aggregates_

    @property
    def fitted_domains(self) -> tuple[ColumnDomain, ...]:
        return self._fitted().domains

    # -- the fitted release as a document (see ptsynth.synth.persist) ------------------------
    def state_document(self) -> dict[str, Any]:
        """The DP aggregate release the sampler draws from (all post-processed noisy counts)."""
        from ptsynth.synth.persist import encode_array

        agg = self._fitted()
        return {
            "metadata": agg.metadata(),
            "combinations": {str(ell): encode_array(c) for ell, c in agg.combinations.items()},
            "counts": {str(ell): encode_array(c) for ell, c in agg.counts.items()},
            "structural_zeros": [z.to_dict() for z in self.structural_zeros],
        }

    @classmethod
    def from_state_document(
        cls, options: AggregateOptions, domains: tuple[ColumnDomain, ...], state: dict[str, Any],
        *, reporting_length: int, k: int,
    ) -> AggregateSeededSynthesizer:
        """A fitted synthesizer from :meth:`state_document` (no budget spent, no data read)."""
        from ptsynth.aggregates import LengthSpec
        from ptsynth.synth.persist import decode_array

        meta = state["metadata"]
        agg = AggregateRelease(
            domains=tuple(domains), record_count=int(meta["record_count"]),
            reporting_length=reporting_length, k=k,
            combinations={int(e): decode_array(c, f"combinations[{e}]")
                          for e, c in state["combinations"].items()},
            counts={int(e): decode_array(c, f"counts[{e}]") for e, c in state["counts"].items()},
            lengths=tuple(LengthSpec.from_dict(s) for s in meta.get("lengths", [])),
            max_attributes=meta.get("max_attributes"),
            record_count_sigma=meta.get("record_count_sigma"),
            record_count_rho=float(meta.get("record_count_rho") or 0.0),
            max_attributes_source=str(meta.get("max_attributes_source", "public")),
            quantile_rho=float(meta.get("quantile_rho") or 0.0),
        )
        for ell, c in agg.combinations.items():
            if c.size and (c[:, :, 0].max() >= len(domains) or c.min() < 0):
                raise ValueError(f"length-{ell} combinations name unknown columns")
        self = cls(options, reporting_length=reporting_length, k=k, structural_zeros=[
            StructuralZero.from_dict(z) for z in state.get("structural_zeros", [])])
        self._set(agg)
        return self

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        data: CountingBackend | EncodedTable,
        accountant: Accountant,
        *,
        rho: float | None = None,
        progress: ProgressReporter | ProgressCallback | None = None,
    ) -> AggregateSeededSynthesizer:
        """Spend ``rho`` (default: the accountant's remaining budget) on
        :func:`~ptsynth.aggregates.measure_aggregates`."""
        o = self.options
        task = reporter(progress).start(
            "measure", "measuring the DP aggregate table", total=self.reporting_length,
            unit="lengths",
        )
        agg = measure_aggregates(
            data,
            accountant,
            reporting_length=self.reporting_length,
            k=self.k,
            rho=rho,
            max_attributes=o.max_attributes,
            noise_split=o.noise_split,
            threshold_factor=o.threshold_factor,
            attribute_quantile=o.attribute_quantile,
            quantile_share=o.quantile_share,
            structural_zeros=self.structural_zeros,
        )
        task.update(completed=self.reporting_length)
        task.finish()
        self._set(agg)
        return self

    @classmethod
    def from_aggregates(
        cls,
        agg: AggregateRelease,
        domains: Sequence[ColumnDomain] | None = None,
        **kwargs: Any,
    ) -> AggregateSeededSynthesizer:
        """A fitted synthesizer from an existing release (no budget spent)."""
        if domains is not None and tuple(domains) != tuple(agg.domains):
            raise ValueError("domains differ from the aggregate release's domains")
        self = cls(reporting_length=agg.reporting_length, k=agg.k, **kwargs)
        self._set(agg)
        return self

    def _set(self, agg: AggregateRelease) -> None:
        self.aggregates_ = agg
        self.reporting_length = agg.reporting_length
        self.k = agg.k
        self._prepare(agg)

    def _prepare(self, agg: AggregateRelease) -> None:
        """Allowed-extension bitmasks and the column-level mutual information matrix."""
        domains = agg.domains
        L = agg.reporting_length
        offsets = agg.offsets
        G = int(offsets[-1])
        d = len(domains)
        W = 8 * max(1, (G + 63) // 64)  # bytes, a whole number of uint64 words
        index = agg.index
        ext: list[np.ndarray] = []
        for s in range(L):  # ext[s][id of a length-s combination]: bits of its released extensions
            rows = agg.attribute_rows(s + 1)
            n_par = 1 if s == 0 else int(agg.counts[s].size)
            mask = np.zeros((n_par, W), dtype=np.uint8)
            for p in range(s + 1):
                pid = (
                    index.lookup(np.delete(rows, p, axis=1))
                    if s
                    else np.zeros(rows.shape[0], dtype=np.int64)
                )
                x = rows[:, p]
                np.bitwise_or.at(mask, (pid, x >> 3), _BIT[x & 7])
            if s:  # sentinel row of all ones for padded subsets (see _extension_mask)
                mask = np.vstack([mask, np.full((1, W), 255, dtype=np.uint8)])
            ext.append(mask)
        id1 = np.full(G + 1, -1, dtype=np.int64)
        r1 = agg.attribute_rows(1)[:, 0]
        id1[r1] = index.lookup(r1[:, None])
        self._id1 = id1
        self._pair_id: np.ndarray | None = None
        if L >= 2 and G * G <= _MAX_PAIR_TABLE:
            pair = np.full((G, G), -1, dtype=np.int64)
            r2 = agg.attribute_rows(2)
            ids2 = index.lookup(r2)
            pair[r2[:, 0], r2[:, 1]] = ids2
            pair[r2[:, 1], r2[:, 0]] = ids2
            self._pair_id = pair
        self._G, self._W, self._d, self._L = G, W, d, L
        self._offsets = offsets
        self._ext = ext
        self._allows = np.array([dom.allows_missing for dom in domains])
        self._n_labels = np.array([len(dom.labels) for dom in domains], dtype=np.int64)
        self._domains = domains
        self._dense_cache: dict[tuple[int, ...], np.ndarray] = {}
        self._exempt = np.zeros(d, dtype=bool)
        names = [dom.name for dom in domains]
        # per column: the zeros it takes part in, as (other columns, their code sets, own codes)
        self._zeros_by_col: list[list[tuple[list[int], list[np.ndarray], np.ndarray]]] = [
            [] for _ in range(d)]
        for z in self.structural_zeros:
            idx = z.indices(names)
            sets = [np.asarray(c, dtype=np.int64) for c in z.codes]
            for a, j in enumerate(idx):
                others = [i for b, i in enumerate(idx) if b != a]
                other_sets = [sets[b] for b in range(len(idx)) if b != a]
                self._zeros_by_col[j].append((others, other_sets, sets[a]))
        # never-missing columns with no released value: no record can hold them in the guarantee
        has_value = np.zeros(d, dtype=bool)
        has_value[agg.combinations[1][:, 0, 0]] = True
        self._dead = ~self._allows & ~has_value
        mi = np.zeros((d, d))
        if L >= 2:
            for i, j in itertools.combinations(range(d), 2):
                t = self._dense((i, j))
                tot = t.sum()
                if tot <= 0:
                    continue
                p = t / tot
                pi, pj = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
                with np.errstate(divide="ignore", invalid="ignore"):
                    terms = np.where(p > 0, p * np.log(p / (pi * pj)), 0.0)
                mi[i, j] = mi[j, i] = float(terms.sum())
            self._dense_cache.clear()
        self._mi = mi

    def _dense(self, cols: tuple[int, ...]) -> np.ndarray:
        """Estimated contingency table over ``cols`` (ascending), absent included, from the
        aggregates alone (post-processing).

        Axis i has ``len(labels) + 1`` cells, the last meaning "absent" (= the missing code).
        First U[x] = released count of the present attributes of x (absent = unconstrained;
        unreleased combinations count 0, the empty one the record count); then along each axis
        the absent cell becomes U[absent] − Σ U[values] (inclusion–exclusion, exact for exact
        counts); negatives are clamped to 0.
        """
        cached = self._dense_cache.get(cols)
        if cached is not None:
            return cached
        agg = self.aggregates_
        assert agg is not None
        nl = self._n_labels[list(cols)]
        shape = tuple(int(x) + 1 for x in nl)
        u = np.zeros(shape)
        n_all = float(max(agg.record_count, 1))
        patterns = sorted(itertools.product((False, True), repeat=len(cols)), key=sum)
        for pattern in patterns:  # by number of present axes: sub-patterns come first
            pres = [i for i, f in enumerate(pattern) if f]
            sl = tuple(slice(0, int(nl[i])) if f else int(nl[i]) for i, f in enumerate(pattern))
            if not pres:
                u[sl] = agg.record_count
                continue
            ell = len(pres)
            block = [int(nl[i]) for i in pres]
            grids = np.meshgrid(*[np.arange(b) for b in block], indexing="ij")
            g = np.stack(
                [grids[q].ravel() + self._offsets[cols[i]] for q, i in enumerate(pres)], axis=1
            )
            released = agg.counts[ell] if ell <= self._L else np.zeros(0, dtype=np.int64)
            if released.size:
                ids = agg.index.lookup(g)
                vals = np.where(ids >= 0, released[np.maximum(ids, 0)], 0).astype(np.float64)
            else:
                ids = np.full(g.shape[0], -1, dtype=np.int64)
                vals = np.zeros(g.shape[0])
            vals = vals.reshape(block)
            if self.options.impute and ell >= 2:
                vals = np.where(
                    ids.reshape(block) >= 0, vals, self._imputed(u, nl, pres, ell, n_all)
                )
            u[sl] = vals
        self._zero_known(u, cols)
        for ax in range(len(cols)):
            n = int(nl[ax])
            present = np.take(u, np.arange(n), axis=ax).sum(axis=ax)
            idx = [slice(None)] * len(cols)
            idx[ax] = n
            u[tuple(idx)] -= present
        np.maximum(u, 0.0, out=u)
        for ax, c in enumerate(cols):  # a column that never misses has no absent cell
            if not self._allows[c]:
                idx = [slice(None)] * len(cols)
                idx[ax] = int(nl[ax])
                u[tuple(idx)] = 0.0
        self._dense_cache[cols] = u
        return u

    def _zero_known(self, u: np.ndarray, cols: tuple[int, ...]) -> None:
        """Set the cells of declared impossible combinations to 0 (in place): they are known
        zeros, not counts to impute from their sub-combinations."""
        pos = {c: a for a, c in enumerate(cols)}
        for j in cols:
            for others, other_sets, own in self._zeros_by_col[j]:
                if j != min([j, *others]) or not all(i in pos for i in others):
                    continue  # each zero once, from its first column; all its columns present
                idx: list[Any] = [slice(None)] * len(cols)
                for i, s in ((j, own), *zip(others, other_sets, strict=True)):
                    idx[pos[i]] = s
                u[np.ix_(*[np.arange(u.shape[a]) if isinstance(x, slice) else x
                           for a, x in enumerate(idx)])] = 0.0

    def _imputed(
        self, u: np.ndarray, nl: np.ndarray, pres: list[int], ell: int, n_all: float
    ) -> np.ndarray:
        """Estimate of unreleased combination counts of one presence pattern (block over the
        present axes ``pres``): for each attribute x, (count without x) × P(x), the smallest of
        these, capped by every sub-combination count and by the length's threshold (a suppressed
        count was below it). Why: counting them as 0 would turn their records into "absent"
        in the inclusion–exclusion step, which is SDS's known bias towards empty attributes."""
        est = None
        cap = None
        for q, ax in enumerate(pres):
            sub_idx = tuple(
                slice(0, int(nl[i])) if (i in pres and i != ax) else int(nl[i])
                for i in range(len(nl))
            )
            sub = np.expand_dims(u[sub_idx], q)
            one_idx = tuple(slice(0, int(nl[i])) if i == ax else int(nl[i]) for i in range(len(nl)))
            shape = [1] * len(pres)
            shape[q] = int(nl[ax])
            p_x = (u[one_idx] / n_all).reshape(shape)
            e = sub * p_x
            est = e if est is None else np.minimum(est, e)
            cap = sub if cap is None else np.minimum(cap, sub)
        assert est is not None and cap is not None
        return np.minimum(np.minimum(est, cap), self._threshold(ell))

    def _threshold(self, ell: int) -> float:
        """Public threshold below which a length-ℓ count was suppressed."""
        agg = self.aggregates_
        assert agg is not None
        for spec in agg.lengths:
            if spec.length == ell and np.isfinite(spec.threshold):
                return float(spec.threshold)
        return float(agg.k)

    def _context(self, j: int, done: list[int]) -> list[int]:
        """Up to L−1 already drawn columns most informative about ``j`` (mutual information
        estimated from the aggregates), keeping the dense table small."""
        if not done or self._L < 2:
            return []
        ranked = sorted(done, key=lambda i: -self._mi[i, j])[: self._L - 1]
        cells = int(self._n_labels[j]) + 1
        out = []
        for i in ranked:
            if self._mi[i, j] <= 0:
                break
            if cells * (int(self._n_labels[i]) + 1) > _MAX_DENSE_CELLS:
                continue
            cells *= int(self._n_labels[i]) + 1
            out.append(i)
        return out

    # -- sampling --------------------------------------------------------------------------
    def sample(self, n_records: int | None = None, rng: RandomSource | None = None) -> EncodedTable:
        """``n_records`` synthetic records (default: the release's record count), shuffled.

        Reproducible for a seeded ``rng``; uses only ``rng.uniform`` and ``rng.permutation``.
        """
        self._fitted()
        if rng is None:
            raise ValueError("pass a RandomSource (ptsynth.privacy.random_source)")
        n = self.aggregates_.record_count if n_records is None else int(n_records)
        if n < 0:
            raise ValueError("n_records must be non-negative")
        dtype = np.int16 if max(dom.size for dom in self._domains) < 2**15 else np.int32
        parts: list[np.ndarray] = []
        have, empty, self.discarded_ = 0, 0, 0
        reason = None
        if self._dead.any():
            if self.options.on_dead_end == "error":
                raise SynthesisError(
                    "the aggregates admit no complete record: a column that forbids missing "
                    "has no released value (raise epsilon, or allow missing in that column)"
                )
            reason = "no released value (all noisy counts below the threshold)"
        self._exempt = self._dead.copy()
        self.relaxed_columns_ = self._names(self._exempt)
        while have < n:
            want = min(self.options.batch_size, n - have)
            codes, alive = self._sample_batch(want, rng)
            good = codes[alive]
            self.discarded_ += int((~alive).sum())
            if good.shape[0] == 0:
                empty += 1
                if (
                    empty >= _MAX_EMPTY_BATCHES
                    and self.options.on_dead_end == "relax"
                    and not np.array_equal(self._exempt, ~self._allows)
                ):
                    # No complete record exists. Rather than fail, draw the never-missing
                    # columns outside the guarantee (they neither need nor constrain released
                    # combinations); reported in relaxed_columns_. Still post-processing.
                    self._exempt = ~self._allows
                    self.relaxed_columns_ = self._names(self._exempt)
                    reason = (
                        "no complete record could be drawn within the guarantee: all columns "
                        "that forbid missing relaxed"
                    )
                    empty = 0
                    continue
                if empty >= _MAX_EMPTY_BATCHES:
                    raise SynthesisError(
                        "the aggregates admit no complete record: a column that forbids "
                        "missing has no released value compatible with the others (raise "
                        "epsilon, or allow missing in such columns)"
                    )
                continue
            empty = 0
            parts.append(good.astype(dtype))
            have += good.shape[0]
        out = np.concatenate(parts)[:n] if parts else np.zeros((0, self._d), dtype=dtype)
        if out.shape[0] > 1:
            out = out[np.asarray(rng.permutation(out.shape[0]))]
        self.diagnostics_ = self._diagnostics(n, reason)
        return EncodedTable(out, self._domains)

    def _names(self, mask: np.ndarray) -> tuple[str, ...]:
        return tuple(self._domains[j].name for j in np.flatnonzero(mask))

    def _diagnostics(self, n: int, reason: str | None) -> dict[str, Any]:
        """Facts for the release report, all from the public release and the sampler's own
        randomness (never a data value)."""
        agg = self.aggregates_
        assert agg is not None
        L = agg.reporting_length
        return {
            "synthesizer": self.name,
            "guarantee": (
                f"no synthetic record holds a combination of up to {L} present attributes "
                "that the aggregates do not contain"
            ),
            "guarantee_holds_for_all_columns": not self.relaxed_columns_,
            "relaxed_columns": list(self.relaxed_columns_),
            "relaxed_reason": reason,
            "relaxed_columns_drawn_from": (
                "uniform over the public labels" if self.relaxed_columns_ else None
            ),
            "records_sampled": int(n),
            "records_discarded_at_dead_ends": int(self.discarded_),
            "reporting_length": int(L),
            "k": int(agg.k),
            "max_attributes": agg.max_attributes,
            "max_attributes_source": agg.max_attributes_source,
            "aggregate_combinations": agg.by_length(),
        }

    def _lookup_ids(self, rows: np.ndarray) -> np.ndarray:
        """Ids of combinations (rows of global ids, any order within a row); −1 if absent."""
        if rows.shape[1] == 0:
            return np.zeros(rows.shape[0], dtype=np.int64)
        if rows.shape[1] == 1:
            return self._id1[rows[:, 0]]
        if rows.shape[1] == 2 and self._pair_id is not None:
            return self._pair_id[rows[:, 0], rows[:, 1]]
        return self.aggregates_.index.lookup(np.sort(rows, axis=1))  # type: ignore[union-attr]

    def _extension_mask(self, a: np.ndarray, chosen: np.ndarray, width: int) -> np.ndarray:
        """AND of the released-extension bitmasks of T′ ∪ {a} over all subsets T′ (|T′| ≤ L−2)
        of each record's earlier present attributes (``chosen``, −1 padded), shape (n, W).

        Vectorised over records and over all subsets of one size at once; padded subsets point
        at an all-ones sentinel row."""
        L = self._L
        acc = self._ext[1][self._id1[a]].view(np.uint64)  # fancy indexing copies
        for size in range(1, min(L - 2, width) + 1):
            pos = np.array(list(itertools.combinations(range(width), size)), dtype=np.int64)
            prev = chosen[:, pos]  # (n, n_subsets, size)
            valid = (prev >= 0).all(axis=2)
            rows = np.concatenate(
                [prev, np.broadcast_to(a[:, None, None], (*prev.shape[:2], 1))], axis=2
            ).reshape(-1, size + 1)
            ids = self._lookup_ids(np.where(rows >= 0, rows, 0)).reshape(valid.shape)
            if np.any(valid & (ids < 0)):  # cannot happen: a was allowed
                raise RuntimeError("internal error: chosen combination missing from aggregates")
            ext = self._ext[size + 1].view(np.uint64)
            ids = np.where(valid, ids, ext.shape[0] - 1)  # sentinel: last row, all ones
            acc &= np.bitwise_and.reduce(ext[ids], axis=1)
        return acc.view(np.uint8)

    def _sample_batch(self, B: int, rng: RandomSource) -> tuple[np.ndarray, np.ndarray]:
        d, L = self._d, self._L
        offsets = self._offsets
        # random order, columns that forbid missing first: they must be filled, and are the
        # only way a record can reach a dead end, which is rarest while few values are chosen
        perm = np.asarray(rng.permutation(d), dtype=np.int64)
        order = np.concatenate([perm[~self._allows[perm]], perm[self._allows[perm]]])
        codes = np.empty((B, d), dtype=np.int64)
        chosen = np.full((B, d), -1, dtype=np.int64)  # present attributes, in order of choice
        n_ch = np.zeros(B, dtype=np.int64)
        mask = np.repeat(self._ext[0][:1], B, axis=0)
        alive = np.ones(B, dtype=bool)
        for t, j in enumerate(order):
            j = int(j)
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            c = hi - lo
            gi = np.arange(lo, hi)
            allowed = (mask[:, gi >> 3] & _BIT[gi & 7]) != 0
            exempt = bool(self._exempt[j])
            if exempt:
                allowed[:] = True
            for others, other_sets, own in self._zeros_by_col[j]:
                # a declared impossible combination whose other columns are all drawn
                if all(i in order[:t] for i in others):
                    hit = np.ones(B, dtype=bool)
                    for i, s in zip(others, other_sets, strict=True):
                        hit &= np.isin(codes[:, i], s)
                    if hit.any():
                        rows = np.flatnonzero(hit)
                        allowed[np.ix_(rows, own)] = False
            # conditional of column j given the context columns' codes, from the aggregates
            ctx = self._context(j, [int(i) for i in order[:t]])
            cols = tuple(sorted([*ctx, j]))
            dense = self._dense(cols)
            axes = [cols.index(i) for i in ctx] + [cols.index(j)]
            dense = np.transpose(dense, axes)
            weights = dense[tuple(codes[:, i] for i in ctx)] if ctx else np.tile(dense, (B, 1))
            weights = np.array(weights, dtype=np.float64)  # (B, c + 1), last = absent
            if not self._allows[j]:
                weights[:, c] = 0.0
            target = _row_normalise(weights)
            weights[:, :c] *= allowed
            if exempt:  # no information at all: uniform over the public labels still allowed
                empty = weights.sum(axis=1) <= 0
                weights[empty, :c] = allowed[empty]
            total = weights.sum(axis=1)
            if self._allows[j]:
                weights[total <= 0, c] = 1.0
            else:
                alive &= total > 0
            cell = cell_key([codes[:, i] for i in ctx], [int(self._n_labels[i]) + 1 for i in ctx],
                            prefix=np.zeros(codes.shape[0], dtype=np.int64))
            probs = _rake(weights, target, cell, alive)
            cum = np.cumsum(probs, axis=1)
            u = np.asarray(rng.uniform(B), dtype=np.float64) * cum[:, -1]
            pick = (cum <= u[:, None]).sum(axis=1)
            # float rounding may put u on the total: fall back to the last positive weight, so
            # a zero-weight (forbidden) value is never drawn
            last_pos = c - np.argmax(probs[:, ::-1] > 0, axis=1)
            pick = np.minimum(pick, last_pos)
            if not self._allows[j]:
                pick = np.minimum(pick, c - 1)
                pick = np.where(alive, pick, 0)
                codes[:, j] = pick
                present = alive.copy()
            else:
                present = (pick < c) & alive
                codes[:, j] = np.where(present, pick, c)  # c == missing code
            # update the allowed mask with every new T' ∪ {a}, |T'| ≤ L-2
            sel = np.flatnonzero(present)
            if sel.size and not exempt:
                a = lo + pick[sel]
                if L >= 2:
                    mask[sel] &= self._extension_mask(a, chosen[sel], int(n_ch[sel].max()))
                chosen[sel, n_ch[sel]] = a
                n_ch[sel] += 1
        return codes, alive


def _row_normalise(w: np.ndarray) -> np.ndarray:
    tot = w.sum(axis=1, keepdims=True)
    return w * (1.0 / np.where(tot > 0, tot, np.inf))


def _rake(
    weights: np.ndarray, target: np.ndarray, cell: np.ndarray, alive: np.ndarray
) -> np.ndarray:
    """Re-weight the allowed values so that, per context cell, the expected counts of the batch
    match those of the unconstrained conditional (``target`` rows).

    Why: the hard constraint zeroes values for some records; without this their mass would all
    go to the remaining values of those same records and bias the marginals. Raking moves it to
    records where the value is still allowed. Zero weights stay zero, so the guarantee holds.
    """
    if not alive.any():
        return weights
    _, inv = np.unique(cell[alive], return_inverse=True)
    cell_a = np.zeros(cell.shape[0], dtype=np.int64)
    cell_a[alive] = inv
    n_cell = int(inv.max()) + 1 if inv.size else 1
    c1 = weights.shape[1]
    live = alive.astype(np.float64)[:, None]
    flat = (cell_a[:, None] * c1 + np.arange(c1)).ravel()
    size = n_cell * c1
    tgt = np.bincount(flat, weights=(target * live).ravel(), minlength=size).reshape(n_cell, c1)
    w = weights
    for _ in range(_RAKE_ITERATIONS):
        p = _row_normalise(w) * live
        exp = np.bincount(flat, weights=p.ravel(), minlength=size).reshape(n_cell, c1)
        f = np.divide(tgt, exp, out=np.ones_like(tgt), where=exp > 0)
        np.clip(f, 1.0 / _RAKE_CAP, _RAKE_CAP, out=f)
        w = w * f[cell_a]
    return w


__all__ = ["AggregateOptions", "AggregateSeededSynthesizer"]
