"""Disclosure-risk metrics against hand-computed values, and exact NN search vs brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.evaluate.distance import CodeNeighbours, column_distance_matrix
from ptsynth.evaluate.risk import dcr, exact_matches, k_anonymity, l_diversity_t_closeness
from ptsynth.table import ColumnDomain, EncodedTable

Q1 = ColumnDomain("q1", ("a", "b"), quasi_identifier=True)               # missing = 2
Q2 = ColumnDomain("q2", ("u", "v"), allows_missing=False, quasi_identifier=True)
S = ColumnDomain("s", ("s0", "s1", "s2"), allows_missing=False, sensitive=True)
SO = ColumnDomain("so", ("1", "2", "3"), kind="ordinal", allows_missing=False, sensitive=True)


def tab(rows, doms) -> EncodedTable:
    return EncodedTable(np.array(rows, dtype=np.int64), tuple(doms))


def test_k_anonymity_missing_qi_is_its_own_class() -> None:
    t = tab([[0, 0], [0, 0], [0, 0], [1, 1], [1, 1], [2, 0]], [Q1, Q2])
    k = k_anonymity(t, ["q1", "q2"], k=3)
    assert k["k_level"]["value"] == 1            # the missing-q1 record forms its own class
    assert k["n_classes"]["value"] == 3
    assert k["records_below_k"]["value"] == 3    # classes of size 2 and 1
    assert k["classes_below_k"]["value"] == 2
    dist = {d["bucket"]: d for d in k["class_size_distribution"]}
    assert dist["1"]["records"] == 1 and dist["2"]["records"] == 2 and dist["3-4"]["records"] == 3
    assert k_anonymity(t, [], k=3)["computed"] is False


def test_l_diversity_and_t_closeness_hand_computed() -> None:
    # classes over q2: u -> s = {0,0,1,2}, v -> s = {0,0}
    t = tab([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 2, 2], [1, 0, 0], [1, 0, 0]], [Q2, S, SO])
    res = {r["sensitive"]: r for r in l_diversity_t_closeness(t, ["q2"], ["s", "so"])}
    s = res["s"]
    assert s["distinct_l"]["value"] == 1
    assert s["entropy_l"]["value"] == pytest.approx(1.0)           # class v has one value
    # overall s: (4/6, 1/6, 1/6); class v: (1,0,0) -> ½(1/3+1/6+1/6) = 1/3
    assert s["t_closeness"]["value"] == pytest.approx(1 / 3)
    assert s["classes_with_one_value"]["value"] == 1
    so = res["so"]
    # overall so: (5/6, 0, 1/6); class u: (3/4, 0, 1/4): diffs (-1/12, 0, 1/12) cum (-1/12,-1/12,0)
    # -> (1/12+1/12)/2 = 1/12 ; class v: (1,0,0): diffs (1/6,0,-1/6) cum (1/6,1/6,0) -> 1/6
    assert so["t_closeness"]["value"] == pytest.approx(1 / 6)
    assert so["t_closeness"]["emd"].startswith("cumulative")


def test_exact_matches_and_unique_reproduced() -> None:
    real = tab([[0, 0], [0, 0], [1, 1]], [Q1, Q2])
    syn = tab([[1, 1], [2, 0], [0, 0], [0, 1]], [Q1, Q2])
    hold = tab([[0, 0], [2, 1]], [Q1, Q2])
    em = exact_matches(real, syn, hold)
    assert em["synthetic_in_real"]["value"] == pytest.approx(0.5)
    assert em["real_unique_records"]["value"] == 1
    assert em["real_unique_in_synthetic"]["value"] == 1   # [1,1] is unique and copied
    assert em["holdout_in_real"]["value"] == pytest.approx(0.5)


def test_column_distance_definition() -> None:
    d = column_distance_matrix(ColumnDomain("o", ("1", "2", "3"), kind="ordinal"))
    assert d[0, 2] == 1.0 and d[0, 1] == 0.5 and d[3, 3] == 0.0 and d[3, 0] == 1.0
    c = column_distance_matrix(Q1)
    assert c[0, 1] == 1.0 and c[2, 2] == 0.0


DOMS = (Q1, SO, ColumnDomain("n", tuple(str(i) for i in range(6)), kind="numeric"))


def _brute(q: np.ndarray, cand: np.ndarray) -> np.ndarray:
    mats = [column_distance_matrix(d) for d in DOMS]
    dist = np.zeros((q.shape[0], cand.shape[0]))
    for j, m in enumerate(mats):
        dist += m[q[:, j][:, None], cand[:, j][None, :]]
    return dist / len(DOMS)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 60), st.integers(1, 30))
def test_nearest_equals_brute_force(seed: int, n_c: int, n_q: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [d.size for d in DOMS]
    cand = np.stack([rng.integers(0, s, n_c) for s in sizes], 1)
    q = np.stack([rng.integers(0, s, n_q) for s in sizes], 1)
    d, arg = CodeNeighbours(cand, DOMS).nearest(q)
    brute = _brute(q, cand)
    np.testing.assert_allclose(d, brute.min(axis=1), atol=1e-6)
    np.testing.assert_array_equal(arg, brute.round(9).argmin(axis=1))   # lowest index on ties


def test_dcr_copy_is_zero_and_random_is_farther() -> None:
    rng = np.random.default_rng(0)
    sizes = [d.size for d in DOMS]
    real = EncodedTable(np.stack([rng.integers(0, s, 400) for s in sizes], 1), DOMS)
    res = dcr(real, real, real.take(np.arange(50)), seed=0, sample=200)
    assert res["synthetic"]["median"]["value"] == 0.0
    assert res["synthetic"]["zero_share"]["value"] == 1.0
    assert res["random"]["n"] == 200


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), st.integers(1, 40))
def test_nearest_wide_rows_without_int_keys_equals_brute_force(seed: int, n_c: int,
                                                                n_q: int) -> None:
    """Product domain ≥ 2^62: no exact-match key path; duplicates still deduplicated."""
    doms = tuple(ColumnDomain(f"b{i}", ("0", "1"), allows_missing=False) for i in range(70))
    rng = np.random.default_rng(seed)
    cand = (rng.random((n_c, 70)) < 0.1).astype(np.int64)
    q = np.concatenate([cand[rng.integers(0, n_c, n_q)],
                        (rng.random((n_q, 70)) < 0.1).astype(np.int64)])
    d, arg = CodeNeighbours(cand, doms).nearest(q)
    dist = (q[:, None, :] != cand[None, :, :]).mean(axis=2)
    np.testing.assert_allclose(d, dist.min(axis=1), atol=1e-6)
    np.testing.assert_array_equal(arg, dist.round(9).argmin(axis=1))


def test_nearest_exact_match_takes_lowest_duplicate_index() -> None:
    cand = np.array([[1, 0, 3], [0, 1, 2], [1, 0, 3], [0, 1, 2]])
    d, arg = CodeNeighbours(cand, DOMS).nearest(np.array([[0, 1, 2], [1, 0, 3], [0, 1, 2]]))
    np.testing.assert_array_equal(d, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(arg, [1, 0, 1])
