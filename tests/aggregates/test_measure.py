"""DP aggregate release (ptsynth.aggregates): budget, sensitivity, thresholds, consistency, export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptsynth.aggregates import (
    AggregateRelease,
    measure_aggregates,
    plan_aggregates,
)
from ptsynth.counting import marginal_counts
from ptsynth.errors import BudgetExceededError
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.table import ColumnDomain, EncodedTable
from synthetic_tables import make_table


class SpyAccountant(Accountant):
    """The real accountant, also keeping the true vectors it was asked to measure (tests only)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[np.ndarray] = []

    def measure_gaussian(self, values, **kwargs):  # type: ignore[override]
        self.seen.append(np.array(values, copy=True))
        return super().measure_gaussian(values, **kwargs)


def true_count(table: EncodedTable, attrs) -> int:
    mask = np.ones(table.n_records, dtype=bool)
    for c, v in attrs:
        mask &= table.codes[:, c] == v
    return int(mask.sum())


def check_invariants(agg: AggregateRelease) -> None:
    """≥ k, integer, downward closed, capped by sub-combinations, record count on top."""
    one = agg.counts[1]
    if one.size:
        assert agg.record_count >= one.max()
    for ell in range(1, agg.reporting_length + 1):
        combos, counts = agg.combinations[ell], agg.counts[ell]
        assert counts.dtype == np.int64
        assert np.all(counts >= agg.k)
        assert combos.shape == (counts.size, ell, 2)
        if counts.size:
            assert np.all(np.diff(combos[:, :, 0], axis=1) > 0)  # distinct columns, ascending
        for i in range(counts.size):
            attrs = tuple(map(tuple, combos[i]))
            assert agg.count(attrs) == counts[i]
            for drop in range(ell):
                sub = attrs[:drop] + attrs[drop + 1 :]
                sub_count = agg.count(sub)
                assert sub_count is not None, "release not downward closed"
                assert counts[i] <= sub_count


# -- planning --------------------------------------------------------------------------------
def test_plan_budget_adds_up_and_matches_sensitivity():
    t = make_table(10, 6, 0)
    rho = 0.25
    plan = plan_aggregates(t.domains, rho=rho, reporting_length=3, k=10)
    assert [p["length"] for p in plan] == [1, 2, 3]
    total = plan[0]["record_count_rho"] + plan[0]["quantile_rho"] + sum(p["rho"] for p in plan)
    assert total <= rho and total == pytest.approx(rho, rel=1e-6)
    assert plan[0]["quantile_rho"] == pytest.approx(0.01 * rho)
    assert plan[0]["max_attributes_source"].startswith("dp_quantile")
    for p in plan:  # shown at the public cap (6 columns): upper bounds
        assert p["sensitivity"] == pytest.approx(math.sqrt(math.comb(6, p["length"])))
        assert p["rho"] == pytest.approx(p["sensitivity"] ** 2 / (2 * p["sigma"] ** 2))
        factor = 1.0 if p["length"] == 1 else 0.0  # default threshold factors
        assert p["threshold"] == pytest.approx(max(10, factor * p["sigma"]))
        assert p["n_column_sets"] == math.comb(6, p["length"])
    high = plan_aggregates(t.domains, rho=rho, reporting_length=3, threshold_factor=3)
    assert all(p["threshold"] == pytest.approx(max(10, 3 * p["sigma"])) for p in high)
    # default "balanced": equal sigma
    assert plan[0]["sigma"] == pytest.approx(plan[2]["sigma"])
    long = plan_aggregates(t.domains, rho=rho, reporting_length=3, noise_split="long")
    assert long[0]["sigma"] == pytest.approx(3 * long[2]["sigma"])
    capped = plan_aggregates(t.domains, rho=rho, reporting_length=3, max_attributes=2)
    assert capped[0]["quantile_rho"] == 0.0 and capped[0]["max_attributes_source"] == "public"
    assert capped[0]["record_count_rho"] + sum(p["rho"] for p in capped) == pytest.approx(rho)
    assert capped[0]["sensitivity"] == pytest.approx(math.sqrt(2))
    assert capped[2]["rho"] == 0.0  # no record holds 3 attributes when capped at 2


