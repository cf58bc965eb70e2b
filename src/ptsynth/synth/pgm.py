"""Graphical-model synthesizer: AIM's adaptive selection at MST's speed, on our privacy core.

Why: the aggregate-seeded method loses structure on wide tables; private-pgm's AIM is the most
accurate public DP synthesizer but slow (hundreds of small measurements, 1000 estimation steps
after each). This synthesizer follows AIM's recipe with fewer, larger measurements:

1. **1-way marginals** of every column, discrete Gaussian, L2 sensitivity 1 each, one ledger
   entry per column (a share ``oneway_share`` of the budget, split equally). Values whose noisy
   count is below ``3 sigma`` are merged into one bucket (MST; post-processing).
2. **Adaptive rounds** (AIM). Candidates are the downward closure of the workload (default: all
   3-way sets) up to ``degree`` columns. Each round keeps the candidates whose addition keeps the
   junction tree within ``max_model_size * (budget used / budget)`` cells (AIM's growing limit;
   never above ``max_model_size``), picks one with the exponential mechanism on the score
   ``w_r (||M_r(model) - M_r(data)||_1 - sqrt(2/pi) sigma cells_r)`` (sensitivity max w_r,
   10% of the round's budget), and measures it with the discrete Gaussian (90%). Single
   columns are candidates too (as in AIM): one chosen again is measured over *all* its values,
   so the merged rare values get a second, pooled noisy count. If the refitted
   model moved less than the expected noise on the chosen set, sigma halves (annealing). The last
   round spends exactly what remains.
3. **Estimation**: mirror descent on the log-potentials of a junction-tree MRF (see
   :mod:`ptsynth.synth.graphical.estimation`), warm-started between rounds, with a longer final fit.
4. **Generation** on the junction tree's maximal cliques (see
   :mod:`ptsynth.synth.graphical.sampling`). Merged rare values are spread back by their noisy
   counts projected onto the simplex scaled to the model's bucket estimate
   (:meth:`ColumnCompression.refined`).

Known zeros: combinations the schema declares impossible (``structural_zeros``, public, see
:mod:`ptsynth.structure`) are fixed at probability 0 in a clique covering their columns (see
:mod:`ptsynth.synth.graphical.estimation`); the measurements are unchanged. Columns in such a
combination are not compressed (a merged bucket could mix allowed and impossible values), so the
zeros hold exactly in the model's own codes, and no sampled record holds one. AIM's
expected-noise term counts only a marginal's free cells (the model discards the noise on known
zeros), so marginals spanning a hierarchy are not judged too noisy to measure.

Release integration: ``dp_record_count`` (the record count the model uses: inverse-variance
weighted mean of every measurement's noisy total, post-processing), ``diagnostics`` (JSON-ready public
trace: budget split, compression, rounds with chosen columns, sigma, annealing, model size,
timings) and :meth:`PGMSynthesizer.plan_release` (the budget split and the noise std of one count, from the public
domains and knobs only).

Wide tables: at most ``max_candidates`` candidates outside the current model are scored per
round, drawn at random with public randomness (the exponential mechanism over a
data-independent subset keeps its guarantee); AIM's workload weights are computed in linear
time; contraction paths of model marginals are memoised.

Budget: ``fit`` spends ``rho`` (argument, else the constructor's ``rho``, else
``accountant.remaining_rho``) only through ``accountant.measure_gaussian`` and
``accountant.select_exponential``. Exact data marginals of the candidates are computed once and
used *only* inside the exponential mechanism's score and the Gaussian measurement.

Why fewer rounds than AIM's 16 d: each round costs a refit; a handful of well-measured sets per
column gets most of AIM's accuracy (annealing halves sigma whenever the model stops learning,
so budget moves to fewer, sharper measurements anyway). ``rounds = d + 8`` was measured on CTDC
(21k x 16), NIST national2019 (27k x 19) and Adult (49k x 14) at epsilon = 1:
10 and 40 rounds were both worse on Adult (mean TVD 0.077 and 0.070 vs 0.069).

Why ``max_model_size = 4e5`` cells by default (3.2 MB of float64 per copy; AIM's default is
80 MB): estimation cost is linear in the junction tree's size, and the workload is all 3-way
sets, which on tables of a dozen or more columns triangulate into 5-8 column cliques, so a
tight cap stops the model from adding 3-way sets it still gets wrong. Measured together with
``oneway_share = 0.15`` at epsilon = 1, mean 3-way TVD over seeds 0 and 1 (times on 2 shared
cores, two jobs at once): CTDC 0.0427 (1e5, 0.25) -> 0.0409 (2e5) -> 0.0399 (4e5) in ~21 s;
NIST 0.0600 -> 0.0566 -> 0.0574 in ~30 s; Adult 0.0768 -> 0.0759 in 13 s; demo (32 columns,
small cliques) 0.2227 -> 0.2232 in ~28 s (unchanged). 2e6 reached 0.030 pooled on CTDC but in
about 230 s. The limit is enforced before a set is measured, so memory never exceeds it.

Why balanced sampling (``balanced=True``): the model's expected marginals are closer to the data
than one random draw from it; assigning each clique's new columns in a low-discrepancy order
over the columns already drawn (see :func:`~ptsynth.synth.graphical.sampling.stratified_draw`)
removes most of the multinomial noise on marginals that span cliques. Same fitted model,
seeds 0-1, 3-way TVD: Adult 0.0787 -> 0.0768, NIST 0.0600 -> 0.0594, CTDC 0.0427 -> 0.0425.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from ptsynth.counting import CountingBackend, as_backend
from ptsynth.errors import BudgetExceededError, ConfigError, NotFittedError, SynthesisError
from ptsynth.privacy import Accountant, RandomSource
from ptsynth.privacy.zcdp import exponential_epsilon, exponential_rho, gaussian_rho, gaussian_sigma
from ptsynth.progress import ProgressCallback, ProgressReporter, reporter
from ptsynth.structure import StructuralZero, violations, zero_cliques, zero_table
from ptsynth.synth.graphical.compression import ColumnCompression
from ptsynth.synth.graphical.estimation import (
    GraphicalModel,
    Measurement,
    MirrorDescentEstimator,
)
from ptsynth.synth.graphical.junction_tree import Clique, triangulated_sizes
from ptsynth.synth.graphical.sampling import sample_records
from ptsynth.synth.graphical.selection import (
    candidate_weights,
    default_workload,
    expected_noise_l1,
)
from ptsynth.synth.options import build_options, is_int, is_number, options_dict, require
from ptsynth.table import ColumnDomain, EncodedTable

#: Cells of exact candidate marginals counted up front, in one backend call (int64: 256 MB).
PREFETCH_CELLS = 2**25
#: Share of each round's budget spent on selecting (AIM: 0.1); the rest measures.
SELECTION_SHARE = 0.1
#: Ways to split the 1-way budget over the columns (see :func:`budget_split`).
ONEWAY_ALLOCATIONS = ("size", "equal")


@dataclass(frozen=True)
class RoundRecord:
    """Public trace of one adaptive round (everything here is a DP output or public)."""

    clique: tuple[str, ...]
    sigma: float
    epsilon: float
    rho: float
    annealed: bool
    n_eligible: int
    model_size: int
    n_scored: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class BudgetSplit:
    """How a fit spends its budget; a function of public inputs only (domains, knobs, rho)."""

    budget: float
    oneway_rho: float
    oneway_sigma: tuple[float, ...]
    rounds_rho: float
    rounds: int
    sigma: float
    epsilon: float


def budget_split(
    sizes: Sequence[int],
    budget: float,
    *,
    adaptive: bool,
    oneway_share: float,
    rounds: int,
    oneway_allocation: str = "size",
) -> BudgetSplit:
    """Split ``budget`` (rho) between the 1-way marginals and the adaptive rounds.

    1-way noise per column: ``"equal"`` gives every column the same sigma; ``"size"`` gives
    column j ``sigma_j ∝ size_j^(-1/3)``, which minimises the summed expected L1 error
    ``sum_j sqrt(2/pi) sigma_j size_j`` (the 1-way workload's TVD) for a fixed
    ``sum_j 1/(2 sigma_j^2)`` (Lagrange: ``size_j = lambda sigma_j^-3``). Many-valued columns
    get less noise, so fewer of their values fall under the compression threshold.
    Each round initially spends ``rounds_rho / rounds``: 90% measuring (sigma), 10% selecting
    (epsilon = sqrt(8 rho_sel), the exponential mechanism's zCDP cost is eps^2/8).
    """
    d = len(sizes)
    share = oneway_share if adaptive else 1.0
    rho1 = share * budget
    if oneway_allocation == "size":
        n = np.asarray(sizes, dtype=np.float64)
        k = np.sqrt(np.sum(n ** (2.0 / 3.0)) / (2.0 * rho1))
        sig1 = tuple(float(x) for x in k * n ** (-1.0 / 3.0))
    elif oneway_allocation == "equal":
        sig1 = (float(np.sqrt(d / (2.0 * rho1))),) * d
    else:
        raise ValueError(f"oneway_allocation must be one of {ONEWAY_ALLOCATIONS}")
    rest = budget - rho1 if adaptive else 0.0
    if rest > 0:
        per_round = rest / rounds
        sigma = gaussian_sigma((1 - SELECTION_SHARE) * per_round)
        eps = exponential_epsilon(SELECTION_SHARE * per_round)
    else:
        sigma, eps = float("inf"), 0.0
    return BudgetSplit(float(budget), float(rho1), sig1, float(rest), int(rounds), sigma, eps)


@dataclass(frozen=True, kw_only=True)
class PGMOptions:
    """Knobs of :class:`PGMSynthesizer` (``[release.pgm]`` in a release config).

    Attributes:
        workload: column sets the release should serve (names or indices); ``None`` = all
            3-way sets. Candidates are its downward closure up to ``degree`` columns.
        degree: largest measured set (3 by default; 2 is faster and slightly less accurate).
        max_model_size: cap on the junction tree's total cells (floats); bounds memory and time.
        rounds: planned adaptive rounds (``None``: ``d + 8``). Annealing may end earlier.
        iters: mirror-descent steps after each round (warm-started).
        final_iters: mirror-descent steps of the final fit. 30 / 250 rather than 50 / 400:
            stopping earlier keeps the model nearer maximum entropy where the measurements
            are noisy, and costs less. Seeds 0-1, 3-way TVD, 50/400 -> 30/250 (-> 20/150):
            epsilon = 1 CTDC 0.0392 -> 0.0391 (0.0397), NIST 0.0563 -> 0.0554 (0.0585),
            Adult 0.0769 -> 0.0760 (0.0787); epsilon = 0.1 CTDC 0.1067 -> 0.1063, NIST
            0.1535 -> 0.1462, Adult 0.1708 -> 0.1609; fit time about 25% shorter.
        oneway_share: budget share of the 1-way marginals (all columns together). 0.15: the
            workload is 3-way, and every 2-/3-way measurement also informs the 1-way margins
            (at 0.25 CTDC's 1-way TVD was 0.002, below its sampling floor 0.004). At epsilon = 1,
            seeds 0-1, 3-way TVD with the 1e5 model: CTDC 0.0423 vs 0.0425 (0.25), NIST
            0.0585 vs 0.0594; with the 4e5 model CTDC 0.0399 vs 0.0404, NIST 0.0574 vs 0.0580
            and smaller, faster models. Earlier single-seed runs: 0.1 hurt NIST (large INDP
            domain). At epsilon = 0.1 0.15 was worse than 0.25 on Adult and NIST until single
            columns became re-measurable in the rounds (``remeasure_oneway``); with that, seeds
            0-1: Adult 0.171 vs 0.173 (0.25) vs 0.187 (0.08), NIST 0.154 vs 0.145 vs 0.175,
            CTDC 0.107 vs 0.118 vs 0.106; at epsilon = 1 all three within 1.5% of each other.
        oneway_allocation: ``"equal"`` (default) or ``"size"`` (sigma_j ∝ size_j^(-1/3), see
            :func:`budget_split`). Measured at epsilon = 1, 2-3 seeds: "size" helped Adult
            (0.0666 vs 0.0677) but hurt NIST (0.0507 vs 0.0489) and CTDC (0.0368 vs 0.0357).
        compress: merge values with noisy count < ``3 sigma`` (MST), post-processing.
        max_candidates: at most this many candidates *outside* the current model are scored
            per round, drawn uniformly at random (data-independent, so the exponential
            mechanism keeps its guarantee); candidates inside the model's cliques are always
            scored (cheap). ``None``: score all. Bounds the per-round cost on wide tables.
            Demo data (19k x 32, 5,456 candidates), epsilon = 1: all candidates 201 s (mean
            TVD 0.0238, one seed); 1000: 26-33 s (0.0250, two seeds); 500: 21-26 s (0.0268).
            NIST (1,140 candidates) with 500: 0.0489 vs 0.0481 with all (3 seeds).
        balanced: sample each clique's new columns (and merged rare values) in a balanced,
            low-discrepancy order over the columns already drawn instead of at random (lower
            sampling noise on cross-clique marginals, unbiased; see module docstring).
        remeasure_oneway: single columns stay candidates in the adaptive rounds (AIM); a
            column chosen again is measured at full resolution and its merged values' noisy
            counts are pooled by inverse variance. Same budget, seeds 0-1, 3-way TVD: at
            epsilon = 0.1 Adult 0.192 -> 0.171, NIST 0.156 -> 0.154, CTDC 0.110 -> 0.107; at
            epsilon = 1 NIST 0.0574 -> 0.0563, CTDC 0.0399 -> 0.0392, Adult 0.0759 -> 0.0769.
    """

    workload: tuple[tuple[str | int, ...], ...] | None = None
    degree: int = 3
    max_model_size: float = 4e5
    rounds: int | None = None
    iters: int = 30
    final_iters: int = 250
    oneway_share: float = 0.15
    oneway_allocation: str = "equal"
    compress: bool = True
    max_candidates: int | None = 1000
    balanced: bool = True
    remeasure_oneway: bool = True

    def __post_init__(self) -> None:
        if self.workload is not None:
            require(
                isinstance(self.workload, (list, tuple)) and len(self.workload) > 0
                and all(isinstance(s, (list, tuple)) and s and all(isinstance(c, (str, int)) for c in s)
                        for s in self.workload),
                "workload", "must be a non-empty list of column sets (lists of column names)",
            )
            object.__setattr__(self, "workload", tuple(tuple(s) for s in self.workload))
        require(is_int(self.degree) and self.degree >= 1, "degree", "must be an integer ≥ 1")
        require(is_number(self.max_model_size) and self.max_model_size >= 1, "max_model_size",
                "must be a number ≥ 1 (cells of the junction tree)")
        object.__setattr__(self, "max_model_size", float(self.max_model_size))
        require(self.rounds is None or (is_int(self.rounds) and self.rounds >= 1), "rounds",
                "must be an integer ≥ 1")
        require(is_int(self.iters) and self.iters >= 0, "iters", "must be an integer ≥ 0")
        require(is_int(self.final_iters) and self.final_iters >= 0, "final_iters",
                "must be an integer ≥ 0")
        require(is_number(self.oneway_share) and 0 < self.oneway_share <= 1, "oneway_share",
                "must lie in (0, 1]")
        object.__setattr__(self, "oneway_share", float(self.oneway_share))
        require(self.oneway_allocation in ONEWAY_ALLOCATIONS, "oneway_allocation",
                f"must be one of {', '.join(ONEWAY_ALLOCATIONS)}")
        require(isinstance(self.compress, bool), "compress", "must be true or false")
        require(self.max_candidates is None or (is_int(self.max_candidates) and self.max_candidates >= 1),
                "max_candidates", "must be an integer ≥ 1")
        require(isinstance(self.balanced, bool), "balanced", "must be true or false")
        require(isinstance(self.remeasure_oneway, bool), "remeasure_oneway", "must be true or false")


class PGMSynthesizer:
    """Private-PGM synthesizer with AIM-style adaptive selection (name ``"pgm"``).

    Knobs: :class:`PGMOptions` (pass an options object, or the knobs as keywords).
    """

    name: ClassVar[str] = "pgm"
    summary: ClassVar[str] = (
        "graphical model with AIM-style adaptive marginal selection (default; most accurate)"
    )
    Options: ClassVar[type[PGMOptions]] = PGMOptions

    def __init__(self, options: PGMOptions | None = None, /, *,
                 structural_zeros: Sequence[StructuralZero] = (), **knobs: Any) -> None:
        if options is not None and knobs:
            raise TypeError("pass an options object or keyword knobs, not both")
        self.options = options if options is not None else build_options(
            PGMOptions, knobs, where="PGMSynthesizer"
        )
        #: Impossible combinations (public): known zeros of the model.
        self.structural_zeros: tuple[StructuralZero, ...] = tuple(structural_zeros)
        self.zero_tables_: dict[tuple[int, ...], np.ndarray] = {}
        self._free_cache: dict = {}
        self.refine_buckets = True  # see ColumnCompression.refined
        self.model_: GraphicalModel | None = None
        self.domains_: tuple = ()
        self.compression_: list[ColumnCompression] = []
        self.measurements_: list[Measurement] = []
        self.rounds_: list[RoundRecord] = []
        self.timings_: dict[str, float] = {}
        self.split_: BudgetSplit | None = None
        self.total_: float | None = None
        self.diagnostics_: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"PGMSynthesizer({self.options!r})"

    @classmethod
    def create(cls, options: PGMOptions, *, reporting_length: int, k: int,
               structural_zeros: Sequence[StructuralZero] = ()) -> PGMSynthesizer:
        """The synthesizer a release with these options uses (registry factory)."""
        del reporting_length, k  # the workload (default: all 3-way sets) says what to serve
        return cls(options, structural_zeros=structural_zeros)

    @classmethod
    def plan_release(
        cls, domains: Sequence[ColumnDomain], *, rho: float, options: PGMOptions,
        reporting_length: int, k: int,
    ) -> dict[str, Any]:
        """Per step the budget and noise of one count, from public inputs only (``--plan``)."""
        del reporting_length, k
        return {"steps": _plan_rows(cls(options).plan(list(domains), float(rho)), len(domains))}

    # -- what a release needs from a fitted synthesizer ---------------------------------------
    @property
    def dp_record_count(self) -> float:
        """The DP record count the model uses (post-processing of noisy totals)."""
        if self.total_ is None:
            raise NotFittedError("fit the pgm synthesizer first")
        return self.total_

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Public facts about the fit (DP outputs, public inputs, timings)."""
        if self.model_ is None:
            raise NotFittedError("fit the pgm synthesizer first")
        return self.diagnostics_

    @property
    def aggregates(self) -> None:
        """None: the graphical model measures marginals, not a DP aggregate table."""
        return None

    @property
    def fitted_domains(self) -> tuple[ColumnDomain, ...]:
        """The public domains the model was fitted on."""
        if self.model_ is None:
            raise NotFittedError("fit the pgm synthesizer first")
        return self.domains_

    # -- the fitted model as a document (see ptsynth.synth.persist) --------------------------
    def state_document(self) -> dict[str, Any]:
        """The fitted state: DP outputs and what the model estimated from them, nothing else."""
        if self.model_ is None:
            raise NotFittedError("fit the pgm synthesizer first")
        from ptsynth.synth.persist import encode_array

        tree = self.model_.tree
        return {
            "total": float(self.model_.total),
            "compression": [
                {"forward": encode_array(c.forward), "kept": encode_array(c.kept),
                 "merged": encode_array(c.merged), "merged_probs": encode_array(c.merged_probs),
                 "merged_noisy": None if c.merged_noisy is None else encode_array(c.merged_noisy)}
                for c in self.compression_
            ],
            "tree": {"sizes": list(tree.sizes), "cliques": [list(c) for c in tree.cliques],
                     "parent": list(tree.parent), "order": list(tree.order),
                     "separators": [list(s) for s in tree.separators]},
            "probs": [encode_array(np.asarray(p, dtype=np.float64)) for p in self.model_.probs],
            "measurements": [
                {"clique": list(m.clique), "values": encode_array(m.values),
                 "sigma": encode_array(np.asarray(m.sigma, dtype=np.float64)), "query": m.query}
                for m in self.measurements_
            ],
            "structural_zeros": [z.to_dict() for z in self.structural_zeros],
        }

    @classmethod
    def from_state_document(
        cls, options: PGMOptions, domains: tuple[ColumnDomain, ...], state: dict[str, Any], *,
        reporting_length: int = 0, k: int = 0,
    ) -> PGMSynthesizer:
        """A fitted synthesizer from :meth:`state_document` (no budget spent, no data read)."""
        del reporting_length, k
        from ptsynth.synth.graphical.junction_tree import JunctionTree
        from ptsynth.synth.persist import decode_array

        self = cls(options, structural_zeros=[
            StructuralZero.from_dict(z) for z in state.get("structural_zeros", [])])
        comps = []
        for j, c in enumerate(state["compression"]):
            noisy = c["merged_noisy"]
            comps.append(ColumnCompression(
                decode_array(c["forward"], f"compression[{j}].forward"),
                decode_array(c["kept"], f"compression[{j}].kept"),
                decode_array(c["merged"], f"compression[{j}].merged"),
                decode_array(c["merged_probs"], f"compression[{j}].merged_probs"),
                None if noisy is None else decode_array(noisy, f"compression[{j}].merged_noisy"),
            ))
        t = state["tree"]
        tree = JunctionTree(
            sizes=tuple(int(s) for s in t["sizes"]),
            cliques=tuple(tuple(int(v) for v in c) for c in t["cliques"]),
            parent=tuple(int(p) for p in t["parent"]),
            order=tuple(int(o) for o in t["order"]),
            separators=tuple(tuple(int(v) for v in s) for s in t["separators"]),
        )
        probs = [decode_array(p, f"probs[{i}]") for i, p in enumerate(state["probs"])]
        if len(comps) != len(domains) or len(tree.sizes) != len(domains) or len(probs) != len(tree.cliques):
            raise ValueError("state does not match the domains")
        for j, (c, dom) in enumerate(zip(comps, domains, strict=True)):
            if c.forward.size != dom.size or c.size != tree.sizes[j]:
                raise ValueError("compression does not match the domain")
        for i, p in enumerate(probs):
            if p.shape != tree.shape(i) or not np.all(np.isfinite(p)) or np.any(p < 0):
                raise ValueError("clique table does not match the tree")
        self.domains_ = tuple(domains)
        self.compression_ = comps
        self.model_ = GraphicalModel(tree, probs, float(state["total"]))
        self.total_ = float(state["total"])
        self.measurements_ = [
            Measurement(tuple(int(v) for v in m["clique"]), decode_array(m["values"], "values"),
                        decode_array(m["sigma"], "sigma"), query=str(m.get("query", "")))
            for m in state.get("measurements", [])
        ]
        return self

    # ------------------------------------------------------------------------------------
    def plan(self, domains: Sequence[ColumnDomain], budget: float) -> BudgetSplit:
        """The budget split ``fit`` will use on a table with these (public) domains."""
        names = [dom.name for dom in domains]
        sizes = [dom.size for dom in domains]
        workload = self._resolve_workload(names)
        adaptive = any(len(r) > 1 for r in candidate_weights(workload, self.options.degree))
        rounds = self.options.rounds if self.options.rounds is not None else len(sizes) + 8
        return budget_split(
            sizes,
            budget,
            adaptive=adaptive,
            oneway_share=self.options.oneway_share,
            rounds=rounds,
            oneway_allocation=self.options.oneway_allocation,
        )

    def fit(
        self,
        data: CountingBackend | EncodedTable,
        accountant: Accountant,
        *,
        rho: float | None = None,
        progress: ProgressReporter | ProgressCallback | None = None,
    ) -> PGMSynthesizer:
        """Measure ``data`` through ``accountant`` only, then fit the graphical model.

        Spends ``rho`` (default: whatever the accountant has left). ``data`` is asked only for
        marginal counts (:mod:`ptsynth.counting`), which go straight to the mechanisms.
        ``progress`` receives a ``"measure"`` task per phase and an ``"estimate"`` task.
        """
        t0 = time.perf_counter()
        progress = reporter(progress)
        data = as_backend(data)
        start_rho = accountant.spent_rho
        budget = rho
        if budget is None:
            budget = accountant.remaining_rho
        else:
            budget = float(budget)
            accountant.check(budget, "pgm: whole fit")  # refuse before any data is read
        if not budget > 0:
            raise BudgetExceededError("no privacy budget left to fit the pgm synthesizer")
        domains = data.domains
        d = len(domains)
        names = tuple(dom.name for dom in domains)
        self.domains_ = domains
        workload = self._resolve_workload(list(names))
        weights = {
            r: w
            for r, w in candidate_weights(workload, self.options.degree).items()
            if len(r) > 1 or self.options.remeasure_oneway
        }
        split = self.plan(domains, budget)
        self.split_ = split
        timings: dict[str, float] = {}
        zero_sets = self._known_zeros(domains)

        # -- 1. one-way marginals ----------------------------------------------------------
        compressions: list[ColumnCompression] = []
        measurements: list[Measurement] = []
        oneway_counts: list[np.ndarray] = []  # private: used only by the mechanisms
        merged_obs: list[list[tuple[np.ndarray, float]]] = []  # noisy counts of merged values
        task = progress.start("measure", "measuring 1-way marginals", total=d, unit="columns")
        for j, counts in enumerate(data.marginals([(j,) for j in range(d)])):
            sigma1 = split.oneway_sigma[j]
            counts = counts.astype(np.int64)
            oneway_counts.append(counts)
            noisy = accountant.measure_gaussian(
                counts, sigma=sigma1, l2_sensitivity=1.0, query=f"pgm: 1-way marginal of {names[j]}"
            )
            comp = (
                ColumnCompression.from_noisy(noisy, sigma1)
                if self.options.compress and not any(j in c for c in zero_sets)
                else ColumnCompression.identity(counts.size)
            )
            values, sig = comp.compress_measurement(noisy, sigma1)
            merged_obs.append([(noisy[comp.merged].astype(np.float64), sigma1)] if comp.compressed else [])
            compressions.append(comp)
            measurements.append(Measurement((j,), values, sig, query=f"1-way {names[j]}"))
            task.advance()
        task.finish()
        sizes = tuple(c.size for c in compressions)
        model_data = data.recoded(
            [c.forward for c in compressions], [_sized(domains[j], sizes[j]) for j in range(d)]
        )

        estimator = MirrorDescentEstimator(sizes, zeros=zero_sets)
        model = estimator.fit(measurements, iters=self.options.iters)
        timings["oneway_s"] = time.perf_counter() - t0

        # -- 2. adaptive rounds --------------------------------------------------------------
        cands = [r for r in weights if _cells(r, sizes) <= self.options.max_model_size]
        cand_w = np.array([weights[r] for r in cands], dtype=np.float64)
        member = np.zeros((len(cands), d), dtype=bool)
        for i, r in enumerate(cands):
            member[i, list(r)] = True
        # Exact data marginals, private: used only by the mechanisms. Counted in as few passes
        # as the backend can (all candidates at once when they fit in memory), never one pass
        # per candidate and round.
        data_answers: dict[Clique, np.ndarray] = {(j,): oneway_counts[j] for j in range(d)}
        if split.rounds_rho > 0:
            _count_missing(model_data, cands, data_answers, sizes, limit=PREFETCH_CELLS)
        records: list[RoundRecord] = []
        task = progress.start("measure", "adaptive rounds: select and measure marginals",
                              total=split.rounds, unit="rounds")
        if cands and split.rounds_rho > 0:
            sigma, eps = split.sigma, split.epsilon
            last = False
            while not last:
                t_round = time.perf_counter()
                spent = accountant.spent_rho - start_rho
                left = budget - spent
                cost = gaussian_rho(sigma) + exponential_rho(eps)
                if left < 2.0 * cost:
                    final = left * (1.0 - 1e-9)
                    sigma = gaussian_sigma((1 - SELECTION_SHARE) * final)
                    eps = exponential_epsilon(SELECTION_SHARE * final)
                    cost = gaussian_rho(sigma) + exponential_rho(eps)
                    last = True
                limit = self.options.max_model_size * min(1.0, (spent + cost) / budget)
                eligible, n_scored = self._eligible(
                    member, model, measurements, sizes, limit, cands, accountant.rng
                )
                if eligible.size == 0:
                    break
                _count_missing(model_data, [cands[i] for i in eligible], data_answers, sizes)
                answers = [
                    self._model_answer(model, cands[i], compressions, merged_obs) for i in eligible
                ]
                score = np.array(
                    [
                        cand_w[i]
                        * (
                            float(np.abs(answers[k] - data_answers[cands[i]]).sum())
                            - expected_noise_l1(sigma, self._free_cells(cands[i], sizes))
                        )
                        for k, i in enumerate(eligible)
                    ]
                )
                choice = accountant.select_exponential(
                    score,
                    epsilon=eps,
                    sensitivity=float(cand_w[eligible].max()),
                    query="pgm: select worst-approximated marginal (AIM score)",
                )
                r = cands[eligible[choice]]
                label = tuple(names[v] for v in r)
                noisy = accountant.measure_gaussian(
                    data_answers[r].astype(np.int64).ravel(),
                    sigma=sigma,
                    l2_sensitivity=1.0,
                    query=(
                        f"pgm: 1-way marginal of {label[0]} again (full resolution)"
                        if len(r) == 1
                        else "pgm: marginal of " + " x ".join(label)
                    ),
                )
                before = answers[choice]
                if len(r) == 1:  # full resolution: the kept cells and the bucket's members
                    comp = compressions[r[0]]
                    values, sig = comp.compress_measurement(noisy, sigma)
                    measurements.append(Measurement(r, values, sig, query=label[0]))
                    if comp.compressed:
                        merged_obs[r[0]].append((noisy[comp.merged].astype(np.float64), sigma))
                else:
                    measurements.append(
                        Measurement(r, noisy.reshape(before.shape), sigma, query=" x ".join(label))
                    )
                model = estimator.fit(measurements, iters=self.options.iters)
                after = self._model_answer(model, r, compressions, merged_obs)
                moved = float(np.abs(after - before).sum())
                anneal = moved <= expected_noise_l1(sigma, self._free_cells(r, sizes))
                records.append(
                    RoundRecord(
                        label, sigma, eps, cost, anneal, int(eligible.size),
                        model.tree.total_size, n_scored, time.perf_counter() - t_round,
                    )
                )  # fmt: skip
                task.advance()
                if anneal and not last:
                    sigma /= 2.0
                    eps *= 2.0
        timings["rounds_s"] = time.perf_counter() - t0 - timings["oneway_s"]

        task.finish()

        # -- 3. final estimation -------------------------------------------------------------
        task = progress.start("estimate", "final estimation of the graphical model",
                              total=self.options.final_iters, unit="steps")
        t_final = time.perf_counter()
        model = estimator.fit(measurements, iters=self.options.final_iters,
                              on_step=lambda: task.advance())
        if self.options.compress and self.refine_buckets:
            compressions = [
                _pooled(comp, merged_obs[j]).refined(float(model.project((j,))[-1]))
                if comp.compressed
                else comp
                for j, comp in enumerate(compressions)
            ]
        timings["final_fit_s"] = time.perf_counter() - t_final
        task.finish()
        timings["fit_s"] = time.perf_counter() - t0
        self.compression_ = compressions
        self.model_ = model
        self.total_ = float(model.total)
        self.measurements_ = measurements
        self.rounds_ = records
        self.timings_ = timings
        self.diagnostics_ = self._diagnostics(
            names, budget, accountant.spent_rho - start_rho, estimator
        )
        return self

    # ------------------------------------------------------------------------------------
    def _known_zeros(self, domains: Sequence[ColumnDomain]) -> dict[tuple[int, ...], np.ndarray]:
        """Known-zero table per column set spanned by the structural zeros (public)."""
        names = [d.name for d in domains]
        sizes = [d.size for d in domains]
        tables = {}
        for c in zero_cliques(self.structural_zeros, names):
            table = zero_table(self.structural_zeros, c, names, sizes)
            assert table is not None
            tables[c] = table
        self.zero_tables_ = tables
        self._free_cache: dict = {}
        return tables

    def _free_cells(self, r: Clique, sizes: Sequence[int]) -> int:
        """Cells of the marginal on ``r`` that are not known zeros: the model discards the
        noise on known-zero cells, so AIM's expected-noise term counts only the free ones
        (else a marginal spanning a hierarchy looks too noisy to be worth measuring)."""
        cells = int(np.prod([sizes[v] for v in r], dtype=np.int64))
        if not self.zero_tables_ or len(r) == 1:
            return cells
        key = ("free", r)
        if key not in self._free_cache:
            forbidden = np.zeros([sizes[v] for v in r], dtype=bool)
            for c, table in self.zero_tables_.items():
                if set(c) <= set(r):
                    shape = [sizes[v] if v in c else 1 for v in r]
                    forbidden |= table.reshape(shape)
            self._free_cache[key] = cells - int(forbidden.sum())
        return self._free_cache[key]

    def sample(self, n_records: int, rng: RandomSource) -> EncodedTable:
        """``n_records`` synthetic records over the training table's public domains.

        No record holds a structural zero: the model gives them probability 0. A record that
        float round-off put there anyway is replaced by a fresh draw (never seen in practice;
        the loop is the guarantee, not the mechanism)."""
        if self.model_ is None:
            raise NotFittedError("fit the pgm synthesizer before sampling")
        n = int(n_records)
        if n < 0:
            raise ValueError("n_records must be non-negative")
        codes = self._draw(n, rng)
        if not self.structural_zeros:
            return EncodedTable(codes, self.domains_)
        names = [d.name for d in self.domains_]
        bad = np.flatnonzero(violations(self.structural_zeros, codes, names))
        for _ in range(8):
            if bad.size == 0:
                break
            extra = self._draw(2 * bad.size + 16, rng)
            extra = extra[~violations(self.structural_zeros, extra, names)]
            take = min(bad.size, extra.shape[0])
            codes[bad[:take]] = extra[:take]
            bad = bad[take:]
        if bad.size:
            raise SynthesisError("the model could not draw records outside the declared "
                                 "impossible combinations")
        return EncodedTable(codes, self.domains_)

    def _draw(self, n: int, rng: RandomSource) -> np.ndarray:
        """``n`` records' codes from the fitted model."""
        assert self.model_ is not None
        model_codes = sample_records(self.model_.marginals, n, rng, balanced=self.options.balanced)
        d = len(self.domains_)
        model_sizes = [c.size for c in self.compression_]
        top = max((dom.size for dom in self.domains_), default=1)
        codes = np.empty((n, d), dtype=np.uint8 if top <= 256 else
                         np.uint16 if top <= 65536 else np.int64)
        for j in range(d):
            # Balanced over the record's other model columns, random order of significance.
            others = [v for v in rng.permutation(d).tolist() if v != j]
            comp = self.compression_[j]
            keys = ([model_codes[:, v] for v in others]
                    if self.options.balanced and comp.compressed else None)
            codes[:, j] = comp.expand(model_codes[:, j], rng, keys,
                                      [model_sizes[v] for v in others])
        return codes

    # ------------------------------------------------------------------------------------
    def _resolve_workload(self, names: Sequence[str]) -> list[Clique]:
        if self.options.workload is None:
            return default_workload(len(names), 3)
        index = {n: j for j, n in enumerate(names)}
        out = []
        for s in self.options.workload:
            idx = set()
            for c in s:
                if isinstance(c, (int, np.integer)):
                    if not 0 <= int(c) < len(names):
                        raise ConfigError(f"column index {int(c)} out of range", key="workload")
                    idx.add(int(c))
                elif c in index:
                    idx.add(index[c])
                else:
                    raise ConfigError(f"no column named {c!r}", key="workload")
            if idx:
                out.append(tuple(sorted(idx)))
        if not out:
            raise ConfigError("names no column set", key="workload")
        return out

    def _model_answer(
        self,
        model: GraphicalModel,
        r: Clique,
        compressions: Sequence[ColumnCompression],
        merged_obs: Sequence[Sequence[tuple[np.ndarray, float]]],
    ) -> np.ndarray:
        """The model's counts on ``r`` in the space ``r`` is measured in (public: model only).

        Sets of two or more columns are measured over model codes. A single column is
        measured at full resolution, so the bucket's count is spread over its members as the
        release would spread it (pooled noisy counts projected onto the bucket's estimate).
        """
        counts = model.project(r)
        if len(r) > 1 or not compressions[r[0]].compressed:
            return counts
        comp = _pooled(compressions[r[0]], merged_obs[r[0]])
        full = np.zeros(comp.forward.size, dtype=np.float64)
        full[comp.kept] = counts[:-1]
        full[comp.merged] = comp.refined(float(counts[-1])).merged_probs * float(counts[-1])
        return full

    def _eligible(
        self,
        member: np.ndarray,
        model: GraphicalModel,
        measured: Sequence[Measurement],
        sizes: tuple[int, ...],
        limit: float,
        cands: list[Clique],
        rng: RandomSource,
    ) -> tuple[np.ndarray, int]:
        """Candidates to score this round, and how many of them lie outside the model.

        Inside a maximal clique: always (free to add, cheap to project). Outside: at most
        ``max_candidates`` drawn at random (public randomness), kept if adding them keeps the
        junction tree under ``limit``. (A set over ``max_model_size`` now is not dropped for
        good: the min-fill size is not monotone in the measured graph, and on NIST dropping
        such sets changed which sets fit later.)
        """
        tree = model.tree
        in_clique = np.zeros((len(tree.cliques), member.shape[1]), dtype=bool)
        for k, c in enumerate(tree.cliques):
            in_clique[k, list(c)] = True
        outside_count = member.astype(np.int32) @ (~in_clique).T.astype(np.int32)  # (m, k)
        inside = np.any(outside_count == 0, axis=1)
        test = np.flatnonzero(~inside)
        if self.options.max_candidates is not None and test.size > self.options.max_candidates:
            pick = rng.permutation(test.size)[: self.options.max_candidates]
            test = np.sort(test[pick])
        ok = test
        if test.size:
            base = sorted({m.clique for m in measured} | set(self.zero_tables_))
            totals = triangulated_sizes(sizes, base, [cands[i] for i in test],
                                        limit=limit)
            ok = test[totals <= limit]
        return np.union1d(np.flatnonzero(inside), ok).astype(np.int64), int(test.size)

    def _diagnostics(
        self, names: Sequence[str], budget: float, spent: float, estimator: MirrorDescentEstimator
    ) -> dict[str, Any]:
        """JSON-ready public facts about the fit: DP outputs, public inputs, timings."""
        model = self.model_
        assert model is not None and self.split_ is not None
        split = self.split_
        return {
            "rho": float(budget),
            "rho_spent": float(spent),
            "estimated_records": float(model.total),
            "knobs": {
                **options_dict(self.options),
                "workload": "all 3-way sets" if self.options.workload is None
                else [list(map(str, s)) for s in self.options.workload],
            },
            "budget_split": _plan_rows(split, len(names)),
            "compression": {
                names[j]: {"kept": int(c.kept.size), "merged": int(c.merged.size)}
                for j, c in enumerate(self.compression_)
                if c.compressed
            },
            "rounds": [
                {
                    "round": k + 1,
                    "columns": list(r.clique),
                    "sigma": float(r.sigma),
                    "selection_epsilon": float(r.epsilon),
                    "rho": float(r.rho),
                    "annealed": bool(r.annealed),
                    "eligible_candidates": int(r.n_eligible),
                    "scored_outside_model": int(r.n_scored),
                    "model_size": int(r.model_size),
                    "seconds": round(float(r.seconds), 3),
                }
                for k, r in enumerate(self.rounds_)
            ],
            "model": {
                "cliques": [[names[v] for v in c] for c in model.tree.cliques],
                "total_size": int(model.tree.total_size),
                "estimation_iterations": int(estimator.iterations),
                "final_loss": float(estimator.last_loss),
            },
            "timings": {k: round(float(v), 3) for k, v in self.timings_.items()},
            "known_zeros": {
                "column_sets": [[names[v] for v in c] for c in self.zero_tables_],
                "cells": int(sum(int(t.sum()) for t in self.zero_tables_.values())),
                "note": "declared impossible combinations: probability 0 in the model, columns "
                        "not compressed; public structure, no budget",
            },
        }


def _plan_rows(split: BudgetSplit, d: int) -> list[dict]:
    sig = split.oneway_sigma
    rows: list[dict] = [
        {
            "step": "1-way marginals",
            "rho": split.oneway_rho,
            "sigma": float(max(sig)) if sig else float("nan"),
            "measurements": d,
            "note": (
                (f"sigma {min(sig):.3g} to {max(sig):.3g}; " if min(sig) != max(sig) else "")
                + "values under 3 sigma merged"
            ),
        }
    ]
    if split.rounds_rho > 0:
        rows.append(
            {
                "step": "adaptive rounds (selection + measurement)",
                "rho": split.rounds_rho,
                "sigma": split.sigma,
                "measurements": split.rounds,
                "note": f"initial sigma, halves on annealing; selection eps {split.epsilon:.3g}",
            }
        )
    return rows


def _pooled(
    comp: ColumnCompression, observations: Sequence[tuple[np.ndarray, float]]
) -> ColumnCompression:
    """``comp`` with the bucket members' noisy counts pooled by inverse variance.

    Every full-resolution 1-way measurement of the column observes the merged values too;
    their inverse-variance weighted mean is the least-variance unbiased estimate
    (post-processing of DP outputs).
    """
    if not comp.compressed or not observations:
        return comp
    weights = np.array([1.0 / s**2 for _, s in observations])
    pooled = sum(w * y for w, (y, _) in zip(weights, observations, strict=True)) / weights.sum()
    return replace(comp, merged_noisy=np.asarray(pooled, dtype=np.float64))


def _count_missing(
    data: CountingBackend, sets: Sequence[Clique], answers: dict[Clique, np.ndarray],
    sizes: Sequence[int], *, limit: float | None = None,
) -> None:
    """Add the exact marginals of the ``sets`` not yet in ``answers``, in one backend call
    (or, with ``limit``, as many as fit in ``limit`` cells; the rest are counted later)."""
    todo = [r for r in dict.fromkeys(sets) if r not in answers]
    if limit is not None:
        total = 0.0
        for k, r in enumerate(todo):
            total += _cells(r, sizes)
            if total > limit:
                todo = todo[:k]
                break
    if todo:
        answers.update(zip(todo, data.marginals(todo), strict=True))


def _cells(clique: Clique, sizes: Sequence[int]) -> float:
    return float(np.prod([sizes[v] for v in clique], dtype=np.float64))


def _sized(domain: ColumnDomain, size: int) -> ColumnDomain:
    """A stand-in domain with ``size`` codes for counting compressed codes (never released)."""
    return ColumnDomain(domain.name, tuple(str(i) for i in range(size)), allows_missing=False)
