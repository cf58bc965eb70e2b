"""Count queries on a published bundle, each answer with its source and its uncertainty.

``Bundle.count(where={"gender": ["Female"], "country": ["US", "MX"]}, by=["year"])`` counts the
people whose records hold one of the listed values in every listed column (AND across
columns, OR within one; a set column matches when any listed member is present), once per
cell of ``by``. Columns are the release's input columns, values their public labels; missing
is not a value (as in the aggregates, where it means "absent"). Everything is computed from the
bundle's public files: an answer is post-processing of DP outputs and costs no budget.

The rule (the first source that can answer, the same in the showcase page)
-------------------------------------------------------------------------------
1. ``dp_aggregate`` -- a released DP aggregate for exactly this selection: only when the
   bundle's aggregates were measured with noise (synthesizer ``aggregate``; with ``pgm`` they
   are counted on synthetic records), the selection has at most ``reporting_length`` columns
   and no OR over a set column (its members overlap, so released counts cannot be summed). An
   OR within one column is the sum of its disjoint released cells (all must be released).
   Interval: ``+- 1.96 sigma_l sqrt(cells)`` with ``sigma_l`` the recorded noise of that
   length, widened upwards by the contribution bound's largest downward bias
   (:meth:`AggregateCounter.bias_bound`). A single combination that was not released is
   suppressed: its noisy count fell below the release threshold.
2. ``model`` -- the published graphical model's expected count (``model.json``): evidence
   propagation on its junction tree (:mod:`ptsynth.synth.graphical.evidence`), merged rare
   values expanded by their published shares. No sampling noise, but estimation error.
   Interval: where published measurements cover every column of the selection, the standard
   error of the inverse-variance pooled direct estimates from those measurements (the model's
   fit pools them; measured coverage at or above 95%); where none covers it the model
   extrapolates under its conditional independences, which noise alone does not bound, so
   the variance gets an allowance ``MODEL_EXTRAPOLATION^2 * estimate`` on top of the largest
   single-column noise (``MODEL_EXTRAPOLATION`` is measured on benchmark data). A parametric
   bootstrap (re-adding noise of the recorded sigma to the measurements and refitting) was
   measured too and covers far less than 95% beyond single columns: it sees the noise, not
   the model's bias.
3. ``synthetic`` -- the count over the synthetic records scaled to the DP record count.
   Interval ``+- 1.96 * dispersion * sqrt(estimate + 1)``; the dispersion is measured per
   release against its released DP aggregates where there are any
   (:meth:`QueryEngine.synthetic_dispersion`), else ``SYNTHETIC_DISPERSION``.

Why this order: ``benchmarks/query_accuracy.py`` compares every source with the real records
for queries of 1-4 columns with and without OR on the demo data, CTDC, NIST and Adult. The
released DP aggregates beat the synthetic counts by a factor of 2 to 20 in mean absolute error
wherever they answer, and the model beats or ties the synthetic counts at every length
(synthetic records add sampling noise and k-anonymity's suppression to the model's error); a
bundle holds either measured aggregates or a model, never both. Figures: benchmarks/README.md.

Suppression: an answer whose estimate is below ``k`` (any source), or a released-aggregate
selection that was not released, is "fewer than k" -- never a number, nor an interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ptsynth.counting.numpy_backend import NumpyBackend
from ptsynth.errors import ConfigError
from ptsynth.table import EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.release.bundle import Bundle

#: Where an answer comes from, best first (see the module docstring for the rule).
SOURCES = ("dp_aggregate", "model", "synthetic")
#: Two-sided 95% normal quantile.
Z95 = 1.959963984540054
#: Allowance for a model estimate no published measurement covers: the interval's variance
#: grows by this squared times the estimate (measured: benchmarks/query_accuracy.py).
MODEL_EXTRAPOLATION = 3.0
#: Over-dispersion of a synthetic count relative to a Poisson count where the bundle has no
#: DP aggregates to measure it on (measured likewise; only bundles written before model.json).
SYNTHETIC_DISPERSION = 10.0


# ---------------------------------------------------------------------------------------------
# selections over the released input columns
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One input column's condition: the record holds one of ``values`` (OR).

    ``encoded``: the encoded columns involved (a set column: one member column per value,
    "present" = code 0; any other column: its one encoded column, ``codes`` the selected codes).
    """

    column: str
    values: tuple[str, ...]
    is_set: bool
    encoded: tuple[int, ...]
    codes: tuple[int, ...] = ()

    @property
    def is_or(self) -> bool:
        return len(self.values) > 1