def test_plan_rejects_bad_inputs():
    t = make_table(10, 3, 0)
    with pytest.raises(ValueError):
        plan_aggregates(t.domains, rho=0.0, reporting_length=2)
    with pytest.raises(ValueError):
        plan_aggregates(t.domains, rho=1.0, reporting_length=0)
    with pytest.raises(ValueError, match="noise_split"):
        plan_aggregates(t.domains, rho=1.0, reporting_length=2, noise_split="nope")


# -- measurement -----------------------------------------------------------------------------
def test_ledger_one_entry_per_length_and_budget_spent():
    t = make_table(3000, 6, 1)
    acc = Accountant(2.0, 1e-6, rng=seeded_random(3))
    agg = measure_aggregates(t, acc, reporting_length=3, k=5)
    assert len(acc.entries) == 5
    assert acc.entries[0].query == "record count"
    q = acc.entries[1]
    assert q.mechanism == "exponential_mechanism" and "quantile" in q.query
    assert q.rho == pytest.approx(0.01 * acc.target_rho, rel=1e-6)
    assert agg.max_attributes_source == "dp_quantile_0.95" and 1 <= agg.max_attributes <= 6
    assert agg.metadata()["quantile_rho"] == pytest.approx(q.rho)
    for ell, e in enumerate(acc.entries[2:], start=1):
        assert e.query.startswith(f"all length-{ell} combination counts")
        assert e.mechanism == "discrete_gaussian"
        assert e.sensitivity == pytest.approx(math.sqrt(math.comb(agg.max_attributes, ell)))
    assert acc.spent_rho <= acc.target_rho
    assert acc.remaining_rho < 1e-6 * acc.target_rho
    assert [s.measured for s in agg.lengths] == [True, True, True]
    check_invariants(agg)


def _present_per_record(t: EncodedTable) -> np.ndarray:
    return sum(
        (t.codes[:, j] != d.missing_code) if d.allows_missing else np.ones(t.n_records, int)
        for j, d in enumerate(t.domains)
    )


def test_dp_contribution_bound_finds_the_quantile():
    """Many records, ample budget: the DP quantile is the true 95th percentile of present
    attributes (or a neighbour), well below the public cap, and lowers every Δ_ℓ."""
    t = make_table(20_000, 10, 3)
    codes = t.codes.copy()
    g = np.random.default_rng(0)
    for j, d in enumerate(t.domains):  # make most attributes absent
        if d.allows_missing:
            codes[g.random(t.n_records) < 0.6, j] = d.missing_code
    t = t.with_codes(codes)
    a = _present_per_record(t)
    truth = int(np.quantile(a, 0.95, method="inverted_cdf"))
    acc = Accountant(4.0, 1e-6, rng=seeded_random(4))
    agg = measure_aggregates(t, acc, reporting_length=2, k=5)
    assert abs(agg.max_attributes - truth) <= 1 and agg.max_attributes < t.n_columns
    assert agg.lengths[1].sensitivity == pytest.approx(
        math.sqrt(math.comb(agg.max_attributes, 2))
    )
    public = plan_aggregates(t.domains, rho=acc.target_rho, reporting_length=2, k=5)
    assert agg.lengths[1].sigma < public[1]["sigma"]  # the bound buys less noise


def test_public_max_attributes_spends_nothing_on_the_quantile():
    t = make_table(500, 5, 9)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(1))
    agg = measure_aggregates(t, acc, reporting_length=2, k=5, max_attributes=4)
    assert [e.mechanism for e in acc.entries] == ["discrete_gaussian"] * 3
    assert agg.max_attributes == 4 and agg.max_attributes_source == "public"
    assert agg.quantile_rho == 0.0


@settings(max_examples=40, deadline=None)
@given(q=st.floats(0.5, 0.999), a=st.lists(st.integers(1, 6), min_size=0, max_size=30),
       extra=st.integers(1, 6))
def test_quantile_utility_sensitivity_property(q, a, extra):
    """Adding one record moves every utility u(c) = −|#{a_i ≤ c} − q·n| by ≤ max(q, 1−q)."""
    def util(vals):
        v = np.asarray(vals, dtype=np.int64)
        at_most = np.array([(v <= c).sum() for c in range(1, 7)])
        return -np.abs(at_most - q * v.size)

    diff = np.abs(util([*a, extra]) - util(a))
    assert np.all(diff <= max(q, 1 - q) + 1e-9)


