"""RandomSource: secure by default, exact uniform integers (no modulo bias), provenance."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ptsynth.privacy import RandomSource, random_source, secure_random, seeded_random


def test_secure_is_default_and_described() -> None:
    r = random_source(None)
    assert r.secure and r.seed is None and "urandom" in r.description
    s = random_source(42)
    assert not s.secure and s.seed == 42 and "NOT FOR RELEASE" in s.description
    assert "42" not in s.description  # the seed never reaches a (public) ledger entry


def test_words_dtype_and_reproducibility() -> None:
    w = secure_random().words(1000)
    assert w.dtype == np.uint64 and w.shape == (1000,)
    assert len(np.unique(w)) == 1000  # 64-bit collisions are (practically) impossible
    np.testing.assert_array_equal(seeded_random(3).words(50), seeded_random(3).words(50))
    assert not np.array_equal(seeded_random(3).words(50), seeded_random(4).words(50))
    assert not np.array_equal(secure_random().words(50), secure_random().words(50))
    assert secure_random().words(0).size == 0


@pytest.mark.parametrize("bound", [3 * 2**30, 3 * 2**61])
def test_integers_have_no_modulo_bias(bound: int) -> None:
    """For these bounds ``word % bound`` puts 3/4 (resp. 1/2) of the mass below a quarter of
    the 2**64 (2**32) range instead of the true 2/3 (1/3); rejection gets it right."""
    n = 200_000
    x = seeded_random(1).integers(bound, n)
    assert x.dtype == np.int64 and x.min() >= 0 and x.max() < bound
    cut = 2**62 if bound > 2**32 else 2**30
    p = cut / bound
    hits = int((x < cut).sum())
    z = abs(hits - n * p) / math.sqrt(n * p * (1 - p))
    assert z < 5
    biased = 0.75 if bound > 2**32 else 0.5
    assert abs(hits / n - biased) > 0.05  # the biased alternative is far away


@pytest.mark.parametrize("bound", [1, 2, 7, 10, 1000])
def test_integers_uniform_small_bounds(bound: int) -> None:
    x = seeded_random(bound).integers(bound, 50_000)
    obs = np.bincount(x, minlength=bound)
    assert obs.size == bound
    if bound > 1:
        assert stats.chisquare(obs).pvalue > 1e-4


def test_integers_array_bounds() -> None:
    b = np.array([1, 2, 3, 2**40, 2**62])
    x = secure_random().integers(np.tile(b, 1000))
    assert np.all(x >= 0) and np.all(x < np.tile(b, 1000))
    with pytest.raises(ValueError):
        secure_random().integers(0, 3)
    with pytest.raises(ValueError):
        secure_random().integers(2**63, 3)


def test_uniform_grid_and_range() -> None:
    u = seeded_random(2).uniform(100_000)
    assert u.dtype == np.float64 and u.min() >= 0 and u.max() < 1
    assert np.all(u * 2.0**53 == np.floor(u * 2.0**53))
    assert stats.kstest(u, "uniform").pvalue > 1e-4
    v = seeded_random(2).uniform_open(1000)
    assert v.min() > 0 and v.max() < 1


def test_permutation_uniform() -> None:
    r = seeded_random(5)
    perms = list(itertools.permutations(range(3)))
    counts = np.zeros(6)
    for _ in range(6000):
        counts[perms.index(tuple(r.permutation(3)))] += 1
    assert stats.chisquare(counts).pvalue > 1e-4


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 2**32))
def test_permutation_is_permutation(n: int, seed: int) -> None:
    p = seeded_random(seed).permutation(n)
    assert p.dtype == np.int64
    np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_choice_weighted() -> None:
    w = np.array([[0.0, 1.0, 3.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    rows = np.tile(w, (20_000, 1))
    x = seeded_random(4).choice_weighted(rows)
    first, second = x[0::2], x[1::2]
    assert set(np.unique(second)) == {0}
    obs = np.bincount(first, minlength=4)
    assert obs[0] == 0 and obs[3] == 0
    assert stats.chisquare(obs[1:3], np.array([0.25, 0.75]) * first.size).pvalue > 1e-4
    with pytest.raises(ValueError):
        seeded_random(0).choice_weighted(np.array([[0.0, 0.0]]))
    with pytest.raises(ValueError):
        seeded_random(0).choice_weighted(np.array([[-1.0, 2.0]]))


@pytest.mark.parametrize("bad", [-1, 1.5, "x", True])
def test_bad_seed(bad) -> None:
    with pytest.raises((ValueError, TypeError)):
        RandomSource(bad)
