"""Empirical privacy audit of the whole aggregate release (``measure_aggregates``).

Neighbouring datasets D and D' = D + one person (all three attributes present) are released
many times each with a seeded RandomSource per run, through the full code path: record count,
DP contribution bound, per-length Gaussian measurements, thresholds, consistency capping.

Event. One count alone carries only a small part of the privacy loss (the budget is spread over
every count the person touches), so a one-count threshold event cannot approach the claimed ε.
We use the most powerful threshold event for Gaussian noise instead: the person's counts
(record count, 3 attributes, 3 pairs; missing = 0) summed with weights 1/σ², standardised with
the run's own public σ's; S = {Z ≥ t}. It is a fixed function of the release, so (ε, δ)-DP
implies P'(S) ≤ e^ε P(S) + δ and ``log((p'_lower − δ) / p_upper)`` (Clopper–Pearson, Bonferroni
over the thresholds, 95% overall) is a lower bound on ε. The honest release must stay below the
claimed ε; a broken one (sensitivity understated 4x) must exceed it. The single-count event is
checked as well (it must stay below the claim too).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import ptsynth.aggregates.plan as aggregates
from audit_stats import clopper_pearson
from ptsynth.aggregates import measure_aggregates
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.table import ColumnDomain, EncodedTable

RUNS = 2_000
EPS, DELTA = 1.0, 1e-6
K = 2
TARGET = ((0, 0), (1, 0), (2, 0))
SUBSETS = [(), *[(a,) for a in TARGET], *[(a, b) for i, a in enumerate(TARGET) for b in TARGET[i + 1 :]]]
Z_THRESHOLDS = (1.0, 1.5, 2.0, 2.5)


def neighbours() -> tuple[EncodedTable, EncodedTable]:
    doms = tuple(ColumnDomain(f"c{j}", ("x", "y")) for j in range(3))
    g = np.random.default_rng(0)
    codes = g.integers(0, 2, size=(600, 3))  # every attribute present; many hold TARGET
    d0 = EncodedTable(codes, doms)
    d1 = EncodedTable(np.vstack([codes, [[0, 0, 0]]]), doms)
    return d0, d1


def statistics(table: EncodedTable, truth: np.ndarray, seed0: int) -> tuple[np.ndarray, np.ndarray]:
    """(standardised weighted sum Z, the pair count of TARGET[:2]) over RUNS releases."""
    z = np.empty(RUNS)
    single = np.empty(RUNS)
    for r in range(RUNS):
        acc = Accountant(EPS, DELTA, rng=seeded_random(seed0 + r), release_id="audit")
        agg = measure_aggregates(table, acc, reporting_length=2, k=K)
        sig = [agg.record_count_sigma] + [agg.lengths[len(s) - 1].sigma for s in SUBSETS[1:]]
        w = 1.0 / np.square(np.asarray(sig, dtype=np.float64))
        out = np.array([agg.count(s) or 0 for s in SUBSETS], dtype=np.float64)
        z[r] = float(w @ (out - truth)) / math.sqrt(float(w.sum()))
        single[r] = out[4]
    return z, single


def lower_bound(out0: np.ndarray, out1: np.ndarray, thresholds) -> float:
    alpha = 0.05 / len(thresholds)
    best = 0.0
    for t in thresholds:
        k0, k1 = int((out0 >= t).sum()), int((out1 >= t).sum())
        p0_hi = clopper_pearson(k0, RUNS, alpha)[1]
        p1_lo = clopper_pearson(k1, RUNS, alpha)[0]
        if p1_lo > DELTA:
            best = max(best, math.log((p1_lo - DELTA) / p0_hi))
    return best


def audit(seed: int) -> tuple[float, float, float]:
    """(ε lower bound of the weighted event, of the single-count event, claimed ε)."""
    d0, d1 = neighbours()
    truth = np.array(
        [d0.n_records]
        + [int(np.all([d0.codes[:, c] == v for c, v in s], axis=0).sum()) for s in SUBSETS[1:]],
        dtype=np.float64,
    )
    z0, s0 = statistics(d0, truth, seed)
    z1, s1 = statistics(d1, truth, seed + RUNS)
    sd = float(np.std(s0))
    single_t = [float(np.mean(s0)) + f * sd for f in (1.0, 2.0)]
    claimed = Accountant(EPS, DELTA, rng=seeded_random(0)).epsilon
    return lower_bound(z0, z1, Z_THRESHOLDS), lower_bound(s0, s1, single_t), claimed


@pytest.mark.slow
def test_honest_release_passes_audit() -> None:
    lb, lb_single, claimed = audit(seed=10_000)
    assert lb < claimed and lb_single < claimed
    assert lb > 0  # the audit has power: it sees the person


@pytest.mark.slow
def test_understated_sensitivity_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    honest = aggregates.length_sensitivity
    monkeypatch.setattr(aggregates, "length_sensitivity", lambda m, ell: honest(m, ell) / 4)
    lb, _, claimed = audit(seed=50_000)
    assert lb > claimed
