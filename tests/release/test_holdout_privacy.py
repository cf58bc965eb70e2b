"""Exact privacy loss of the evaluation holdout followed by a measurement.

A holdout keeps persons out of every measurement. Whether that preserves the add/remove-one-person
guarantee depends on how they are chosen, so this test computes the *exact* output distributions
of split + measure on small neighbouring datasets D and D' = D + x and the smallest ε at which
(ε, δ)-DP holds (hockey-stick divergence, both directions):

* the measurement: a two-cell histogram (x's cell A, everyone else's cell B; L2 sensitivity 1
  under add/remove) with discrete Gaussian noise calibrated to the *whole* ε = 1, δ = 1e-6
  budget — the worst case for a holdout, since every count is then as sharp as it gets;
* the Bernoulli holdout the release uses (each person kept out independently with probability f)
  must stay within ε = 1;
* the fixed-size holdout ptsynth 0.1 used (``round(f·n)`` persons kept out) breaks it when adding
  x leaves the measured size unchanged: x then displaces someone, a substitution (the test shows
  it has the power to see that: ε ≈ 1.17).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve
from scipy.stats import binom, hypergeom

from ptsynth.privacy import seeded_random
from ptsynth.privacy.mechanisms import discrete_gaussian_pmf
from ptsynth.privacy.zcdp import gaussian_sigma, rho_from_epsilon_delta
from ptsynth.release.pipeline import split_holdout
from ptsynth.table import ColumnDomain, EncodedTable

EPS, DELTA = 1.0, 1e-6
SIGMA = gaussian_sigma(rho_from_epsilon_delta(EPS, DELTA))
NOISE = discrete_gaussian_pmf(np.arange(-int(40 * SIGMA), int(40 * SIGMA) + 1), SIGMA)


def noisy(exact: np.ndarray) -> np.ndarray:
    """Distribution of (count A + N1, count B + N2) from that of the exact counts."""
    out = fftconvolve(fftconvolve(exact, NOISE[:, None]), NOISE[None, :])
    return np.clip(out, 0.0, None)


def hockey_stick(p: np.ndarray, q: np.ndarray, eps: float) -> float:
    return float(np.maximum(p - np.exp(eps) * q, 0.0).sum())


def exact_epsilon(p: np.ndarray, q: np.ndarray, delta: float = DELTA) -> float:
    """Smallest ε with δ(ε) ≤ delta in both directions (bisection)."""
    lo, hi = 0.0, 5.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if max(hockey_stick(p, q, mid), hockey_stick(q, p, mid)) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def bernoulli_split(n_a: int, n_b: int, f: float) -> np.ndarray:
    """Joint pmf of the measured (count A, count B): each person kept with probability 1 − f."""
    a = binom(n_a, 1 - f).pmf(np.arange(n_a + 1))
    b = binom(n_b, 1 - f).pmf(np.arange(n_b + 1))
    return np.outer(a, b)


def fixed_split(n_a: int, n_b: int, f: float) -> np.ndarray:
    """Joint pmf when exactly round(f·n) persons are kept out (ptsynth 0.1)."""
    n = n_a + n_b
    m = n - round(f * n)
    joint = np.zeros((n_a + 1, n_b + 1))
    a = np.arange(max(0, m - n_b), min(n_a, m) + 1)
    joint[a, m - a] = hypergeom(n, n_a, m).pmf(a)
    return joint


def pad(p: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape)
    out[: p.shape[0], : p.shape[1]] = p
    return out


def loss(split, n: int, n_a: int, f: float) -> float:
    """Exact ε of split + two-cell measurement for D (n_a in A, n − n_a in B) and D + x (x in A)."""
    d = noisy(split(n_a, n - n_a, f))
    d_plus = noisy(split(n_a + 1, n - n_a, f))
    shape = (max(d.shape[0], d_plus.shape[0]), max(d.shape[1], d_plus.shape[1]))
    return exact_epsilon(pad(d, shape), pad(d_plus, shape))


@pytest.mark.parametrize("n", [60, 62, 302])
@pytest.mark.parametrize("n_a", [0, 1, 5])
def test_bernoulli_holdout_keeps_the_claimed_epsilon(n, n_a):
    assert loss(bernoulli_split, n, n_a, 0.2) <= EPS + 1e-9


def test_the_measurement_alone_is_at_its_claim():
    """With no holdout the exact ε is just under the claim (the conversion is nearly tight)."""
    eps = loss(lambda a, b, f: bernoulli_split(a, b, 0.0), 60, 0, 0.0)
    assert 0.8 < eps <= EPS + 1e-9


def test_fixed_size_holdout_breaks_the_claim_the_test_can_see_it():
    n = 302  # adding a person leaves round(0.8 n) unchanged: a substitution
    assert n - round(0.2 * n) == n + 1 - round(0.2 * (n + 1))
    assert loss(fixed_split, n, 0, 0.2) > 1.15


def test_pipeline_split_is_independent_per_person():
    """Each person's draw is a keyed PRF of (record, occurrence index): Bernoulli, and adding a
    person leaves every other person's draw unchanged, whatever order the records are in."""
    doms = (ColumnDomain("c", ("a", "b"), allows_missing=False),)
    base = EncodedTable(np.zeros((1000, 1), dtype=np.int8), doms)
    kept, held = split_holdout(base, 0.2, seeded_random(4))
    assert held is not None and kept.record_count() + held.record_count() == 1000
    assert 140 < held.record_count() < 260  # Binomial(1000, 0.2), not exactly 200
    # adding a person (anywhere) leaves every other person's draw unchanged
    codes = np.zeros((1001, 1), dtype=np.int8)
    codes[::3] = 1
    bigger = EncodedTable(codes, doms)
    smaller = bigger.take(np.arange(1, 1001))
    _, h_small = split_holdout(smaller, 0.2, seeded_random(9))
    _, h_big = split_holdout(bigger.take(np.random.default_rng(0).permutation(1001)), 0.2,
                             seeded_random(9))
    assert h_big.record_count() - h_small.record_count() in (0, 1)
    for value in (0, 1):  # per value, the held-out multiset grows by at most the new record
        a = int((h_small.table.codes == value).sum())
        b = int((h_big.table.codes == value).sum())
        assert b - a in (0, 1)
    whole, none = split_holdout(base, 0.0, seeded_random(1))
    assert none is None and whole.table is base