@dataclass(frozen=True)
class Selection:
    """AND of :class:`Term` s on distinct input columns (in schema order)."""

    terms: tuple[Term, ...]

    @property
    def length(self) -> int:
        return len(self.terms)

    @property
    def has_or(self) -> bool:
        return any(t.is_or for t in self.terms)

    def describe(self) -> dict[str, list[str]]:
        return {t.column: list(t.values) for t in self.terms}


class Columns:
    """The released input columns of a bundle and how they map to encoded columns."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema.released()
        self.domains = schema.encoded_domains()
        self.enc_index = {d.name: j for j, d in enumerate(self.domains)}
        self.specs = {c.name: c for c in self.schema.data_columns}
        self.order = {name: i for i, name in enumerate(self.specs)}

    def spec(self, column: str) -> Any:
        try:
            return self.specs[column]
        except KeyError:
            raise ConfigError(
                "is not a column of this release (columns: " + ", ".join(self.specs) + ")",
                column=str(column),
            ) from None

    def labels(self, column: str) -> tuple[str, ...]:
        return tuple(self.spec(column).labels)

    def term(self, column: str, values: Iterable[Any]) -> Term:
        spec = self.spec(column)
        if isinstance(values, str):
            values = [values]
        vals = tuple(dict.fromkeys(str(v) for v in values))
        if not vals:
            raise ConfigError("needs at least one value", column=column)
        labels = tuple(spec.labels)
        for v in vals:
            if v not in labels:
                shown = ", ".join(labels[:12]) + (", ..." if len(labels) > 12 else "")
                raise ConfigError(f"{v!r} is not a public value of this column (values: {shown})",
                                  column=column)
        vals = tuple(sorted(vals, key=labels.index))  # the schema's order, whatever was typed
        if spec.kind == "set":
            enc = tuple(self.enc_index[spec.member_name(v)] for v in vals)
            return Term(column, vals, True, enc)
        j = self.enc_index[column]
        return Term(column, vals, False, (j,), tuple(labels.index(v) for v in vals))

    def selection(self, terms: Iterable[Term]) -> Selection:
        terms = list(terms)
        seen = [t.column for t in terms]
        if len(set(seen)) != len(seen):
            raise ConfigError("a column appears twice in one selection", column=seen[0])
        return Selection(tuple(sorted(terms, key=lambda t: self.order[t.column])))


# ---------------------------------------------------------------------------------------------
# answers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """An unsuppressed estimate (internal: :func:`count` suppresses what is below k)."""

    value: float
    low: float
    high: float
    source: str
    note: str = ""
    suppressed: bool = False  # the source itself says "not released"
    #: How the interval was formed (for benchmarks): "covered", "extrapolated", "released", ...
    basis: str = ""
    #: The noise floor used in the interval (standard error), for benchmarks.
    floor: float = 0.0


@dataclass(frozen=True)
class CountRow:
    """One answer: a cell of ``by`` (empty without ``by``).

    ``estimate``, ``low`` and ``high`` are ``None`` when the selection is suppressed (the
    answer is then "fewer than k").
    """

    cell: dict[str, str]
    estimate: float | None
    low: float | None
    high: float | None
    source: str
    suppressed: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"cell": dict(self.cell), "estimate": self.estimate, "low": self.low,
                "high": self.high, "source": self.source, "suppressed": self.suppressed,
                "note": self.note}

    @property
    def text(self) -> str:
        if self.suppressed or self.estimate is None:
            return f"fewer than {self._k}"
        return f"{self.estimate:,.0f} (95% interval {self.low:,.0f} to {self.high:,.0f})"

    _k: int = field(default=0, repr=False, compare=False)


@dataclass(frozen=True)
class CountResult:
    """The answer to one count query: one :class:`CountRow` per cell of ``by``."""

    where: dict[str, list[str]]
    by: tuple[str, ...]
    rows: tuple[CountRow, ...]
    k: int
    release_id: str
    seeded: bool

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "by": list(self.by), "k": self.k,
                "release_id": self.release_id, "seeded_test_bundle": self.seeded,
                "rows": [r.to_dict() for r in self.rows]}

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([{**r.cell, "estimate": r.estimate, "low": r.low, "high": r.high,
                              "source": r.source, "suppressed": r.suppressed, "note": r.note}
                             for r in self.rows])

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def row(self) -> CountRow:
        """The single row of a query without ``by``."""
        if len(self.rows) != 1:
            raise ValueError("the result has one row per cell of `by`; index .rows instead")
        return self.rows[0]


# ---------------------------------------------------------------------------------------------
# the three sources
# ---------------------------------------------------------------------------------------------
class AggregateCounter:
    """Released DP aggregate counts (only where the bundle's aggregates were measured with noise)."""

    def __init__(self, aggregates: Any) -> None:
        self.agg = aggregates
        self.n_columns = len(aggregates.domains)

    def bias_bound(self, length: int) -> float:
        """Relative downward bias a released count of ``length`` may carry from contribution
        bounding: a record holding more than ``m`` present attributes (about a share
        ``1 - q`` of them, ``q`` the DP quantile that chose ``m``) keeps a random ``m`` of
        them, so one of its ``length``-combinations survives with probability at least
        ``prod_i (m - i) / (d - i)`` (``d`` columns)."""
        m, d = self.agg.max_attributes, self.n_columns
        src = str(self.agg.max_attributes_source)
        if m is None or m >= d or not src.startswith("dp_quantile_"):
            return 0.0
        q = float(src.removeprefix("dp_quantile_"))
        keep = 1.0
        for i in range(length):
            keep *= max(m - i, 0) / (d - i)
        return (1.0 - q) * (1.0 - keep)

    def available(self, length: int) -> bool:
        return 1 <= length <= self.agg.reporting_length and self.agg.sigma(length) is not None

    def threshold(self, length: int) -> float:
        for spec in self.agg.lengths:
            if spec.length == length:
                return float(max(self.agg.k, spec.threshold if math.isfinite(spec.threshold) else 0))
        return float(self.agg.k)

    def answer(self, sel: Selection) -> Estimate | None:
        """The released count(s) for exactly this selection, or ``None`` where they cannot
        answer it (a length not measured, OR over a set column, a partly released union)."""
        ell = sel.length
        if not self.available(ell) or any(t.is_set and t.is_or for t in sel.terms):
            return None
        sigma = float(self.agg.sigma(ell))
        per_term = []
        for t in sel.terms:
            if t.is_set:
                per_term.append([(t.encoded[0], 0)])
            else:
                per_term.append([(t.encoded[0], c) for c in t.codes])
        counts = [self.agg.count(tuple(cell)) for cell in itertools.product(*per_term)]
        released = [c for c in counts if c is not None]
        if len(counts) == 1 and not released:
            return Estimate(0.0, 0.0, self.threshold(ell), "dp_aggregate",
                            "not released: its noisy count fell below the release threshold",
                            suppressed=True)
        if len(released) != len(counts):
            return None
        value = float(sum(released))
        se = sigma * math.sqrt(len(counts))
        bias = self.bias_bound(ell)
        note = (f"released DP aggregate (noise sd {sigma:.3g} per count"
                + (f", {len(counts)} disjoint counts summed" if len(counts) > 1 else "") + ")")
        high = value + Z95 * se + value * bias / (1.0 - bias)
        return Estimate(value, max(value - Z95 * se, 0.0), high, "dp_aggregate", note,
                        basis="released", floor=se)


class ModelCounter:
    """Expected counts of the published graphical model (post-processing of DP measurements)."""

    def __init__(self, synth: Any) -> None:
        from ptsynth.synth.graphical.evidence import EvidencePropagation

        model = synth.model_
        self.synth = synth
        self.total = float(model.total)
        self.tree = model.tree
        self.engine = EvidencePropagation(model.tree, model.probs)
        # original code -> (model code, expansion weight)
        self.forward = []
        self.expand = []
        for comp in synth.compression_:
            e = np.ones(comp.forward.size)
            if comp.compressed:
                e[comp.merged] = comp.merged_probs
            self.forward.append(np.asarray(comp.forward, dtype=np.int64))
            self.expand.append(e)
        self.measurements = list(synth.measurements_)

    def weights(self, j: int, orig: np.ndarray) -> np.ndarray:
        """Model-code weights of encoded column ``j`` from weights over its original codes."""
        w = np.zeros(self.tree.sizes[j])
        np.add.at(w, self.forward[j], orig * self.expand[j])
        return w

    def _evidence(self, sel: Selection) -> tuple[dict[int, np.ndarray], list[list[int]]]:
        """Per-variable weights of the single-valued part, and the set-OR terms' members."""
        ev: dict[int, np.ndarray] = {}
        unions: list[list[int]] = []
        for t in sel.terms:
            if t.is_set and t.is_or:
                unions.append(list(t.encoded))
                continue
            if t.is_set:
                j, codes = t.encoded[0], (0,)
            else:
                j, codes = t.encoded[0], t.codes
            orig = np.zeros(self.forward[j].size)
            orig[list(codes)] = 1.0
            ev[j] = self.weights(j, orig)
        return ev, unions

    def probability(self, sel: Selection) -> float:
        """P(selection) under the model (set-column ORs by inclusion-exclusion on "none")."""
        ev, unions = self._evidence(sel)
        total = 0.0
        for r in range(len(unions) + 1):
            for subset in itertools.combinations(range(len(unions)), r):
                e = dict(ev)
                for i in subset:
                    for j in unions[i]:
                        absent = np.zeros(self.forward[j].size)
                        absent[-1] = 1.0  # a member column's last code: not present
                        e[j] = self.weights(j, absent)
                p, _ = self.engine.run(e)
                total += (-1) ** r * p
        return max(total, 0.0)

    def answer(self, sel: Selection) -> Estimate:
        value = self.total * self.probability(sel)
        se = self.noise_se(sel)
        if se is not None:
            return Estimate(value, max(value - Z95 * se, 0.0), value + Z95 * se, "model",
                            "expected count of the published graphical model; a published "
                            "measurement covers this selection", basis="covered", floor=se)
        floor = self.floor(sel)
        half = Z95 * math.sqrt(floor**2 + MODEL_EXTRAPOLATION**2 * max(value, 0.0))
        return Estimate(value, max(value - half, 0.0), value + half, "model",
                        "expected count of the published graphical model, extrapolated from "
                        "smaller measured combinations (interval includes an allowance for the "
                        "model's assumptions)", basis="extrapolated", floor=floor)

    def floor(self, sel: Selection) -> float:
        """The largest noise standard error of the selection's single-column parts."""
        out = 0.0
        for t in sel.terms:
            se = self.noise_se(Selection((t,)))
            out = max(out, se or 0.0)
        return out

    def selection_weights(self, sel: Selection, clique: tuple[int, ...]) -> np.ndarray | None:
        """The selection as weights over the cells of a measured ``clique`` (model codes), or
        ``None`` when the selection involves a column outside it."""
        vars_ = [j for t in sel.terms for j in t.encoded]
        if not set(vars_) <= set(clique):
            return None
        sizes = [self.tree.sizes[v] for v in clique]
        w = np.ones(sizes)
        ev, unions = self._evidence(sel)
        for v, wv in ev.items():
            shape = [1] * len(clique)
            shape[clique.index(v)] = -1
            w = w * wv.reshape(shape)
        for members in unions:
            none = np.ones(sizes)
            for j in members:
                absent = np.zeros(self.forward[j].size)
                absent[-1] = 1.0
                shape = [1] * len(clique)
                shape[clique.index(j)] = -1
                none = none * self.weights(j, absent).reshape(shape)
            w = w * (1.0 - none)
        return w

    def noise_se(self, sel: Selection) -> float | None:
        """Standard error of the inverse-variance pooled direct estimates from every published
        measurement that covers the selection; ``None`` when none covers it."""
        inv = 0.0
        for m in self.measurements:
            w = self.selection_weights(sel, m.clique)
            if w is None:
                continue
            var = float(np.sum(w * w * np.broadcast_to(np.asarray(m.sigma) ** 2, w.shape)))
            if var > 0:
                inv += 1.0 / var
        return 1.0 / math.sqrt(inv) if inv > 0 else None


class SyntheticCounter:
    """Counts over the released synthetic records, scaled to the DP record count."""

    def __init__(self, codes: np.ndarray, domains: Sequence[Any], dp_records: float,
                 dispersion: float = 1.0) -> None:
        self.codes = codes
        self.domains = domains
        self.n = int(codes.shape[0])
        self.scale = float(dp_records) / self.n if self.n else 1.0
        self.dispersion = float(dispersion)

    def mask(self, sel: Selection) -> np.ndarray:
        m = np.ones(self.n, dtype=bool)
        for t in sel.terms:
            if t.is_set:
                sub = np.zeros(self.n, dtype=bool)
                for j in t.encoded:
                    sub |= self.codes[:, j] == 0
            else:
                lut = np.zeros(self.domains[t.encoded[0]].size, dtype=bool)
                lut[list(t.codes)] = True
                sub = lut[self.codes[:, t.encoded[0]]]
            m &= sub
        return m

    def raw(self, sel: Selection) -> int:
        return int(self.mask(sel).sum())

    def answer(self, sel: Selection) -> Estimate:
        c = self.raw(sel)
        value = c * self.scale
        half = Z95 * self.dispersion * math.sqrt(value + 1.0)
        return Estimate(value, max(value - half, 0.0), value + half, "synthetic",
                        "count over the synthetic records (a synthetic estimate)",
                        basis="synthetic")


# ---------------------------------------------------------------------------------------------
# the engine bound to a bundle
# ---------------------------------------------------------------------------------------------
class QueryEngine:
    """Answers count queries on one bundle; the sources are built on first use."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.columns = Columns(bundle.schema)
        self.k = bundle.k

    @cached_property
    def aggregates(self) -> AggregateCounter | None:
        agg = self.bundle.aggregates
        if not any(agg.sigma(ell) is not None for ell in range(1, agg.reporting_length + 1)):
            return None
        return AggregateCounter(agg)

    @cached_property
    def model(self) -> ModelCounter | None:
        if not self.bundle.has_model:
            return None
        synth = self.bundle.model
        if getattr(synth, "model_", None) is None:
            return None
        return ModelCounter(synth)

    @cached_property
    def dp_records(self) -> float:
        if self.bundle.has_model:
            return float(self.bundle.model.dp_record_count)
        return float(self.bundle.aggregates.record_count)

    @cached_property
    def synthetic(self) -> SyntheticCounter:
        table = self.bundle.synthetic_table
        counter = SyntheticCounter(table.codes, table.domains, self.dp_records)
        counter.dispersion = self.synthetic_dispersion(counter)
        return counter

    def synthetic_dispersion(self, counter: SyntheticCounter) -> float:
        """How much wider than a Poisson count a synthetic count's error is, for this release.

        With DP aggregates in the bundle (public, noise sd known) it is measured on them: for
        every released combination, ``u = sqrt(max((s - a)^2 - sigma^2, 0) / (s + 1))`` with
        ``s`` the synthetic and ``a`` the released count is the error per unit of Poisson
        spread once the noise is removed. Per length, the 95th percentile of ``u`` divided by
        1.96 makes ``s +- 1.96 * dispersion * sqrt(s + 1)`` hold 95% of that length's
        released combinations; the largest over the lengths is used (a synthetic answer is
        for a selection the aggregates cannot answer, often an OR or a longer one, whose
        error is not smaller). Without DP aggregates, :data:`SYNTHETIC_DISPERSION`.
        """
        if self.aggregates is None:
            return SYNTHETIC_DISPERSION
        agg = self.aggregates.agg
        # The aggregate release's own counter over the synthetic records (many sets per pass).
        combos_counter = NumpyBackend(
            EncodedTable(counter.codes, tuple(counter.domains))).combination_counter(None, None)
        per_length = []
        for ell in range(1, agg.reporting_length + 1):
            sigma = agg.sigma(ell)
            if sigma is None or agg.counts[ell].size < 20:
                continue
            combos = agg.combinations[ell]
            syn = combos_counter.combination_counts(combos[:, :, 0], combos[:, :, 1])[0] \
                * counter.scale
            err2 = (syn - agg.counts[ell]) ** 2 - float(sigma) ** 2
            units = np.sqrt(np.maximum(err2, 0.0) / (syn + 1.0))
            per_length.append(float(np.percentile(units, 95)) / Z95)
        if not per_length:
            return SYNTHETIC_DISPERSION
        return max(1.0, *per_length)

    def estimate(self, sel: Selection, source: str | None = None) -> Estimate:
        """The rule's estimate (or a given source's, for benchmarks), never suppressed.

        Raises ``ValueError`` when a given ``source`` cannot answer the selection.
        """
        if source not in (None, *SOURCES):
            raise ValueError(f"unknown source {source!r}")
        if source in (None, "dp_aggregate"):
            ans = self.aggregates.answer(sel) if self.aggregates is not None else None
            if ans is not None:
                return ans
            if source == "dp_aggregate":
                raise ValueError("the released DP aggregates cannot answer this selection")
        if source in (None, "model"):
            if self.model is not None:
                return self.model.answer(sel)
            if source == "model":
                raise ValueError("the bundle publishes no graphical model")
        return self.synthetic.answer(sel)

    def row(self, sel: Selection, cell: dict[str, str]) -> CountRow:
        est = self.estimate(sel)
        k = self.k
        if est.suppressed or est.value < k:
            why = est.note if est.suppressed else f"the {est.source} estimate is below k = {k}"
            return CountRow(cell, None, None, None, est.source, True,
                            f"fewer than {k} ({why})", _k=k)
        return CountRow(cell, round(est.value, 1), round(est.low, 1), round(est.high, 1),
                        est.source, False, est.note, _k=k)


def _as_list(by: Any) -> list[str]:
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return [str(b) for b in by]


def count(bundle: Bundle, *, where: Mapping[str, Any] | None = None, by: Any = None,
          engine: QueryEngine | None = None) -> CountResult:
    """Count the records matching ``where`` (AND across columns, OR within one), per cell of
    ``by``. See the module docstring for the sources, intervals and suppression."""
    engine = engine or engine_for(bundle)
    cols = engine.columns
    where = dict(where or {})
    base = {c: cols.term(c, v) for c, v in where.items()}
    by_cols = _as_list(by)
    twice = [c for c in by_cols if by_cols.count(c) > 1]
    if twice:
        raise ConfigError("appears twice in by", column=twice[0], key="by")
    axes = []
    for c in by_cols:
        labels = base[c].values if c in base else cols.labels(c)
        axes.append([(c, v) for v in labels])
    rows = []
    for cell in itertools.product(*axes):
        terms = dict(base)
        for c, v in cell:
            terms[c] = cols.term(c, [v])
        sel = cols.selection(terms.values())
        rows.append(engine.row(sel, {c: v for c, v in cell}))
    return CountResult({c: list(t.values) for c, t in base.items()}, tuple(by_cols),
                       tuple(rows), engine.k, bundle.release_id, bundle.seeded)


def engine_for(bundle: Bundle) -> QueryEngine:
    """The bundle's query engine, built once per loaded bundle (its sources load lazily)."""
    eng = bundle._cache.get("query_engine")
    if eng is None:
        eng = bundle._cache["query_engine"] = QueryEngine(bundle)
    return eng
