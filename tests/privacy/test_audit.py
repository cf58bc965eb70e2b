"""Empirical privacy audit of the counting mechanism (Gaussian, sensitivity 1).

Neighbouring datasets hold n and n+1 records with the property; the count is measured through
``Accountant.measure_gaussian`` many times (one vectorised call per dataset, same code path). For
a threshold event S = {output > T}, (ε, δ)-DP implies P1(S) <= e^ε P0(S) + δ, so
``log((p1_lower − δ) / p0_upper)`` with Clopper–Pearson bounds is a lower bound on ε (at 95%
confidence overall, Bonferroni over the thresholds). The honest mechanism must stay below the
claimed ε; a broken one (neighbours differ by 4, noise calibrated for 1) must be caught.
"""

from __future__ import annotations

import math

import numpy as np

from audit_stats import clopper_pearson
from ptsynth.privacy import Accountant, seeded_random

DRAWS = 200_000
EPS, DELTA = 1.0, 1e-5
N_RECORDS = 1_000


def audit_lower_bound(shift: int, seed: int) -> tuple[float, float]:
    """(empirical ε lower bound, claimed ε) for neighbours whose true counts differ by ``shift``."""
    acc = Accountant(EPS, DELTA, rng=seeded_random(seed), release_id="audit")
    sigma = acc.sigma_for(acc.target_rho / 2, 1.0)  # two measurements share the budget
    d0 = np.full(DRAWS, N_RECORDS, dtype=np.int64)
    d1 = d0 + shift
    out0 = acc.measure_gaussian(d0, sigma=sigma, l2_sensitivity=1.0, query="count, dataset D")
    out1 = acc.measure_gaussian(d1, sigma=sigma, l2_sensitivity=1.0, query="count, dataset D'")
    claimed = acc.entries[0].epsilon  # each measurement's own ε at δ
    thresholds = [N_RECORDS + shift + k * sigma for k in (0.0, 1.0, 2.0, 3.0)]
    alpha = 0.05 / len(thresholds)
    best = 0.0
    for t in thresholds:
        k0, k1 = int((out0 > t).sum()), int((out1 > t).sum())
        p0_hi = clopper_pearson(k0, DRAWS, alpha)[1]
        p1_lo = clopper_pearson(k1, DRAWS, alpha)[0]
        if p1_lo > DELTA:
            best = max(best, math.log((p1_lo - DELTA) / p0_hi))
    return best, claimed


def test_honest_mechanism_passes_audit() -> None:
    lb, claimed = audit_lower_bound(shift=1, seed=1)
    assert 0 < lb < claimed


def test_broken_mechanism_is_caught() -> None:
    lb, claimed = audit_lower_bound(shift=4, seed=2)  # sensitivity understated 4x
    assert lb > claimed