class ExactAccountant(Accountant):
    """Spends like the real accountant but returns the true values (tests only)."""

    def measure_gaussian(self, values, **kwargs):  # type: ignore[override]
        super().measure_gaussian(values, **kwargs)
        return np.asarray(values, dtype=np.int64)


def test_never_missing_values_kept_down_to_k_at_length_1():
    """A never-missing column's values use τ = k at length 1 (τ_1 = σ_1 for the others)."""
    doms = (
        ColumnDomain("year", ("a", "b", "c"), allows_missing=False),
        ColumnDomain("flag", ("y", "z")),
    )
    n_small = 20  # k ≤ 20 < τ_1
    year = np.r_[np.zeros(n_small), np.ones(2000 - n_small)].astype(int)
    flag = np.r_[np.zeros(n_small), np.full(1000, 1), np.full(1000 - n_small, 2)].astype(int)
    t = EncodedTable(np.column_stack([year, flag]), doms)
    acc = ExactAccountant(0.15, 1e-6, rng=seeded_random(5))
    agg = measure_aggregates(t, acc, reporting_length=1, k=5, max_attributes=2)
    assert agg.lengths[0].threshold > n_small
    assert agg.count(((0, 0),)) == n_small  # never-missing: kept down to k
    assert agg.count(((1, 0),)) is None  # may be missing: τ_1 applies
    assert agg.count(((0, 2),)) is None  # zero count, below k


def test_budget_checked_before_reading_data():
    t = make_table(100, 4, 2)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(0))
    with pytest.raises(BudgetExceededError):
        measure_aggregates(t, acc, reporting_length=2, k=5, rho=acc.target_rho * 2)
    assert acc.entries == [] and acc.spent_rho == 0.0


def test_every_candidate_noised_including_zero_counts():
    """Length 1 measures every public domain value, also values absent from the data."""
    t = make_table(500, 5, 4)
    codes = t.codes.copy()
    codes[codes[:, 1] == 0, 1] = 1  # value 0 of column 1 never occurs
    t = t.with_codes(codes)
    acc = SpyAccountant(5.0, 1e-6, rng=seeded_random(1))
    measure_aggregates(t, acc, reporting_length=2, k=2)
    n_attr = sum(len(d.labels) for d in t.domains)
    one = acc.seen[1]
    assert one.shape == (n_attr,)
    assert one[len(t.domains[0].labels)] == 0  # the zero-count cell is in the measured vector
    # the true vector equals the exact 1-way counts of present values
    expected = np.concatenate(
        [marginal_counts(t, [j])[: len(d.labels)] for j, d in enumerate(t.domains)]
    )
    np.testing.assert_array_equal(one, expected)


def test_contribution_bound_limits_attributes_per_record():
    t = make_table(400, 5, 5)
    acc = SpyAccountant(5.0, 1e-6, rng=seeded_random(2))
    agg = measure_aggregates(t, acc, reporting_length=3, k=2, max_attributes=2)
    present = np.minimum(
        sum(
            (t.codes[:, j] != d.missing_code) if d.allows_missing else np.ones(t.n_records, bool)
            for j, d in enumerate(t.domains)
        ),
        2,
    )
    assert acc.seen[1].sum() == present.sum()  # each record counted for at most 2 attributes
    assert agg.lengths[0].sensitivity == pytest.approx(math.sqrt(2))
    assert agg.lengths[2].measured is False and agg.by_length()[3] == 0
    assert len(acc.entries) == 3  # count, length 1, length 2


def test_large_budget_recovers_true_counts():
    t = make_table(5000, 6, 6)
    acc = Accountant(200.0, 1e-6, rng=seeded_random(7))
    agg = measure_aggregates(t, acc, reporting_length=3, k=5)
    check_invariants(agg)
    sigma = agg.lengths[-1].sigma
    assert sigma < 2.5
    assert abs(agg.record_count - t.n_records) <= 50
    for ell in (1, 2, 3):
        combos, counts = agg.combinations[ell], agg.counts[ell]
        assert counts.size > 0
        truth = np.array([true_count(t, combos[i]) for i in range(counts.size)])
        assert np.all(np.abs(counts - truth) <= 6 * sigma + 1)
    # combinations frequent in the data are all released
    exact = AggregateRelease.from_table(t, reporting_length=3, k=int(20 * sigma) + 20)
    for attrs, _ in exact.iter_counts():
        assert agg.count(attrs) is not None


