"""k-anonymity checks and suppression (ptsynth.protect)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptsynth.privacy import seeded_random
from ptsynth.release.protect import check_k_anonymity, enforce_k_anonymity
from ptsynth.table import ColumnDomain, EncodedTable


def brute_force_min(table: EncodedTable, cols: list[int], L: int) -> tuple[int | None, dict]:
    """Reference: smallest count and violating combinations by plain Python (small tables)."""
    from collections import Counter

    counts: dict[int, Counter] = {ell: Counter() for ell in range(1, L + 1)}
    for row in table.codes:
        present = [(c, int(row[c])) for c in cols if int(row[c]) != table.domains[c].missing_code]
        for ell in range(1, min(L, len(present)) + 1):
            for combo in itertools.combinations(present, ell):
                counts[ell][combo] += 1
    smallest = min((v for c in counts.values() for v in c.values()), default=None)
    return smallest, counts


def small_table() -> EncodedTable:
    doms = (
        ColumnDomain("age", ("18-25", "26-40", "41+")),
        ColumnDomain("gender", ("F", "M"), allows_missing=False),
        ColumnDomain("country", ("A", "B", "C")),
    )
    codes = np.array(
        [[0, 0, 0]] * 5 + [[1, 1, 1]] * 5 + [[2, 0, 0]] + [[3, 1, 2]] * 2,  # 3 = missing age
        dtype=np.int8,
    )
    return EncodedTable(codes, doms)


def test_check_counts_violations():
    t = small_table()
    r = check_k_anonymity(t, ["age", "gender", "country"], k=3, reporting_length=2)
    assert r["ok"] is False
    assert r["smallest_count"] == 1
    # length 1: age=41+ (1 row), country=C (2 rows); length 2: (41+,F), (41+,A), (M,C)
    assert r["violations"] == {1: 2, 2: 3}
    assert r["violating_rows"] == {1: 3, 2: 3}
    assert r["rows_affected"] == 3
    assert check_k_anonymity(t, ["gender"], k=5, reporting_length=3)["ok"] is True
    assert check_k_anonymity(t, [0, 1, 2], k=1, reporting_length=3)["ok"] is True


def test_enforce_suppresses_rare_values_and_keeps_the_rest():
    t = small_table()
    out, rep = enforce_k_anonymity(
        t, ["age", "gender", "country"], k=3, reporting_length=2, rng=seeded_random(0)
    )
    assert rep["check"]["ok"]
    assert rep["dropped_records"] == 0 and out.n_records == t.n_records
    # only the three offending rows changed, and only towards missing
    changed = np.flatnonzero((out.codes != t.codes).any(axis=1))
    assert set(changed) == {10, 11, 12}
    assert out.codes[10, 0] == 3 and out.codes[10, 2] == 0  # rare age suppressed, country kept
    assert out.codes[11, 2] == 3 and out.codes[12, 2] == 3  # rare country suppressed
    assert rep["suppressed_cells"] == 3
    assert rep["records_with_suppression"] == 3


def test_rows_dropped_when_only_never_missing_columns_violate():
    doms = (
        ColumnDomain("a", ("x", "y"), allows_missing=False),
        ColumnDomain("b", ("p", "q")),
    )
    codes = np.array([[0, 0]] * 6 + [[1, 0]], dtype=np.int8)
    t = EncodedTable(codes, doms)
    out, rep = enforce_k_anonymity(t, ["a", "b"], k=3, reporting_length=2, rng=seeded_random(0))
    assert rep["dropped_records"] == 1 and out.n_records == 6
    assert check_k_anonymity(out, ["a", "b"], k=3, reporting_length=2)["ok"]


def test_k_anonymous_table_unchanged():
    t = small_table().take(np.arange(10))
    out, rep = enforce_k_anonymity(t, [0, 1, 2], k=5, reporting_length=3, rng=seeded_random(1))
    np.testing.assert_array_equal(out.codes, t.codes)
    assert rep["suppressed_cells"] == 0 and rep["rounds"] == 0


def test_bad_arguments():
    t = small_table()
    with pytest.raises(ValueError):
        check_k_anonymity(t, ["age"], k=0, reporting_length=1)
    with pytest.raises(ValueError):
        check_k_anonymity(t, ["age", "age"], k=2, reporting_length=1)
    with pytest.raises(KeyError):
        check_k_anonymity(t, ["nope"], k=2, reporting_length=1)


@st.composite
def tables(draw):
    q = draw(st.integers(1, 4))
    n = draw(st.integers(0, 60))
    doms = []
    cols = []
    for j in range(q):
        n_labels = draw(st.integers(1, 4))
        allow = draw(st.booleans())
        doms.append(
            ColumnDomain(f"q{j}", tuple(f"v{i}" for i in range(n_labels)), allows_missing=allow)
        )
        cols.append(draw(st.lists(st.integers(0, doms[-1].size - 1), min_size=n, max_size=n)))
    codes = np.array(cols, dtype=np.int64).T.reshape(n, q)
    return EncodedTable(codes, tuple(doms))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=tables(), k=st.integers(1, 6), L=st.integers(1, 4), seed=st.integers(0, 1000))
def test_enforce_then_check_is_ok(t, k, L, seed):
    cols = list(range(t.n_columns))
    out, rep = enforce_k_anonymity(t, cols, k=k, reporting_length=L, rng=seeded_random(seed))
    check = check_k_anonymity(out, cols, k=k, reporting_length=L)
    assert check["ok"]
    smallest, _ = brute_force_min(out, cols, L)
    assert smallest is None or smallest >= k
    assert check["smallest_count"] == smallest
    assert rep["n_records_out"] + rep["dropped_records"] == t.n_records
    if rep["dropped_records"] == 0:
        # suppression only ever sets values to missing
        changed = out.codes != t.codes
        miss = np.array([d.missing_code if d.allows_missing else -1 for d in t.domains])
        assert np.all(out.codes[changed] == np.broadcast_to(miss, out.codes.shape)[changed])
        assert int(changed.sum()) == rep["suppressed_cells"]


@settings(max_examples=60, deadline=None)
@given(t=tables(), k=st.integers(1, 5), L=st.integers(1, 3))
def test_check_matches_brute_force(t, k, L):
    cols = list(range(t.n_columns))
    r = check_k_anonymity(t, cols, k=k, reporting_length=L)
    smallest, counts = brute_force_min(t, cols, L)
    assert r["smallest_count"] == smallest
    for ell in range(1, L + 1):
        expected = sum(1 for v in counts[ell].values() if v < k)
        assert r["violations"].get(ell, 0) == expected
    assert r["ok"] == (smallest is None or smallest >= k)
