"""Smoke and property tests of the peer benchmark harness (benchmarks/peers.py, datasets.py).

Why: every accuracy figure we publish against peers comes out of ``mean_tvd``; a wrong metric
would silently flatter or punish everyone. These tests pin it against hand-computed values and a
naive pandas implementation, and check the loaders' documented shapes on the real public data.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import datasets  # noqa: E402
import peers  # noqa: E402

SHARED = Path(os.environ.get("PTSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))


def _frame(
    rng: np.random.Generator, n: int, cards: list[int], missing: float = 0.1
) -> pd.DataFrame:
    cols = {}
    for j, c in enumerate(cards):
        v = rng.integers(0, c, n).astype(str).astype(object)
        v[rng.random(n) < missing] = ""
        cols[f"c{j}"] = v
    return pd.DataFrame(cols)


def _naive_tvd(real: pd.DataFrame, synth: pd.DataFrame, cols: list[str]) -> float:
    p = real.groupby(cols).size() / len(real)
    q = synth.groupby(cols).size() / len(synth)
    p, q = p.align(q, fill_value=0.0)
    return 0.5 * float((p - q).abs().sum())


# -- the metric -------------------------------------------------------------------------------
def test_identical_tables_score_zero_and_full_k_marginal() -> None:
    df = _frame(np.random.default_rng(1), 300, [3, 4, 2, 5])
    out = peers.mean_tvd(df, df.copy())
    assert out["overall"] == 0.0
    assert out["tvd_by_order"] == {"1": 0.0, "2": 0.0, "3": 0.0}
    assert out["k_marginal"] == 1000.0
    assert out["n_sets"] == {"1": 4, "2": 6, "3": 4}


def test_hand_computed_tvd() -> None:
    real = pd.DataFrame({"a": ["x", "x", "y", "y"], "b": ["1", "2", "1", "2"]})
    synth = pd.DataFrame({"a": ["x", "x", "x", "y"], "b": ["1", "1", "1", "1"]})
    out = peers.mean_tvd(real, synth, orders=(1, 2))
    # a: |.5-.75| + |.5-.25| = .5 → .25 ; b: |.5-1| + |.5-0| = 1 → .5
    assert out["tvd_by_order"]["1"] == pytest.approx((0.25 + 0.5) / 2)
    # (a,b): real x1 x2 y1 y2 = .25 each; synth x1 .75, y1 .25 → ½(.5+.25+0+.25) = .5
    assert out["tvd_by_order"]["2"] == pytest.approx(0.5)
    assert out["overall"] == pytest.approx((0.25 + 0.5 + 0.5) / 3)
    assert out["k_marginal"] == pytest.approx(500.0)
    assert out["tvd_3way"] is None


def test_disjoint_categories_give_tvd_one() -> None:
    real = pd.DataFrame({"a": ["p", "q"] * 5})
    synth = pd.DataFrame({"a": ["r", "s"] * 5})
    assert peers.mean_tvd(real, synth, orders=(1,))["overall"] == pytest.approx(1.0)


def test_nan_in_synthetic_counts_as_missing_category() -> None:
    real = pd.DataFrame({"a": ["x", ""] * 10})
    synth = pd.DataFrame({"a": pd.Series(["x", None] * 10, dtype=object)})
    assert peers.mean_tvd(real, synth, orders=(1,))["overall"] == 0.0


def test_column_order_is_aligned_and_mismatch_raises() -> None:
    real = pd.DataFrame({"a": ["1", "2"], "b": ["3", "4"]})
    assert peers.mean_tvd(real, real[["b", "a"]], orders=(1, 2))["overall"] == 0.0
    with pytest.raises(ValueError, match="column mismatch"):
        peers.mean_tvd(real, real[["a"]])
    with pytest.raises(ValueError, match="empty"):
        peers.mean_tvd(real, real.iloc[:0])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_real=st.integers(1, 60),
    n_synth=st.integers(1, 60),
    cards=st.lists(st.integers(1, 4), min_size=1, max_size=4),
)
def test_matches_naive_groupby_and_is_symmetric(seed, n_real, n_synth, cards) -> None:
    rng = np.random.default_rng(seed)
    real = _frame(rng, n_real, cards)
    synth = _frame(rng, n_synth, cards)
    out = peers.mean_tvd(real, synth, orders=(1, 2, 3), max_sets=400)
    back = peers.mean_tvd(synth, real, orders=(1, 2, 3), max_sets=400)
    cols = list(real.columns)
    for k in range(1, min(3, len(cols)) + 1):
        naive = np.mean([_naive_tvd(real, synth, list(s)) for s in itertools.combinations(cols, k)])
        assert out["tvd_by_order"][str(k)] == pytest.approx(naive, abs=1e-12)
        assert back["tvd_by_order"][str(k)] == pytest.approx(naive, abs=1e-12)
    assert 0.0 <= out["overall"] <= 1.0


def test_sparse_path_equals_dense_path(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    real, synth = _frame(rng, 500, [30, 40, 25]), _frame(rng, 500, [30, 40, 25])
    dense = peers.mean_tvd(real, synth)
    monkeypatch.setattr(peers, "DENSE_CELL_LIMIT", 0)
    sparse = peers.mean_tvd(real, synth)
    for k in ("1", "2", "3"):
        assert sparse["tvd_by_order"][k] == pytest.approx(dense["tvd_by_order"][k], abs=1e-12)


def test_column_sets_capped_deterministic_and_distinct() -> None:
    sets = peers.column_sets(19, 3, 400, seed=0)
    assert len(sets) == 400 and len(set(sets)) == 400
    assert all(len(s) == 3 and s[0] < s[1] < s[2] < 19 for s in sets)
    assert sets == peers.column_sets(19, 3, 400, seed=0)
    assert sets != peers.column_sets(19, 3, 400, seed=1)
    assert len(peers.column_sets(14, 3, 400, seed=0)) == 364  # below the cap: all of them


# -- adapter and binning ------------------------------------------------------------------------
def test_encoded_table_roundtrip_and_domain_errors_name_no_value() -> None:
    pytest.importorskip("ptsynth.table")
    df = pd.DataFrame({"a": ["x", "", "y"], "b": ["1", "1", ""]})
    table = datasets.to_encoded_table(df, {"a": ["x", "y", "z"], "b": ["0", "1"]})
    assert table.sizes == (4, 3)
    assert table.codes[:, 0].tolist() == [0, 3, 1]  # "" → the missing code (last)
    pd.testing.assert_frame_equal(datasets.from_encoded_table(table), df, check_dtype=False)
    secret = pd.DataFrame({"a": ["x", "VERY-SECRET-VALUE"]})
    with pytest.raises(ValueError) as info:
        datasets.to_encoded_table(secret, {"a": ["x"]})
    assert "VERY-SECRET-VALUE" not in str(info.value) and "'a'" in str(info.value)


def test_never_missing_columns_get_no_missing_code() -> None:
    pytest.importorskip("ptsynth.table")
    df = pd.DataFrame({"a": ["x", "y"], "b": ["1", ""]})
    table = datasets.to_encoded_table(df, None, nullable={"b"})
    assert [d.allows_missing for d in table.domains] == [False, True]
    assert table.sizes == (2, 2)
    with pytest.raises(ValueError, match="'b'.*never missing"):
        datasets.to_encoded_table(df, None, nullable=set())


def test_band_edges() -> None:
    s = pd.Series(["0", "9", "10", "95", "N"], name="AGEP")
    got = datasets._band(s, datasets.AGE_EDGES, datasets.AGE_LABELS, null="N").tolist()
    assert got == ["0-9", "0-9", "10-19", "90-99", ""]
    p = pd.Series(["0", "99", "400", "500", "501", "N"], name="POVPIP")
    got = datasets._band(p, datasets.POVPIP_EDGES, datasets.POVPIP_LABELS, null="N").tolist()
    assert got == ["0-99", "0-99", "400-500", "400-500", "501", ""]
    with pytest.raises(ValueError, match="POVPIP"):
        datasets._band(
            pd.Series(["-5"], name="POVPIP"), datasets.POVPIP_EDGES, datasets.POVPIP_LABELS, "N"
        )


def test_unknown_and_absent_datasets(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        datasets.load("no-such-data")
    with pytest.raises(datasets.DatasetUnavailable, match="not found"):
        datasets.load_adult(tmp_path)


# -- the subprocess machinery ----------------------------------------------------------------
def test_wait_enforces_timeout_and_reports_memory() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    t0 = time.monotonic()
    status, rusage = peers._wait(proc.pid, 0.3)
    proc.returncode = -9  # reaped by _wait
    assert status == "timeout"
    assert time.monotonic() - t0 < 10
    assert rusage is not None and rusage.ru_maxrss > 0


def test_end_to_end_bootstrap_on_generated_data(tmp_path: Path, monkeypatch) -> None:
    tiny = _frame(np.random.default_rng(3), 400, [3, 5, 2, 4])
    bench = datasets.BenchData("tiny", tiny, None, "generated")
    monkeypatch.setitem(datasets.LOADERS, "tiny", lambda: bench)
    out = tmp_path / "peers.json"
    args = ["--data", "tiny", "--methods", "bootstrap", "--out", str(out), "--timeout", "60"]
    assert peers.main(args) == 0
    import json

    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert row["status"] == "ok" and row["method"] == "bootstrap" and row["epsilon"] is None
    assert 0.0 < row["overall"] < 0.2  # a resample is close to, but not exactly, the data
    assert row["peak_mb"] > 0 and row["time_s"] >= 0
    assert "| tiny | - | bootstrap |" in out.with_suffix(".md").read_text()
    # a rerun replaces the entry instead of duplicating it
    assert peers.main(args) == 0
    assert len(json.loads(out.read_text())["results"]) == 1


# -- the real public data (skipped where absent) -------------------------------------------
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "shape"), [("ctdc_vp", (21195, 16)), ("nist", (27253, 19)), ("adult", (48842, 14))]
)
def test_loaders_on_shared_data(name: str, shape: tuple[int, int]) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED} (set PTSYNTH_SHARED_DATA)")
    bench = datasets.load(name)
    df = bench.frame
    assert df.shape == shape
    assert all(df[c].map(type).eq(str).all() for c in df.columns)
    if name == "nist":
        assert not (df == "N").any().any()
        assert set(df["AGEP"].unique()) <= set(datasets.AGE_LABELS)
    assert bench.domains is not None
    for c in df.columns:  # every observed value lies in the stated domain (or is missing)
        assert set(df[c].unique()) - {""} <= set(bench.domains[c]), c
    if name == "ctdc_vp":
        assert "NOT PAID FOR" in bench.domain_source
    assert bench.nullable is not None
    assert datasets.to_encoded_table(df, bench.domains, bench.nullable).n_records == shape[0]
    if name == "adult":
        assert bench.nullable == set()


# -- benchmarks/protect.py: the figures of the k-anonymity benchmark ---------------------------------
def test_protect_benchmark_metrics() -> None:
    import protect as bench  # benchmarks/protect.py
    from ptsynth.table import ColumnDomain, EncodedTable

    doms = (ColumnDomain("a", ("x", "y", "z")), ColumnDomain("b", ("p", "q")),
            ColumnDomain("c", ("u", "v")))
    real = EncodedTable(np.array([[0, 0, 0]] * 30 + [[1, 1, 1]] * 10, dtype=np.int8), doms)
    assert bench.mean_tvd(real, real, [(0, 1, 2)]) == 0.0
    # "y" (10 real records = 2k for k = 5) is blanked in every synthetic record
    synth = EncodedTable(np.array([[0, 0, 0]] * 30 + [[3, 1, 1]] * 10, dtype=np.int8), doms)
    u = bench.utility(real, synth, [0, 1], 5)
    assert u["lost"] == 1 and u["blank"]["a"] == 0.25 and u["blank"]["b"] == 0.0
    assert u["tvd1_qi"] == pytest.approx((0.25 + 0.0) / 2)
    assert bench.mean_tvd(real, synth, [(0, 1, 2)]) == pytest.approx(0.25)