def test_reproducible_with_seeded_rng():
    t = make_table(800, 5, 8)
    a = measure_aggregates(t, Accountant(1.0, 1e-6, rng=seeded_random(9)), reporting_length=2, k=3)
    b = measure_aggregates(t, Accountant(1.0, 1e-6, rng=seeded_random(9)), reporting_length=2, k=3)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 300),
    d=st.integers(1, 5),
    L=st.integers(1, 4),
    k=st.integers(1, 8),
    eps=st.sampled_from([0.5, 5.0, 100.0]),
)
def test_release_invariants_property(seed, n, d, L, k, eps):
    t = make_table(max(n, 1), d, seed).take(np.arange(n))
    acc = Accountant(eps, 1e-6, rng=seeded_random(seed))
    agg = measure_aggregates(t, acc, reporting_length=L, k=k)
    check_invariants(agg)
    assert acc.spent_rho <= acc.target_rho * (1 + 1e-12)
    assert sum(agg.by_length().values()) == len(agg.to_frame()) - 1


# -- export and lookups ----------------------------------------------------------------------
def set_member_table() -> EncodedTable:
    doms = (
        ColumnDomain("gender", ("Female", "Male"), allows_missing=False),
        ColumnDomain("control=debt", ("1",), source="control", kind="set_member"),
        ColumnDomain("control=threats", ("1",), source="control", kind="set_member"),
    )
    rng = np.random.default_rng(0)
    codes = np.column_stack(
        [rng.integers(0, 2, 400), rng.integers(0, 2, 400), rng.integers(0, 2, 400)]
    )
    return EncodedTable(codes, doms)


def test_frame_csv_parquet_sds_form(tmp_path):
    t = set_member_table()
    agg = AggregateRelease.from_table(t, reporting_length=3, k=5)
    frame = agg.to_frame()
    assert list(frame.columns) == ["selections", "protected_count"]
    assert frame.iloc[0]["selections"] == "record_count"
    assert frame.iloc[0]["protected_count"] == 400
    sels = set(frame["selections"])
    assert "control:debt" in sels and "gender:Female" in sels
    assert "gender:Male;control:debt;control:threats" in sels  # column order, ';'-joined
    row = frame[frame["selections"] == "gender:Male;control:debt"].iloc[0]
    assert row["protected_count"] == true_count(t, ((0, 1), (1, 0)))
    csv = pd.read_csv(agg.write_csv(tmp_path / "a.csv"))
    pd.testing.assert_frame_equal(csv, frame)
    tsv = pd.read_csv(agg.write_csv(tmp_path / "a.tsv", sep="\t"), sep="\t")
    pd.testing.assert_frame_equal(tsv, frame)
    pq_table = pq.read_table(agg.write_parquet(tmp_path / "a.parquet"))
    pd.testing.assert_frame_equal(pq_table.to_pandas(), frame)
    assert b"ptsynth.aggregates" in pq_table.schema.metadata


def test_count_lookup():
    t = set_member_table()
    agg = AggregateRelease.from_table(t, reporting_length=2, k=1)
    assert agg.count(()) == 400
    assert agg.count(((1, 0), (0, 0))) == true_count(t, ((0, 0), (1, 0)))  # any order
    assert agg.count(((1, 1),)) is None  # the missing code is not an attribute
    assert agg.count(((0, 0), (0, 1))) is None  # same column twice
    assert agg.count(((0, 0), (1, 0), (2, 0))) is None  # longer than the reporting length
    assert agg.count(((9, 0),)) is None
    assert agg.by_length() == {1: 4, 2: 5}
    items = dict(agg.iter_counts())
    assert items[((0, 1),)] == true_count(t, ((0, 1),))


def test_from_table_matches_exact_marginals():
    t = make_table(2000, 4, 11)
    agg = AggregateRelease.from_table(t, reporting_length=2, k=1)
    m = marginal_counts(t, [1, 2])
    for attrs, c in agg.iter_counts():
        if len(attrs) == 2 and attrs[0][0] == 1 and attrs[1][0] == 2:
            assert c == m[attrs[0][1], attrs[1][1]]
    n_pairs = int((m[: len(t.domains[1].labels), : len(t.domains[2].labels)] > 0).sum())
    got = sum(1 for a, _ in agg.iter_counts() if [c for c, _ in a] == [1, 2])
    assert got == n_pairs
