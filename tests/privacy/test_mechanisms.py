"""Exactness of the integer noise samplers: large samples against the true pmf.

Each goodness-of-fit test is shown to be able to fail: the same statistic computed for a sampler
fed a 10% wrong scale must reject.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import logsumexp

from ptsynth.privacy import (
    sample_discrete_gaussian,
    sample_discrete_laplace,
    secure_random,
    seeded_random,
)
from ptsynth.privacy.mechanisms import (
    bernoulli_exp,
    bernoulli_exp_minus_one,
    bernoulli_ratio,
    gaussian_gamma,
    laplace_rational,
    sample_exponential_mechanism,
)

N = 200_000


def dgauss_pmf(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf of N_Z(0, σ²) over [-W, W], W = 40σ + 40, normalised with logsumexp."""
    w = math.ceil(40 * sigma) + 40
    xs = np.arange(-w, w + 1)
    logp = -(xs.astype(float) ** 2) / (2 * sigma * sigma)
    return xs, np.exp(logp - logsumexp(logp))


def dlap_pmf(scale: float) -> tuple[np.ndarray, np.ndarray]:
    w = math.ceil(60 * scale) + 60
    xs = np.arange(-w, w + 1)
    logp = -np.abs(xs).astype(float) / scale
    return xs, np.exp(logp - logsumexp(logp))


def chi2_pvalue(x: np.ndarray, xs: np.ndarray, pmf: np.ndarray, width: int = 1) -> float:
    """Chi-square p-value of sample ``x`` against ``pmf`` on ``xs``: bins of ``width`` values,
    tails merged until every expected count is at least 5."""
    assert x.min() >= xs[0] and x.max() <= xs[-1], "sample outside the reference support"
    obs = np.bincount(x - xs[0], minlength=xs.size).astype(float)
    starts = np.arange(0, xs.size, width)
    obs, exp = np.add.reduceat(obs, starts), np.add.reduceat(pmf, starts) * x.size
    cum = np.cumsum(exp)
    lo = int(np.searchsorted(cum, 5.0))  # first bin where the left lump reaches 5
    hi = int(np.searchsorted(cum, cum[-1] - 5.0))
    obs = np.concatenate([[obs[: lo + 1].sum()], obs[lo + 1 : hi], [obs[hi:].sum()]])
    exp = np.concatenate([[exp[: lo + 1].sum()], exp[lo + 1 : hi], [exp[hi:].sum()]])
    exp *= obs.sum() / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


# ---------------------------------------------------------------------------------------------
# exact Bernoulli building blocks
# ---------------------------------------------------------------------------------------------
def _z(hits: int, n: int, p: float) -> float:
    return abs(hits - n * p) / math.sqrt(n * p * (1 - p)) if 0 < p < 1 else float(hits != n * p)


@pytest.mark.parametrize(("num", "den"), [(0, 7), (1, 7), (3, 7), (7, 7), (1, 1), (5, 2**40)])
def test_bernoulli_exp_matches_exp(num: int, den: int) -> None:
    n = 200_000
    hits = int(bernoulli_exp(np.full(n, num, dtype=np.uint64), den, seeded_random(num + den)).sum())
    assert _z(hits, n, math.exp(-num / den)) < 5


def test_bernoulli_exp_minus_one_and_ratio() -> None:
    rng = seeded_random(11)
    assert _z(int(bernoulli_exp_minus_one(400_000, rng).sum()), 400_000, math.exp(-1)) < 5
    assert _z(int(bernoulli_ratio(np.full(300_000, 2, np.uint64), 7, rng).sum()), 300_000, 2 / 7) < 5
    assert not bernoulli_ratio(np.zeros(1000, np.uint64), 3, rng).any()
    assert bernoulli_ratio(np.full(1000, 3, np.uint64), 3, rng).all()


def test_bernoulli_exp_detects_wrong_rate() -> None:
    """The z-test above must reject a 2% wrong probability."""
    n = 200_000
    hits = int(bernoulli_exp(np.full(n, 3, dtype=np.uint64), 7, seeded_random(3)).sum())
    assert _z(hits, n, math.exp(-3 / 7) * 1.02) > 5


# ---------------------------------------------------------------------------------------------
# discrete Gaussian
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("sigma", "width"), [(0.3, 1), (0.8, 1), (1.0, 1), (3.7, 1), (1000.0, 100)])
def test_discrete_gaussian_matches_pmf_and_wrong_sigma_rejected(sigma: float, width: int) -> None:
    x = sample_discrete_gaussian(N, sigma, seeded_random(int(sigma * 10)))
    assert x.dtype == np.int64 and x.shape == (N,)
    xs, pmf = dgauss_pmf(sigma)
    assert chi2_pvalue(x, xs, pmf, width) > 1e-4
    # the same statistic must reject a sampler whose σ is 10% off
    wrong = sample_discrete_gaussian(N, 1.1 * sigma, seeded_random(int(sigma * 10) + 1))
    assert chi2_pvalue(wrong, xs, pmf, width) < 1e-6


