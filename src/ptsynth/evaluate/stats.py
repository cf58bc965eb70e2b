"""Small statistics and counting helpers shared by the utility and risk evaluations.

Why a module of its own: every metric in :mod:`ptsynth.evaluate` reduces to "count the records
of two tables over the same cells" or "put an interval around a success rate". Doing both one
way (vectorised over integer codes, no Python loop per row) keeps the metrics consistent with
each other and with the peers we check against (SDMetrics, Anonymeter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from statistics import NormalDist

import numpy as np

from ptsynth.counting.keys import cell_key, check_cells

#: Cells counted densely (bincount) up to this product domain size; sparse (np.unique) above.
DENSE_LIMIT = 1 << 22

#: Column kinds whose codes are ordered (KS, correlation, cumulative EMD, |a-b|/range).
ORDERED_KINDS = frozenset({"ordinal", "numeric", "date"})


def figure(value: float | int | None, definition: str, **extra: object) -> dict:
    """One reported number with the name of its definition (see ``DEFINITIONS``)."""
    if isinstance(value, (np.floating, float)):
        value = None if not math.isfinite(float(value)) else float(value)
    elif isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        value = int(value)
    out: dict = {"value": value, "definition": definition}
    out.update(extra)
    return out


def compact_codes(codes: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Codes in the smallest unsigned dtype that holds every domain (for row hashing)."""
    top = max((int(s) for s in sizes), default=1)
    dtype = np.uint8 if top <= 256 else np.uint16 if top <= 65536 else np.uint32
    return np.ascontiguousarray(codes, dtype=dtype)


def row_ids(*blocks: np.ndarray) -> tuple[np.ndarray, ...]:
    """Integer id of each distinct row across several code blocks (same columns, same dtype).

    Rows get an int64 mixed-radix key (radix = largest code + 1 per column) when the product
    fits, else they are compared as raw bytes (a void view), so any number of columns works
    without overflow. Ids number the distinct rows in an unspecified but consistent order.
    """
    stacked = np.ascontiguousarray(np.concatenate(blocks, axis=0))
    radix = (stacked.max(axis=0).astype(np.float64) + 1) if stacked.size else np.ones(0)
    if stacked.shape[1] == 0:
        ids = np.zeros(stacked.shape[0], dtype=np.int64)
    elif float(np.prod(radix)) < 2.0**62:
        # an int64 mixed-radix key sorts several times faster than raw bytes
        key = cell_key([stacked[:, j].astype(np.int64) for j in range(stacked.shape[1])],
                        [int(r) for r in radix])
        _, ids = np.unique(key, return_inverse=True)
        ids = ids.ravel().astype(np.int64)
    else:
        void = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1])))
        _, ids = np.unique(void.ravel(), return_inverse=True)
        ids = ids.ravel().astype(np.int64)
    out, start = [], 0
    for b in blocks:
        out.append(ids[start : start + b.shape[0]])
        start += b.shape[0]
    return tuple(out)


