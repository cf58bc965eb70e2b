"""zCDP accountant: conversions (CKS 2020), check-then-spend, mechanism costs, entries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ptsynth.errors import BudgetExceededError
from ptsynth.privacy import (
    Accountant,
    delta_from_rho_epsilon,
    epsilon_from_rho_delta,
    rho_from_epsilon_delta,
    secure_random,
    seeded_random,
)

rhos = st.floats(min_value=1e-8, max_value=50.0, allow_nan=False)
deltas = st.floats(min_value=1e-15, max_value=0.1, allow_nan=False)
epsilons = st.floats(min_value=1e-3, max_value=30.0, allow_nan=False)


def brute_epsilon(rho: float, delta: float) -> float:
    """The CKS Cor. 13 formula minimised on a dense grid of α (independent of the library)."""
    a = 1 + np.logspace(-6, 8, 400_001)
    vals = a * rho + (math.log(1 / delta) + (a - 1) * np.log1p(-1 / a) - np.log(a)) / (a - 1)
    return max(0.0, float(vals.min()))


def test_reference_value_eps1_delta1e9() -> None:
    rho = rho_from_epsilon_delta(1.0, 1e-9)
    assert 0.0149 < rho < 0.0151
    assert epsilon_from_rho_delta(rho, 1e-9) <= 1.0
    assert delta_from_rho_epsilon(rho, 1.0) == pytest.approx(1e-9, rel=1e-6)


@pytest.mark.parametrize(("rho", "delta"), [(0.015, 1e-9), (0.5, 1e-6), (1e-4, 1e-10), (5.0, 1e-3)])
def test_epsilon_matches_brute_force(rho: float, delta: float) -> None:
    eps = epsilon_from_rho_delta(rho, delta)
    ref = brute_epsilon(rho, delta)
    assert eps <= ref * (1 + 1e-12)  # the optimiser never does worse than the grid
    assert eps == pytest.approx(ref, rel=1e-6)
    # and is tighter than the classic ρ + 2 sqrt(ρ log 1/δ)
    assert eps <= rho + 2 * math.sqrt(rho * math.log(1 / delta))


@settings(max_examples=60, deadline=None)
@given(epsilons, deltas)
def test_round_trip_epsilon_rho_epsilon(eps: float, delta: float) -> None:
    rho = rho_from_epsilon_delta(eps, delta)
    back = epsilon_from_rho_delta(rho, delta)
    assert back <= eps * (1 + 1e-12)  # never exceeds the target
    assert back == pytest.approx(eps, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(rhos, rhos, deltas)
def test_epsilon_increasing_in_rho_and_composition_monotone(r1: float, r2: float, d: float) -> None:
    lo, hi = sorted((r1, r2))
    assume(hi > lo * (1 + 1e-9))
    e_lo, e_hi = epsilon_from_rho_delta(lo, d), epsilon_from_rho_delta(hi, d)
    # strictly increasing where positive; a tiny rho with a large delta converts to 0 for both
    assert e_lo < e_hi or e_lo == e_hi == 0.0
    # composing a second measurement never lowers ε
    assert epsilon_from_rho_delta(r1 + r2, d) >= max(
        epsilon_from_rho_delta(r1, d), epsilon_from_rho_delta(r2, d)
    )


# δ(ρ, ε) lies in a usable range for only part of the (ρ, ε) plane: many draws are rejected.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(rhos, epsilons)
def test_delta_and_epsilon_conversions_agree(rho: float, eps: float) -> None:
    d = delta_from_rho_epsilon(rho, eps)
    assume(1e-300 < d < 0.5)
    assert epsilon_from_rho_delta(rho, d) == pytest.approx(eps, rel=1e-6, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=1e-6, max_value=0.02, allow_nan=False), min_size=1, max_size=30),
    epsilons,
)
def test_spending_never_exceeds_target(spends: list[float], eps: float) -> None:
    acc = Accountant(eps, 1e-9, rng=seeded_random(0))
    for rho in spends:
        before_spent, before_n = acc.spent_rho, len(acc.entries)
        sigma = acc.sigma_for(rho, 1.0)
        try:
            acc.measure_gaussian(np.zeros(2, dtype=np.int64), sigma=sigma, l2_sensitivity=1.0, query="q")
        except BudgetExceededError:
            assert acc.spent_rho == before_spent and len(acc.entries) == before_n
            assert before_spent + rho > acc.target_rho
        else:
            assert acc.spent_rho <= acc.target_rho * (1 + 1e-12)
            assert len(acc.entries) == before_n + 1
    assert acc.spent_rho == pytest.approx(sum(e.rho for e in acc.entries), rel=1e-12)


class _Untouchable:
    """Fails the test if the accountant reads the data before refusing the spend."""

    def __array__(self, *a, **k):
        raise AssertionError("data was read before the budget check")


def test_check_then_spend_refuses_before_touching_data() -> None:
    acc = Accountant(0.1, 1e-9, rng=seeded_random(0))
    with pytest.raises(BudgetExceededError, match="nothing was measured"):
        acc.measure_gaussian(_Untouchable(), sigma=0.1, l2_sensitivity=1.0, query="too much")
    with pytest.raises(BudgetExceededError):
        acc.measure_laplace(_Untouchable(), scale=0.01, l1_sensitivity=1.0, query="too much")
    assert acc.spent_rho == 0 and acc.entries == []
    with pytest.raises(BudgetExceededError):
        acc.check(acc.target_rho * 1.001, "q")
    acc.check(acc.target_rho, "exactly the budget is fine")


def test_costs_and_entries() -> None:
    acc = Accountant(2.0, 1e-6, rng=seeded_random(3), release_id="rel-1")
    v = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = acc.measure_gaussian(v, sigma=10.0, l2_sensitivity=2.0, query="cols a,b")
    assert out.shape == (2, 3) and out.dtype == np.int64
    acc.measure_laplace(np.array([5]), scale=20.0, l1_sensitivity=1.0, query="total")
    i = acc.select_exponential(np.array([0.0, 100.0, 0.0]), epsilon=0.5, sensitivity=1.0, query="pick")
    assert 0 <= i < 3
    rho_expected = [4 / 200, (1 / 20) ** 2 / 2, 0.5**2 / 8]
    assert [e.rho for e in acc.entries] == pytest.approx(rho_expected)
    assert acc.spent_rho == pytest.approx(sum(rho_expected))
    assert acc.remaining_rho == pytest.approx(acc.target_rho - sum(rho_expected))
    e = acc.entries[0]
    assert (e.mechanism, e.sensitivity, e.sensitivity_norm, e.noise_scale) == (
        "discrete_gaussian", 2.0, "L2", 10.0)
    assert e.release_id == "rel-1" and e.seeded and "NOT FOR RELEASE" in e.random_source
    assert e.epsilon == pytest.approx(epsilon_from_rho_delta(e.rho, 1e-6)) and e.delta == 1e-6
    assert len(e.time) == 10  # the date only: finer times would time the computation
    assert acc.sigma_for(0.02, 2.0) == pytest.approx(10.0)
    sec = Accountant(1.0, 1e-9, rng=secure_random())
    sec.measure_gaussian(np.zeros(3, dtype=np.int64), sigma=50, l2_sensitivity=1, query="q")
    assert not sec.entries[0].seeded and "urandom" in sec.entries[0].random_source


def test_bad_inputs() -> None:
    acc = Accountant(1.0, 1e-9, rng=seeded_random(0))
    with pytest.raises(TypeError):
        acc.measure_gaussian(np.array([0.5]), sigma=100, l2_sensitivity=1, query="floats")
    with pytest.raises(ValueError):
        acc.measure_gaussian(np.array([1]), sigma=-1, l2_sensitivity=1, query="q")
    with pytest.raises(ValueError):
        Accountant(1.0, 0.0, rng=seeded_random(0))
    with pytest.raises(TypeError):
        Accountant(1.0, 1e-9, rng=np.random.default_rng(0))
    assert epsilon_from_rho_delta(0.0, 1e-9) == 0.0 and rho_from_epsilon_delta(0.0, 1e-9) == 0.0


def test_exponential_mechanism_prefers_high_scores() -> None:
    acc = Accountant(1000.0, 1e-9, rng=seeded_random(1))
    picks = [acc.select_exponential(np.array([0.0, 50.0]), epsilon=1.0, sensitivity=1.0, query="q")
             for _ in range(50)]
    assert sum(picks) == 50  # P(pick 0) = 1/(1+e^25)
