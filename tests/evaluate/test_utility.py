"""Utility metrics against hand-computed values on tiny tables, plus invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.evaluate import evaluate
from ptsynth.evaluate.stats import paired_counts, residual_risk, tvd, wilson
from ptsynth.evaluate.utility import aggregate_error, combination_metrics, preservation_section
from ptsynth.table import ColumnDomain, EncodedTable

A = ColumnDomain("a", ("x", "y"), allows_missing=True)          # codes 0,1; missing 2
B = ColumnDomain("b", ("p", "q"), allows_missing=False)         # codes 0,1
ORD = ColumnDomain("o", ("lo", "mid", "hi"), kind="ordinal", allows_missing=False)


def table(rows: list[list[int]], doms=(A, B)) -> EncodedTable:
    return EncodedTable(np.array(rows, dtype=np.int64).reshape(-1, len(doms)), doms)


def test_tvd_1way_hand_computed() -> None:
    real = table([[0, 0], [0, 1], [1, 0], [2, 1]])   # a: x,x,y,missing
    syn = table([[0, 0], [0, 0], [0, 1], [1, 1]])    # a: x,x,x,y
    m = combination_metrics(real, syn, reporting_length=2, k=2, max_sets=400, seed=0)
    by = m["tvd"]
    # a: real (.5,.25,.25) vs synth (.75,.25,0) -> 0.5*(.25+0+.25)=0.25; b: (.5,.5) vs (.5,.5) -> 0
    assert by[1]["mean"]["value"] == pytest.approx(0.125)
    assert by[1]["max"]["value"] == pytest.approx(0.25)
    assert by[1]["worst"][0]["columns"] == ["a"]
    # 2-way: real cells (x,p)(x,q)(y,p)(m,q) each .25; synth (x,p).5 (x,q).25 (y,q).25
    # |.25-.5|+|.25-.25|+|.25-0|+|.25-0|+|0-.25| = 1.0 -> 0.5
    assert by[2]["mean"]["value"] == pytest.approx(0.5)


def test_preservation_suppressed_fabricated_hand_computed() -> None:
    real = table([[0, 0], [0, 1], [1, 0], [2, 1]])
    syn = table([[0, 0], [0, 0], [0, 1], [1, 1]])
    m = combination_metrics(real, syn, reporting_length=2, k=2, max_sets=400, seed=0)
    pres = preservation_section(m["lengths"], m["sampled_lengths"])
    l2 = pres["by_length"][1]
    # present 2-combos (missing a is absent): real {(x,p):1,(x,q):1,(y,p):1}; synth {(x,p):2,(x,q):1,(y,q):1}
    assert l2["real_combinations"]["value"] == 3
    assert l2["synthetic_combinations"]["value"] == 3
    assert l2["suppressed"]["value"] == pytest.approx(1 / 3)   # (y,p)
    assert l2["fabricated"]["value"] == pytest.approx(1 / 3)   # (y,q)
    assert l2["preservation"]["value"] == pytest.approx(2 / 3)  # min: 1+1+0 over 3
    l1 = pres["by_length"][0]
    # length 1: real a:x2,y1 b:p2,q2 ; synth a:x3,y1 b:p2,q2 -> mins 2+1+2+2=7 over 7
    assert l1["preservation"]["value"] == pytest.approx(1.0)
    assert l1["suppressed"]["value"] == 0.0


def test_rare_and_unique_combinations_counted_not_listed() -> None:
    real = table([[0, 0], [0, 0], [0, 0], [1, 1]])
    syn = table([[1, 1], [0, 0], [0, 0], [0, 0]])
    m = combination_metrics(real, syn, reporting_length=2, k=3, max_sets=400, seed=0)
    l2 = m["lengths"][2]
    assert l2.rare_real == 1 and l2.unique_real == 1      # (y,q) once
    assert l2.rare_in_synth == 1 and l2.rare_leaked == 1


def test_ks_and_correlation_on_ordinal_codes() -> None:
    real = table([[0, 0], [1, 1], [2, 2], [2, 2]], doms=(ORD, ColumnDomain("o2", ORD.labels,
                                                                       kind="ordinal",
                                                                       allows_missing=False)))
    syn = real.with_codes(np.array([[0, 2], [1, 1], [2, 0], [0, 2]]))
    m = combination_metrics(real, syn, reporting_length=2, k=1, max_sets=400, seed=0)
    shape_o = m["shapes"][0]
    # o real cdf (.25,.5,1) synth (.5,.75,1) -> KS .25
    assert shape_o["definition"] == "ks_complement_codes"
    assert shape_o["value"] == pytest.approx(0.75)
    trend = m["trends"][0]
    assert trend["definition"] == "correlation_similarity"
    assert trend["real_correlation"] == pytest.approx(1.0)
    assert trend["synthetic_correlation"] == pytest.approx(-1.0)
    assert trend["value"] == pytest.approx(0.0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1)), min_size=1, max_size=40),
       st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1)), min_size=1, max_size=40))
def test_tvd_bounds_and_identity(r: list, s: list) -> None:
    real, syn = table([list(x) for x in r]), table([list(x) for x in s])
    m = combination_metrics(real, syn, reporting_length=2, k=2, max_sets=400, seed=0)
    for o in (1, 2):
        assert 0.0 <= m["tvd"][o]["mean"]["value"] <= m["tvd"][o]["max"]["value"] <= 1.0
    same = combination_metrics(real, real, reporting_length=2, k=2, max_sets=400, seed=0)
    assert same["tvd"][2]["max"]["value"] == pytest.approx(0.0)
    pres = preservation_section(same["lengths"], same["sampled_lengths"])
    for x in pres["by_length"]:
        assert x["suppressed"]["value"] in (0.0, None) and x["fabricated"]["value"] in (0.0, None)
        assert x["preservation"]["value"] in (pytest.approx(1.0), None)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 200), st.integers(1, 200), st.integers(0, 10_000))
def test_paired_counts_dense_equals_sparse(n_r: int, n_s: int, seed: int) -> None:
    import ptsynth.evaluate.stats as stats

    rng = np.random.default_rng(seed)
    sizes = [7, 5, 3]
    rc = [rng.integers(0, s, n_r) for s in sizes]
    sc = [rng.integers(0, s, n_s) for s in sizes]
    dense = paired_counts(rc, sc, sizes)
    old = stats.DENSE_LIMIT
    stats.DENSE_LIMIT = 1
    try:
        sparse = paired_counts(rc, sc, sizes)
    finally:
        stats.DENSE_LIMIT = old
    for a, b in zip(dense, sparse, strict=True):
        np.testing.assert_array_equal(a, b)
    assert dense[1].sum() == n_r and dense[2].sum() == n_s
    assert 0.0 <= tvd(dense[1], dense[2]) <= 1.0


def test_wilson_and_residual_match_formula() -> None:
    w = wilson(30, 100)
    z = 1.959963984540054
    rate = (30 + z * z / 2) / (100 + z * z)
    assert w["value"] == pytest.approx(rate)
    assert w["ci"][0] < 0.30 < w["ci"][1]
    c = wilson(10, 100)
    r = residual_risk(w, c)
    assert r["value"] == pytest.approx((w["value"] - c["value"]) / (1 - c["value"]))
    assert residual_risk(w, None)["value"] == pytest.approx(w["value"])


def test_column_set_sampling_is_seeded_and_capped() -> None:
    from ptsynth.evaluate.stats import column_sets

    a, total = column_sets(30, 3, 50, seed=1)
    b, _ = column_sets(30, 3, 50, seed=1)
    c, _ = column_sets(30, 3, 50, seed=2)
    assert total == 4060 and len(a) == 50 and a == b and a != c
    assert len(set(a)) == 50 and all(len(set(x)) == 3 for x in a)


def test_aggregate_error_zero_for_exact_counts_and_detects_noise() -> None:
    rng = np.random.default_rng(0)
    real = table(np.stack([rng.integers(0, 3, 300), rng.integers(0, 2, 300)], 1).tolist())
    exact = {}
    for a in range(2):
        exact[((0, a),)] = int((real.codes[:, 0] == a).sum())
        for b in range(2):
            exact[((0, a), (1, b))] = int(((real.codes[:, 0] == a) & (real.codes[:, 1] == b)).sum())
    res = aggregate_error(exact, real)
    assert [x["mean_absolute_error"]["value"] for x in res["by_length"]] == [0.0, 0.0]
    noisy = {k: v + 2 for k, v in exact.items()}
    noisy[((0, 0), (1, 1))] = 0 + 5 if exact[((0, 0), (1, 1))] == 0 else exact[((0, 0), (1, 1))] + 2
    res = aggregate_error(noisy, real)
    assert res["by_length"][0]["mean_absolute_error"]["value"] == pytest.approx(2.0)
    assert res["by_length"][1]["max_absolute_error"]["value"] == pytest.approx(2.0)


def test_evaluate_report_shape_and_ml() -> None:
    rng = np.random.default_rng(3)
    n = 600
    base = rng.integers(0, 2, n)
    codes = np.stack([base, (base + (rng.random(n) < 0.1)) % 2, rng.integers(0, 3, n)], 1)
    doms = (A, B, ORD)
    real = EncodedTable(codes, doms)
    syn = real.with_codes(codes[rng.permutation(n)])
    rep = evaluate(real, syn, target="b", quasi_identifiers=["a", "o"], sensitive=["b"],
                   seed=1, n_attacks=100, dcr_sample=100)
    assert rep["schema_version"] == 1
    assert rep["utility"]["visibility"] == "private"
    assert rep["utility"]["marginals"]["by_order"]["3"]["n_sets"] == 1
    ml = rep["utility"]["ml_efficacy"]
    assert ml["train_real"]["accuracy"]["value"] > 0.8   # b follows a (90%)
    for v in rep["summary"]["verdicts"]:
        assert v["visibility"] in ("public", "private") and v["text"]
    again = evaluate(real, syn, target="b", quasi_identifiers=["a", "o"], sensitive=["b"],
                     seed=1, n_attacks=100, dcr_sample=100)
    again.pop("timings_s")
    rep.pop("timings_s")
    assert again == rep   # seeded: same report


def test_evaluate_rejects_other_domains() -> None:
    real = table([[0, 0]])
    other = EncodedTable(np.array([[0, 0]]), (A, ColumnDomain("c", ("p", "q"))))
    with pytest.raises(ValueError, match="same public domains"):
        evaluate(real, other)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 60), st.integers(1, 6), st.booleans())
def test_row_ids_partition_rows_like_byte_comparison(seed: int, n: int, d: int,
                                                     wide: bool) -> None:
    """Integer-key and raw-byte paths agree: same id iff the same row, across blocks."""
    from ptsynth.evaluate.stats import row_ids

    rng = np.random.default_rng(seed)
    top = 2**15 if wide else 3   # wide: 6 columns of 2^15 overflow the int64 key
    a = rng.integers(0, top, (n, d)).astype(np.uint16)
    b = np.concatenate([a[: n // 2], rng.integers(0, top, (5, d)).astype(np.uint16)])
    ia, ib = row_ids(a, b)
    rows = np.concatenate([a, b])
    ids = np.concatenate([ia, ib])
    same_row = (rows[:, None, :] == rows[None, :, :]).all(axis=2)
    np.testing.assert_array_equal(ids[:, None] == ids[None, :], same_row)


def test_ml_efficacy_caps_classes_and_says_so() -> None:
    from ptsynth.evaluate.utility import ML_MAX_CLASSES, ml_efficacy

    rng = np.random.default_rng(4)
    n_cls = ML_MAX_CLASSES + 5
    tgt = ColumnDomain("t", tuple(f"c{i}" for i in range(n_cls)), allows_missing=False)
    feat = ColumnDomain("f", tuple(f"c{i}" for i in range(n_cls)), allows_missing=False)
    y = np.minimum(rng.geometric(0.12, 3000) - 1, n_cls - 1)
    x = np.where(rng.random(3000) < 0.8, y, rng.integers(0, n_cls, 3000))
    real = EncodedTable(np.stack([y, x], 1), (tgt, feat))
    res = ml_efficacy(real, real, "t", holdout=None, seed=0)
    assert res["n_classes"] == np.unique(y[:]).size > ML_MAX_CLASSES
    assert res["classes_merged_into_other"] == res["n_classes"] - (ML_MAX_CLASSES - 1)
    assert res["train_real"]["accuracy"]["value"] > 0.7   # f carries t 80% of the time
    few = ml_efficacy(real.with_codes(np.stack([y % 3, x % 3], 1)), real.with_codes(
        np.stack([y % 3, x % 3], 1)), "t", holdout=None, seed=0)
    assert few["classes_merged_into_other"] == 0 and few["n_classes"] == 3