@pytest.mark.parametrize("sigma", [0.3, 0.8, 2.0, 50.0])
def test_discrete_gaussian_mean_and_variance_from_pmf(sigma: float) -> None:
    xs, pmf = dgauss_pmf(sigma)
    var = float((xs.astype(float) ** 2 * pmf).sum())
    mu4 = float((xs.astype(float) ** 4 * pmf).sum())
    if sigma < 1:
        assert var < sigma**2  # the discrete Gaussian's variance is below σ² for small σ
    x = sample_discrete_gaussian(N, sigma, seeded_random(7)).astype(float)
    assert abs(x.mean()) < 5 * math.sqrt(var / N)
    assert abs(x.var() - var) < 5 * math.sqrt((mu4 - var**2) / N)
    # a 10% wrong σ moves the variance far outside that band
    y = sample_discrete_gaussian(N, 1.1 * sigma, seeded_random(8)).astype(float)
    assert abs(y.var() - var) > 5 * math.sqrt((mu4 - var**2) / N)


def test_discrete_gaussian_secure_source() -> None:
    x = sample_discrete_gaussian(N, 2.5, secure_random())
    xs, pmf = dgauss_pmf(2.5)
    assert chi2_pvalue(x, xs, pmf) > 1e-6


def test_gaussian_gamma_float_error_within_documented_bound() -> None:
    """|γ' − γ| <= u (2.01 sqrt(2γ) + 5.03 γ) + tiny, checked against exact rationals."""
    rng = np.random.default_rng(0)
    u = 2.0**-53
    for sigma in [0.3, 0.77, 1.0, 3.3, 123.456, 9999.5, 1e6 + 0.1]:
        t = math.floor(sigma) + 1
        ys = np.unique(np.concatenate([
            np.arange(0, 5), rng.integers(0, int(60 * sigma) + 5, 200),
            [int(sigma * sigma / t)], [int(sigma * sigma / t) + 1],
        ]))
        got = gaussian_gamma(ys, sigma)
        s2 = Fraction(sigma) ** 2
        for y, g in zip(ys.tolist(), got.tolist(), strict=True):
            exact = (Fraction(y) - s2 / t) ** 2 / (2 * s2)
            bound = u * (2.01 * math.sqrt(2 * float(exact)) + 5.03 * float(exact)) + 1e-300
            assert abs(Fraction(g) - exact) <= Fraction(bound) * Fraction(1.001)


# ---------------------------------------------------------------------------------------------
# discrete Laplace
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("scale", "width"), [(0.3, 1), (1.0, 1), (2.5, 1), (300.0, 30)])
def test_discrete_laplace_matches_pmf_and_wrong_scale_rejected(scale: float, width: int) -> None:
    x = sample_discrete_laplace(N, scale, seeded_random(int(scale * 10)))
    xs, pmf = dlap_pmf(scale)
    assert chi2_pvalue(x, xs, pmf, width) > 1e-4
    wrong = sample_discrete_laplace(N, 1.1 * scale, seeded_random(int(scale * 10) + 1))
    assert chi2_pvalue(wrong, xs, pmf, width) < 1e-6


def test_discrete_laplace_moments() -> None:
    scale = 3.0
    a = math.exp(-1 / scale)
    var = 2 * a / (1 - a) ** 2
    x = sample_discrete_laplace(N, scale, seeded_random(5)).astype(float)
    assert abs(x.mean()) < 5 * math.sqrt(var / N)
    assert abs(x.var() / var - 1) < 0.03


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_laplace_rational_never_below_scale(scale: float) -> None:
    t, s = laplace_rational(scale)
    assert Fraction(t, s) >= Fraction(scale)
    assert Fraction(t, s) - Fraction(scale) <= Fraction(scale) * Fraction(1, 2**39)


# ---------------------------------------------------------------------------------------------
# shapes, reproducibility, validation
# ---------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    sigma=st.floats(min_value=0.05, max_value=1e6, allow_nan=False),
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple),
    seed=st.integers(0, 2**32),
)
def test_shapes_dtype_and_seeded_reproducibility(sigma: float, shape: tuple, seed: int) -> None:
    a = sample_discrete_gaussian(shape, sigma, seeded_random(seed))
    b = sample_discrete_gaussian(shape, sigma, seeded_random(seed))
    assert a.shape == shape and a.dtype == np.int64
    np.testing.assert_array_equal(a, b)
    c = sample_discrete_laplace(shape, sigma, seeded_random(seed))
    assert c.shape == shape and c.dtype == np.int64


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), 1e13])
def test_invalid_scales_rejected(bad: float) -> None:
    with pytest.raises(ValueError):
        sample_discrete_gaussian(3, bad, seeded_random(0))
    with pytest.raises(ValueError):
        sample_discrete_laplace(3, bad, seeded_random(0))


def test_exponential_mechanism_distribution() -> None:
    scores = np.array([0.0, 1.0, 2.0, 2.0, -3.0])
    eps, sens = 1.5, 1.0
    p = np.exp(eps * scores / (2 * sens))
    p /= p.sum()
    draws = sample_exponential_mechanism(scores, eps, sens, seeded_random(9), size=100_000)
    obs = np.bincount(draws, minlength=scores.size)
    assert stats.chisquare(obs, p * draws.size).pvalue > 1e-4
    # a mechanism with the wrong ε is rejected by the same test
    wrong = sample_exponential_mechanism(scores, 1.2 * eps, sens, seeded_random(10), size=100_000)
    assert stats.chisquare(np.bincount(wrong, minlength=5), p * 100_000).pvalue < 1e-6
