"""AIM-style candidate sets, their workload weights, and the "worst approximated" score.

Why AIM's score: a candidate is worth measuring when the current model's answer on it is far
from the data's *by more than the noise we would add measuring it* (McKenna et al. 2022,
"AIM"). The score ``w_r * (||M_r(model) - M_r(data)||_1 - sqrt(2/pi) * sigma * cells_r)`` has
L1 sensitivity ``w_r`` (one record moves one cell of M_r(data) by one), so the exponential
mechanism runs with sensitivity ``max_r w_r``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

import numpy as np

from ptsynth.synth.graphical.junction_tree import Clique


def default_workload(n_columns: int, order: int = 3) -> list[Clique]:
    """All column sets of size ``min(order, n_columns)``."""
    k = min(order, n_columns)
    return [tuple(c) for c in combinations(range(n_columns), k)]


def candidate_weights(workload: Iterable[Sequence[int]], degree: int) -> dict[Clique, float]:
    """Downward closure of the workload up to ``degree`` columns, with AIM's weights.

    ``w_r = sum over workload sets s of |r ∩ s|``: sets that overlap much of the workload
    matter more. 1-way sets are included (they are measured up front anyway).
    Since ``|r ∩ s| = sum_{v in r} [v in s]``, ``w_r = sum_{v in r} c_v`` where ``c_v`` counts
    the workload sets holding ``v``: linear in the closure, not closure x workload (on 32
    columns the pairwise sum took 30 s).
    """
    work = [tuple(sorted(set(int(v) for v in s))) for s in workload]
    closure: set[Clique] = set()
    counts: dict[int, int] = {}
    for s in work:
        for v in s:
            counts[v] = counts.get(v, 0) + 1
        for k in range(1, min(degree, len(s)) + 1):
            closure.update(combinations(s, k))
    return {
        r: float(sum(counts[v] for v in r)) for r in sorted(closure, key=lambda c: (len(c), c))
    }


def expected_noise_l1(sigma: float, cells: int) -> float:
    """E||Z||_1 for Gaussian noise of std ``sigma`` on ``cells`` cells."""
    return float(np.sqrt(2.0 / np.pi) * sigma * cells)


def scores(
    model_answers: Sequence[np.ndarray],
    data_answers: Sequence[np.ndarray],
    weights: Sequence[float],
    sigma: float,
) -> np.ndarray:
    """AIM quality score of each candidate (higher = measure it)."""
    out = np.empty(len(weights), dtype=np.float64)
    for i, (m, x, w) in enumerate(zip(model_answers, data_answers, weights, strict=True)):
        out[i] = w * (float(np.abs(m - x).sum()) - expected_noise_l1(sigma, x.size))
    return out
