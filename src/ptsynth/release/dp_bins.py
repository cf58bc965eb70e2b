r"""DP bin edges for numeric columns whose public edges are unknown (``bins = "dp-quantiles"``).

Why: bin edges are part of the public domain, and taking them from the data (its minimum, its
quartiles) publishes facts about individual records for free: the oldest person's age, say. When
no public standard gives the edges, a release can *measure* them with DP and then publish them.
This module is that step of :func:`ptsynth.release.pipeline.release`; it runs right after the
records are read, before anything else is measured, so everything after it sees an ordinary
schema with public edges.

What is measured
----------------
For a column with ``count = N`` bins over the public range ``[lo, hi)`` and a public candidate
grid ``lo = g_0 < g_1 < … < g_G = hi`` (:class:`~ptsynth.schema.DPBins`), the ``N − 1`` interior
edges are the DP ``k/N``-quantiles (``k = 1..N−1``) of the column's values, chosen among the
interior grid points ``g_1 … g_{G−1}``. The records are read once, through the ingest seam,
with each DP-bins column binned by its fine grid (:func:`read_schema`: one cell per grid step,
validated like any column, a person's rows merged into one record; ``out_of_range`` applies), so
no raw value is held, only grid codes. The mechanism sees only the column's histogram over the
grid (counted by a :class:`~ptsynth.counting.CountingBackend`); afterwards the grid codes are
recoded onto the chosen edges (exact, since edges are grid points). Reading everything first
means a bad record is reported before any budget is spent. A person's rows must agree at the
grid's resolution (the merge rule of single-valued columns).

Mechanism: the exponential mechanism per quantile (Smith 2011; the "quantile over a public
candidate set" of OpenDP and Tumult), with utility

    u_q(c) = −| #{i : x_i < c} − q·n |,   n = number of records with a value,

over the candidates ``c = g_1 … g_{G−1}``. *Sensitivity*: adding one person (unbounded
neighbours) raises n by 1 and ``#{x_i < c}`` by 1 or 0, so ``#{x_i < c} − q·n`` moves by
``1 − q`` or ``−q``, and ``u_q(c)`` by at most ``max(q, 1 − q) ≤ 1`` for every c (removal: the
same with signs flipped; a person without a value changes nothing). Each quantile is one call of
:meth:`~ptsynth.privacy.Accountant.select_exponential` (one ledger entry) with
``ε_q = √(8 ρ_q)``, costing ``ρ_q = ε_q²/8`` (bounded range, Cesar & Rogers 2021). The budget is
``[release] dp_bins_share`` of the release's ρ, split equally over the DP-bins columns and, within
a column, over its ``N − 1`` quantiles; :func:`plan_dp_bins` computes it from public inputs only,
so ``ptsynth release --plan`` equals the spend.

Why this mechanism and not a noisy histogram whose cumulative sums give every quantile at once:
the histogram's noise accumulates along the cumulative sum, so a quantile's rank error grows
like ``σ √(cells below it)`` (hundreds of grid cells ⇒ tens of σ), while the exponential
mechanism's rank error grows only with ``log(G) / ε_q``: at the small shares this step gets, it
is the more accurate choice for the handful of edges a schema needs. (Joint or recursive
quantile mechanisms would share the budget better for many bins; a schema rarely needs more than
ten.)

Post-processing (free): the chosen grid points are sorted and made strictly increasing on the
grid (so there are always exactly ``count`` bins and the plan's domain sizes hold), then each edge
is moved to the roundest grid point within 10% of its smaller adjacent bin width (``30`` rather
than ``31``, ``25`` rather than ``24``, ``25000`` rather than ``23400``), keeping the order. 10%
keeps the rounding's cost small next to the mechanism's error (``benchmarks/dp_bins.py``). Grid points are round decimals by
construction, so no float artefact (``0.30000000000000004``) reaches a label. The outer edges are
the public ``lo`` and ``hi``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from ptsynth.counting import NumpyBackend
from ptsynth.privacy.zcdp import exponential_epsilon
from ptsynth.progress import SILENT, ProgressReporter
from ptsynth.schema import Schema, bin_labels
from ptsynth.table import EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.config import ReleaseConfig
    from ptsynth.privacy import Accountant

#: An edge moves to a rounder grid point at most this share of its adjacent bin widths.
ROUNDING_TOLERANCE = 0.1


@dataclass(frozen=True)
class ColumnBinsPlan:
    """The budget of one DP-bins column, from public inputs only."""

    column: str
    count: int
    candidates: int
    rho: float
    rho_per_quantile: float
    epsilon_per_quantile: float
    grid: str

    @property
    def quantiles(self) -> tuple[float, ...]:
        return tuple(k / self.count for k in range(1, self.count))

    def row(self) -> dict[str, Any]:
        """One ``--plan`` row."""
        return {
            "step": f"DP bin edges of {self.column}",
            "rho": self.rho,
            "measurements": self.count - 1,
            "epsilon_per_edge": self.epsilon_per_quantile,
            "candidates": self.candidates,
            "note": f"exponential mechanism per {self.count}-quantile over {self.grid}",
        }


def plan_dp_bins(schema: Schema, *, rho: float, share: float) -> list[ColumnBinsPlan]:
    """The DP-bins budget per column: ``share`` of ``rho``, equal per column and per edge."""
    cols = schema.dp_bin_columns
    if not cols:
        return []
    per_column = share * float(rho) / len(cols)
    out = []
    for c in cols:
        dp = c.dp_bins
        assert dp is not None
        per_q = per_column / (dp.count - 1)
        out.append(ColumnBinsPlan(
            column=c.name, count=dp.count, candidates=len(dp.points()) - 2, rho=per_column,
            rho_per_quantile=per_q, epsilon_per_quantile=exponential_epsilon(per_q),
            grid=dp.grid_text(),
        ))
    return out


def planned_rho(schema: Schema, *, rho: float, share: float) -> float:
    """Total ρ of the DP-bins step (0 when no column asks for DP bins)."""
    return float(sum(p.rho for p in plan_dp_bins(schema, rho=rho, share=share)))


# -- the mechanism ------------------------------------------------------------------------------
def quantile_scores(histogram: np.ndarray, q: float) -> np.ndarray:
    """``u_q(g_i) = −|#{x < g_i} − q n|`` for the interior grid points ``i = 1..G−1``.

    ``histogram[i]`` counts the values in ``[g_i, g_{i+1})`` (G cells)."""
    h = np.asarray(histogram, dtype=np.int64)
    below = np.cumsum(h)[:-1]  # #{x < g_i}, i = 1..G-1
    return -np.abs(below - q * float(h.sum()))


def dp_quantile_indices(histogram: np.ndarray, plan: ColumnBinsPlan, accountant: Accountant,
                        *, describe: str) -> list[int]:
    """The grid indices (1..G−1) the exponential mechanism picks, one ledger entry per quantile,
    sorted (post-processing). ``describe`` names the column and grid in the ledger."""
    picks = []
    for q in plan.quantiles:
        sens = max(q, 1.0 - q)
        choice = accountant.select_exponential(
            quantile_scores(histogram, q),
            epsilon=plan.epsilon_per_quantile,
            sensitivity=sens,
            query=(
                f"dp bin edges of {plan.column!r}: DP {q:.4g}-quantile (exponential mechanism "
                f"over the {plan.candidates} interior points of the public candidate grid, "
                f"{describe}; utility "
                f"-|#{{x < c}} - q*n|, sensitivity {sens:.4g})"
            ),
        )
        picks.append(int(choice) + 1)
    return sorted(picks)


def strictly_increasing(indices: list[int], n_points: int) -> list[int]:
    """Sorted grid indices moved the least so they are distinct interior points (1..n−2)."""
    out = list(indices)
    for k in range(len(out)):
        out[k] = max(out[k], (out[k - 1] + 1) if k else 1)
    for k in range(len(out) - 1, -1, -1):
        out[k] = min(out[k], (out[k + 1] - 1) if k + 1 < len(out) else n_points - 2)
    if out and (out[0] < 1 or any(b <= a for a, b in zip(out, out[1:], strict=False))):
        raise ValueError("too few grid points for the number of edges")
    return out


def roundness(value: float) -> tuple[float, bool]:
    """How round a number looks: (exponent of the largest power of ten dividing it, whether
    its last significant digit is 5). Larger is rounder; 0 is the roundest."""
    d = Decimal(repr(float(value))).normalize()
    if d == 0:
        return (float("inf"), False)
    sign, digits, exp = d.as_tuple()
    assert isinstance(exp, int)
    return (float(exp), digits[-1] == 5)


def round_edges(points: tuple[float, ...], indices: list[int],
                tolerance: float = ROUNDING_TOLERANCE) -> list[int]:
    """Each interior edge moved to the roundest grid point within ``tolerance`` times its
    smaller adjacent bin width, keeping the edges strictly increasing (post-processing)."""
    out = list(indices)
    pts = np.asarray(points)
    for k, i in enumerate(out):
        left = out[k - 1] if k else 0
        right = out[k + 1] if k + 1 < len(out) else len(points) - 1
        width = min(pts[i] - pts[left], pts[right] - pts[i])
        lo = int(np.searchsorted(pts, pts[i] - tolerance * width, side="left"))
        hi = int(np.searchsorted(pts, pts[i] + tolerance * width, side="right")) - 1
        cands = range(max(lo, left + 1), min(hi, right - 1) + 1)
        out[k] = max(cands, key=lambda j: (roundness(points[j]), -abs(pts[j] - pts[i]), -j))
    return out


# -- the pipeline step ----------------------------------------------------------------------------
def read_schema(schema: Schema) -> Schema:
    """The schema records are read with: DP-bins columns binned by their whole public
    candidate grid (so the values are validated, and kept only as grid codes)."""
    return schema.with_candidate_grids() if schema.dp_bin_columns else schema


def resolve_dp_bins(
    cfg: ReleaseConfig, table: EncodedTable, accountant: Accountant,
    progress: ProgressReporter = SILENT,
) -> tuple[ReleaseConfig, EncodedTable, dict[str, Any] | None]:
    """Measure the edges of every ``bins = "dp-quantiles"`` column of ``table`` (read with
    :func:`read_schema`) and return the config with the *resolved* schema (public DP edges),
    the table recoded onto those edges, and a public summary (``None``: nothing to do).

    The budget is checked before the histograms are taken; each edge is one exponential
    mechanism over the column's histogram on the grid (see the module docstring). The edges
    are grid points, so recoding a grid code to its bin is exact (post-processing).
    """
    from dataclasses import replace

    plans = plan_dp_bins(cfg.schema, rho=accountant.target_rho, share=cfg.release.dp_bins_share)
    if not plans:
        return cfg, table, None
    accountant.check(sum(p.rho for p in plans), "dp bin edges")  # refuse before measuring
    with progress.task("bins", "measuring DP bin edges", total=len(plans), unit="columns") as task:
        histograms = NumpyBackend(table).marginals([(table.index_of(p.column),) for p in plans])
        edges: dict[str, list[float]] = {}
        cuts: dict[str, list[int]] = {}
        summary: dict[str, Any] = {}
        for plan, counts in zip(plans, histograms, strict=True):
            spec = cfg.schema.column(plan.column)
            assert spec.dp_bins is not None
            points = spec.dp_bins.points()
            hist = np.asarray(counts, dtype=np.int64)[: len(points) - 1]  # without missing
            picked = dp_quantile_indices(hist, plan, accountant, describe=spec.dp_bins.grid_text())
            del hist
            cuts[plan.column] = round_edges(points, strictly_increasing(picked, len(points)))
            edges[plan.column] = [points[0], *[points[i] for i in cuts[plan.column]], points[-1]]
            summary[plan.column] = {
                "edges": [float(e) for e in edges[plan.column]],
                "labels": list(bin_labels(edges[plan.column])),
                "dp_grid_points": [float(points[i]) for i in picked],
                "rho": plan.rho,
                "epsilon_per_edge": plan.epsilon_per_quantile,
                "method": spec.dp_bins.describe(),
            }
            task.advance()
    resolved = replace(cfg, schema=cfg.schema.with_bin_edges(edges))
    return resolved, recode_to_bins(table, resolved.schema, cuts), summary


def recode_to_bins(table: EncodedTable, schema: Schema, cuts: dict[str, list[int]]) -> EncodedTable:
    """Grid codes → bin codes of the resolved schema: grid cell ``i`` lies in bin ``b`` when
    ``cut_b <= i < cut_{b+1}`` (cuts: the interior edges' grid indices); missing stays missing."""
    domains = schema.encoded_domains()
    top = max(d.size for d in domains)
    dtype = np.dtype(np.uint8 if top <= 256 else np.uint16 if top <= 65536 else np.int32)
    codes = np.empty(table.codes.shape, dtype=dtype)
    for j, dom in enumerate(table.domains):
        col = table.codes[:, j]
        if dom.name in cuts:
            grid_cells = len(dom.labels)
            lut = np.searchsorted(np.asarray(cuts[dom.name]), np.arange(grid_cells), side="right")
            lut = np.append(lut, len(cuts[dom.name]) + 1)  # the missing code
            codes[:, j] = lut[col]
        else:
            codes[:, j] = col
    out = EncodedTable(codes, domains, summary=table.summary)
    out.validate()
    return out