def paired_counts(
    real_cols: Sequence[np.ndarray],
    synth_cols: Sequence[np.ndarray],
    sizes: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of two tables over the cells either of them occupies.

    Returns ``(cells, real_counts, synth_counts)``: ``cells`` are mixed-radix cell indices
    (sorted), the counts are aligned with them. Dense bincount when the product domain is
    small, ``np.unique`` over the observed keys otherwise; no cross join either way.
    """
    n_cells = check_cells(sizes)
    kr = cell_key(real_cols, sizes)
    ks = cell_key(synth_cols, sizes)
    if n_cells <= DENSE_LIMIT:
        cr = np.bincount(kr, minlength=n_cells)
        cs = np.bincount(ks, minlength=n_cells)
        cells = np.flatnonzero((cr > 0) | (cs > 0))
        return cells, cr[cells], cs[cells]
    cells, inv = np.unique(np.concatenate([kr, ks]), return_inverse=True)
    inv = inv.ravel()
    cr = np.bincount(inv[: kr.size], minlength=cells.size)
    cs = np.bincount(inv[kr.size :], minlength=cells.size)
    return cells, cr, cs


def tvd(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Total variation distance ½Σ|p−q| between two count vectors over the same cells."""
    sp, sq = float(np.sum(p_counts)), float(np.sum(q_counts))
    if sp == 0 or sq == 0:
        return 0.0 if sp == sq else 1.0
    # Rounding can put the sum a few ulps above 1 for disjoint supports; the TVD is in [0, 1].
    return min(1.0, 0.5 * float(np.abs(p_counts / sp - q_counts / sq).sum()))


def column_sets(n_columns: int, order: int, max_sets: int, seed: int) -> tuple[list[tuple], int]:
    """All ``order``-subsets of the columns, or ``max_sets`` of them drawn with a fixed seed.

    Returns ``(sets, total)`` where ``total`` is how many subsets exist. Sampling never builds
    the full list when it is huge (rejection sampling of sorted index tuples).
    """
    total = math.comb(n_columns, order)
    if total <= max_sets:
        return list(combinations(range(n_columns), order)), total
    rng = np.random.default_rng([seed, order])
    if total <= 2_000_000:
        every = list(combinations(range(n_columns), order))
        pick = np.sort(rng.choice(total, size=max_sets, replace=False))
        return [every[i] for i in pick], total
    chosen: set[tuple] = set()
    while len(chosen) < max_sets:
        draw = np.sort(np.argsort(rng.random((max_sets, n_columns)), axis=1)[:, :order], axis=1)
        chosen.update(tuple(int(v) for v in row) for row in draw)
    return sorted(chosen)[:max_sets], total


# -- rates with confidence intervals (Anonymeter's definitions) ------------------------------
def wilson(n_success: float, n_total: int, confidence: float = 0.95) -> dict:
    """Wilson score estimate of a Bernoulli rate, as Anonymeter computes it.

    rate = (s + z²/2)/(n + z²), error = z/(n + z²)·√(s(n−s)/n + z²/4); the interval is
    clipped to [0, 1]. Returns value, error, ci, n_success, n.
    """
    if n_total <= 0:
        return {"value": None, "error": None, "ci": [None, None], "n_success": 0, "n": 0}
    z = NormalDist().inv_cdf(0.5 * (1.0 + confidence))
    z2 = z * z
    s = float(n_success)
    denom = n_total + z2
    rate = (s + 0.5 * z2) / denom
    err = (z / denom) * math.sqrt(max(s * (n_total - s) / n_total, 0.0) + 0.25 * z2)
    return {
        "value": rate,
        "error": err,
        "ci": [min(max(rate - err, 0.0), 1.0), min(max(rate + err, 0.0), 1.0)],
        "n_success": s if not float(s).is_integer() else int(s),
        "n": int(n_total),
    }


def residual_risk(attack: dict, control: dict | None) -> dict:
    """Risk = (attack − control)/(1 − control) with propagated error (Anonymeter); clipped.

    Without a control set the risk is the attack rate itself (Anonymeter's convention).
    """
    a, ea = attack["value"], attack["error"]
    if a is None:
        return {"value": None, "ci": [None, None]}
    if control is None or control["value"] is None:
        val, err = a, ea
    else:
        c, ec = control["value"], control["error"]
        if c >= 1.0:
            return {"value": None, "ci": [None, None], "note": "control success is 100%"}
        val = (a - c) / (1.0 - c)
        err = math.sqrt((ea / abs(1 - c)) ** 2 + (ec * (a - 1) / (1 - c) ** 2) ** 2)
    clip = lambda x: min(max(x, 0.0), 1.0)  # noqa: E731
    return {"value": clip(val), "ci": [clip(val - err), clip(val + err)], "unclipped": val}


def quantiles(values: np.ndarray, qs: Sequence[float]) -> list[float | None]:
    """Quantiles (linear interpolation); ``None`` for an empty sample."""
    if values.size == 0:
        return [None for _ in qs]
    return [float(v) for v in np.quantile(values, qs)]
