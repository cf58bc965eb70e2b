"""k-anonymity checks and enforcement (ptsynth.release.protect)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptsynth.privacy import seeded_random
from ptsynth.release.protect import STEPS, check_k_anonymity, enforce_k_anonymity
from ptsynth.table import ColumnDomain, EncodedTable
from synthetic_tables import make_table


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


def test_enforce_recodes_rare_values_and_keeps_the_rest():
    t = small_table()
    out, rep = enforce_k_anonymity(
        t, ["age", "gender", "country"], k=3, reporting_length=2, rng=seeded_random(0)
    )
    assert rep["check"]["ok"]
    assert rep["dropped_records"] == 0 and out.n_records == t.n_records
    # only the three offending rows changed, each in one value, and none towards missing
    changed = out.codes != t.codes
    assert set(np.flatnonzero(changed.any(axis=1))) == {10, 11, 12}
    assert changed.sum() == 3 and rep["recoded_cells_total"] == 3
    assert rep["suppressed_cells"] == 0 and rep["records_with_suppression"] == 0
    assert rep["violating_records_before"] == 3 and rep["records_changed"] == 3
    # the record with the rare age now holds an age that occurs with its other values
    assert out.codes[10, 0] in (0, 2) or out.codes[10, 2] != 0
    assert rep["blank_share"]["age"]["after"] == rep["blank_share"]["age"]["before"]


def test_suppression_only_is_the_earlier_method():
    t = small_table()
    out, rep = enforce_k_anonymity(
        t, ["age", "gender", "country"], k=3, reporting_length=2, rng=seeded_random(0), steps=()
    )
    assert rep["check"]["ok"] and rep["recoded_cells_total"] == 0
    changed = out.codes != t.codes
    assert set(np.flatnonzero(changed.any(axis=1))) == {10, 11, 12}
    miss = np.array([d.missing_code if d.allows_missing else -1 for d in t.domains])
    assert np.all(out.codes[changed] == np.broadcast_to(miss, out.codes.shape)[changed])
    assert rep["suppressed_cells"] == int(changed.sum()) == 3
    assert rep["method"] == "suppress or drop"
    with pytest.raises(ValueError, match="unknown enforcement steps"):
        enforce_k_anonymity(t, [0], k=2, reporting_length=1, rng=seeded_random(0),
                            steps=("blank",))


def test_rows_dropped_when_only_never_missing_columns_violate():
    doms = (
        ColumnDomain("a", ("x", "y"), allows_missing=False),
        ColumnDomain("b", ("p", "q")),
    )
    codes = np.array([[0, 0]] * 6 + [[1, 0]], dtype=np.int8)
    t = EncodedTable(codes, doms)
    # suppression only: the rare value cannot be blanked, so the record goes
    out, rep = enforce_k_anonymity(t, ["a", "b"], k=3, reporting_length=2, rng=seeded_random(0),
                                   steps=())
    assert rep["dropped_records"] == 1 and out.n_records == 6
    assert check_k_anonymity(out, ["a", "b"], k=3, reporting_length=2)["ok"]
    # by default the record takes the common value instead, and every record stays
    out, rep = enforce_k_anonymity(t, ["a", "b"], k=3, reporting_length=2, rng=seeded_random(0))
    assert rep["dropped_records"] == 0 and out.n_records == 7
    assert rep["recoded_cells"] == {"a": 1, "b": 0}
    assert (out.codes == 0).all()


def test_k_anonymous_table_unchanged():
    t = small_table().take(np.arange(10))
    out, rep = enforce_k_anonymity(t, [0, 1, 2], k=5, reporting_length=3, rng=seeded_random(1))
    np.testing.assert_array_equal(out.codes, t.codes)
    assert rep["suppressed_cells"] == 0 and rep["rounds"] == 0 and rep["records_changed"] == 0


def test_only_quasi_identifiers_change_and_categories_are_kept():
    """A generated table with a rare-ish category: the QI values move, nothing else does, and
    a category holding at least k records is still there afterwards."""
    t = make_table(3000, 8, seed=4, max_size=8)
    qi = [0, 2, 3, 5]
    out, rep = enforce_k_anonymity(t, qi, k=8, reporting_length=3, rng=seeded_random(2))
    assert rep["check"]["ok"] and rep["dropped_records"] == 0
    other = [j for j in range(t.n_columns) if j not in qi]
    np.testing.assert_array_equal(out.codes[:, other], t.codes[:, other])
    for j in qi:
        before = np.bincount(t.codes[:, j], minlength=t.domains[j].size)
        after = np.bincount(out.codes[:, j], minlength=t.domains[j].size)
        mc = t.domains[j].missing_code
        kept = [v for v in range(t.domains[j].size) if v != mc and before[v] >= 8]
        assert all(after[v] > 0 for v in kept)
    assert rep["categories_lost"] == {}


@pytest.mark.parametrize("steps", [STEPS, ()])
def test_terminates_when_no_k_records_can_share_anything(steps):
    """Fewer records than k, every value unique, a column that forbids missing: the only
    k-anonymous outcome is no combination at all, and enforcement reaches it."""
    doms = (ColumnDomain("a", tuple("uvwxyz"), allows_missing=False),
            ColumnDomain("b", tuple("pqrstu")), ColumnDomain("c", tuple("ghijkl")))
    codes = np.array([[i, i, (i + 1) % 6] for i in range(5)], dtype=np.int8)
    t = EncodedTable(codes, doms)
    out, rep = enforce_k_anonymity(t, ["a", "b", "c"], k=10, reporting_length=3,
                                   rng=seeded_random(0), redraw=_redraw_from(0, doms), steps=steps)
    assert rep["check"]["ok"] and rep["check"]["smallest_count"] is None
    assert out.n_records == 0 and rep["dropped_records"] == 5


def test_deterministic_for_a_seed():
    t = make_table(1500, 6, seed=9)
    a, ra = enforce_k_anonymity(t, [0, 1, 2, 3], k=6, reporting_length=3, rng=seeded_random(3))
    b, rb = enforce_k_anonymity(t, [0, 1, 2, 3], k=6, reporting_length=3, rng=seeded_random(3))
    np.testing.assert_array_equal(a.codes, b.codes)
    assert ra == rb


def test_in_place_gives_the_same_result_in_the_input_array():
    t = make_table(1000, 6, seed=11)
    ref, rref = enforce_k_anonymity(t, [0, 1, 2, 3], k=6, reporting_length=3,
                                    rng=seeded_random(4))
    mine = EncodedTable(t.codes.copy(), t.domains)
    out, rep = enforce_k_anonymity(mine, [0, 1, 2, 3], k=6, reporting_length=3,
                                   rng=seeded_random(4), in_place=True)
    assert rep == rref and rep["records_changed"] > 0
    np.testing.assert_array_equal(out.codes, ref.codes)
    if rep["dropped_records"] == 0:
        assert out.codes is mine.codes
    assert not np.array_equal(mine.codes, t.codes)


def test_redraws_come_from_the_model_only():
    """Records the redraw step places are the model's draws, whole; nothing else enters."""
    base = make_table(400, 5, seed=1)
    codes = base.codes.copy()
    codes[:, 4] = 0  # the input never holds value 1 in the last (non-QI) column
    t = EncodedTable(codes, base.domains)
    model_rows = _redraw_from(2, t.domains)(5000)  # "the model": records unrelated to t
    marker = 1  # ... and every record the model draws does
    drawn: list[np.ndarray] = []
    g = np.random.default_rng(0)

    def redraw(m: int) -> EncodedTable:
        rows = model_rows.codes[g.integers(0, model_rows.n_records, m)].copy()
        rows[:, 4] = marker
        drawn.append(rows)
        return EncodedTable(rows, t.domains)

    out, rep = enforce_k_anonymity(t, [0, 1, 2, 3], k=4, reporting_length=2,
                                   rng=seeded_random(0), redraw=redraw, steps=("redraw",))
    with pytest.raises(ValueError, match="other columns or domains"):
        enforce_k_anonymity(t, [0, 1, 2, 3], k=4, reporting_length=2, rng=seeded_random(0),
                            redraw=lambda m: small_table().take(np.zeros(m, np.int64)),
                            steps=("redraw",))
    assert rep["check"]["ok"]
    from_model = out.codes[:, 4] == marker
    assert int(from_model.sum()) == rep["records_redrawn"] > 0
    pool = {tuple(r) for block in drawn for r in block}
    assert all(tuple(r) in pool for r in out.codes[from_model])
    # every other record is one of the input's, in order, QI values possibly changed
    kept = out.codes[~from_model]
    assert (kept[:, 4] != marker).all()


def test_model_redraw_keeps_the_synthesizers_diagnostics():
    from ptsynth.release.protect import model_redraw

    class Model:
        def __init__(self) -> None:
            self.diagnostics = {"last_sample": 0}

        def sample(self, n: int, rng) -> EncodedTable:
            self.diagnostics = {"last_sample": n}
            return small_table().take(np.zeros(n, dtype=np.int64))

    model = Model()
    draw = model_redraw(model, seeded_random(0))
    assert draw(5).n_records == 5
    assert model.diagnostics == {"last_sample": 0}


def test_sparse_counts_and_unpacked_profiles_give_the_same_result(monkeypatch):
    from ptsynth.release import qi_counts

    t = make_table(800, 6, seed=3)
    cols = [0, 1, 2, 4]
    ref, rref = enforce_k_anonymity(t, cols, k=5, reporting_length=3, rng=seeded_random(8))
    monkeypatch.setattr(qi_counts, "DENSE_CELLS", 0)  # every subset as a sorted table
    monkeypatch.setattr(qi_counts, "MAX_CELLS", 2)  # profiles through a MultiIndex
    out, rep = enforce_k_anonymity(t, cols, k=5, reporting_length=3, rng=seeded_random(8))
    patched_check = check_k_anonymity(t, cols, k=5, reporting_length=3)
    monkeypatch.undo()
    np.testing.assert_array_equal(out.codes, ref.codes)
    assert rep == rref
    assert patched_check == check_k_anonymity(t, cols, k=5, reporting_length=3)


def test_memory_is_linear_in_records():
    """No per-record array per column subset: peak traced memory grows like n, and stays a few
    hundred bytes per record at 7 QIs and reporting length 3 (35 three-column subsets)."""
    import tracemalloc

    peaks = []
    for n in (25_000, 100_000):
        t = make_table(n, 10, seed=5, max_size=12)
        tracemalloc.start()
        enforce_k_anonymity(t, list(range(7)), k=10, reporting_length=3, rng=seeded_random(0))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 5 * peaks[0]
    assert peaks[1] / 100_000 < 400


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


def _redraw_from(seed: int, domains):
    """A stand-in model: draws uniformly over the domains (never the table's records)."""
    g = np.random.default_rng(seed)

    def redraw(m: int) -> EncodedTable:
        cols = [g.integers(0, d.size, m) for d in domains]
        return EncodedTable(np.stack(cols, axis=1).reshape(m, len(domains)), domains)

    return redraw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=tables(), k=st.integers(1, 6), L=st.integers(1, 4), seed=st.integers(0, 1000),
       steps=st.sampled_from([STEPS, (), ("recode",), ("copy", "aggregate"), ("redraw",)]))
def test_enforce_then_check_is_ok(t, k, L, seed, steps):
    """Always k-anonymous, always terminates, and the report accounts for every change."""
    cols = list(range(t.n_columns))
    out, rep = enforce_k_anonymity(t, cols, k=k, reporting_length=L, rng=seeded_random(seed),
                                   redraw=_redraw_from(seed, t.domains), steps=steps)
    check = check_k_anonymity(out, cols, k=k, reporting_length=L)
    assert check["ok"] and rep["check"] == check
    smallest, _ = brute_force_min(out, cols, L)
    assert smallest is None or smallest >= k
    assert check["smallest_count"] == smallest
    assert rep["n_records_out"] + rep["dropped_records"] == t.n_records == rep["n_records_in"]
    assert 0 <= rep["records_changed"] <= t.n_records
    if rep["dropped_records"] == 0 and rep["records_redrawn"] == 0:
        changed = out.codes != t.codes
        miss = np.array([d.missing_code if d.allows_missing else -1 for d in t.domains])
        blanked = changed & (out.codes == miss[None, :])
        assert int(blanked.sum()) == rep["suppressed_cells"]
        assert int((changed & ~blanked).sum()) == rep["recoded_cells_total"]
        for j, d in enumerate(t.domains):
            assert rep["suppressed_by_column"][d.name] == int(blanked[:, j].sum())
            assert rep["recoded_cells"][d.name] == int((changed & ~blanked)[:, j].sum())
        assert rep["records_changed"] == int(changed.any(axis=1).sum())
        assert rep["records_with_suppression"] == int(blanked.any(axis=1).sum())
    if not steps:
        assert rep["recoded_cells_total"] == 0 and rep["records_redrawn"] == 0
    if rep["violating_records_before"] == 0:
        np.testing.assert_array_equal(out.codes, t.codes)


@st.composite
def tables_with_zeros(draw):
    """A table, structural zeros over its columns (boxes of non-missing codes), and the table
    without the records the zeros forbid (the synthesizers never draw those)."""
    from ptsynth.structure import StructuralZero

    t = draw(tables())
    names = [d.name for d in t.domains]
    zeros = []
    for _ in range(draw(st.integers(1, 3))):
        cols = draw(st.lists(st.integers(0, t.n_columns - 1), min_size=1, max_size=2,
                             unique=True))
        sets = []
        for j in cols:
            n_labels = len(t.domains[j].labels)
            sets.append(tuple(sorted(draw(st.sets(st.integers(0, n_labels - 1), min_size=1,
                                                  max_size=max(1, n_labels - 1))))))
        zeros.append(StructuralZero(tuple(names[j] for j in cols), tuple(sets)))
    from ptsynth.structure import violations

    return t.take(np.flatnonzero(~violations(zeros, t.codes, names))), zeros


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tz=tables_with_zeros(), k=st.integers(1, 5), L=st.integers(1, 3),
       seed=st.integers(0, 1000), n_qi=st.integers(1, 4))
def test_no_record_is_moved_into_a_structural_zero(tz, k, L, seed, n_qi):
    """Zeros may span QI and other columns, and more columns than the reporting length."""
    from ptsynth.structure import violations

    t, zeros = tz
    cols = list(range(min(n_qi, t.n_columns)))
    redraw = _redraw_from(seed, t.domains)  # a "model" that ignores the zeros: filtered
    out, rep = enforce_k_anonymity(t, cols, k=k, reporting_length=L, rng=seeded_random(seed),
                                   redraw=redraw, structural_zeros=zeros)
    assert rep["check"]["ok"]
    assert not violations(zeros, out.codes, [d.name for d in out.domains]).any()


def test_recoding_respects_a_hierarchy_zero():
    """An age band maps onto majority status (not a QI): a record leaving a rare adult band
    takes the other adult band, never a minor's band."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.structure import violations

    cfg = ReleaseConfig.from_dict({
        "dataset": {"name": "z"}, "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "release": {"reporting_length": 1, "k": 5},
        "columns": [
            {"name": "band", "kind": "ordinal", "values": ["0--8", "9--17", "18--29", "30+"],
             "quasi_identifier": True},
            {"name": "majority", "kind": "categorical", "values": ["Adult", "Minor"],
             "missing": "forbid"},
        ],
        "hierarchies": [{"column": "band", "parent": "majority",
                         "map": {"0--8": "Minor", "9--17": "Minor", "18--29": "Adult",
                                 "30+": "Adult"}}],
    })
    doms = cfg.schema.encoded_domains()
    # 40 adults 18--29, 40 minors 9--17, 3 adults 30+ (a rare band)
    codes = np.array([[2, 0]] * 40 + [[1, 1]] * 40 + [[3, 0]] * 3, dtype=np.int8)
    t = EncodedTable(codes, doms)
    zeros, names = cfg.schema.structural_zeros, [d.name for d in doms]
    assert zeros and not violations(zeros, t.codes, names).any()
    for seed in range(8):
        out, rep = enforce_k_anonymity(t, ["band"], k=5, reporting_length=1,
                                       rng=seeded_random(seed), structural_zeros=zeros)
        assert rep["check"]["ok"] and rep["recoded_cells_total"] == 3
        assert not violations(zeros, out.codes, names).any()
        np.testing.assert_array_equal(out.codes[-3:], [[2, 0]] * 3)


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


# -- the utility targets, on a fitted model (slow) ----------------------------------------
def _tvd3(real: EncodedTable, synth: EncodedTable) -> float:
    """Mean 3-way TVD over all column triples (the private report's figure)."""
    from ptsynth.counting import cell_key

    out = []
    for cols in itertools.combinations(range(real.n_columns), 3):
        sizes = [real.domains[c].size for c in cols]
        cells = int(np.prod(sizes))
        a = np.bincount(cell_key(real.codes[:, list(cols)], sizes), minlength=cells)
        b = np.bincount(cell_key(synth.codes[:, list(cols)], sizes), minlength=cells)
        out.append(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())
    return float(np.mean(out))


def _targets(data, config, k: int = 10, seed: int = 1):
    """(real, synthetic before, after default enforcement, after suppression only, report)."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.privacy import Accountant
    from ptsynth.release import pipeline

    cfg = ReleaseConfig.load(config)
    rng = seeded_random(seed)
    real = pipeline.read(data, cfg)
    synth = pipeline.measure(cfg, real, Accountant(1.0, 1e-6, rng=rng, release_id="t"))
    before = pipeline.synthesize(cfg, synth, rng, [])
    qi = list(cfg.schema.quasi_identifiers)
    zeros = cfg.schema.structural_zeros
    after, rep = enforce_k_anonymity(before, qi, k=k, reporting_length=3, rng=seeded_random(2),
                                     structural_zeros=zeros)
    supp, _ = enforce_k_anonymity(before, qi, k=k, reporting_length=3, rng=seeded_random(2),
                                  steps=(), structural_zeros=zeros)
    return real, before, after, supp, rep, real.indices(qi)


def _blank_rise(before: EncodedTable, after: EncodedTable, qi) -> float:
    rise = 0.0
    for j in qi:
        mc = before.domains[j].missing_code
        if mc is not None:
            rise = max(rise, float((after.codes[:, j] == mc).mean() - (before.codes[:, j] == mc).mean()))
    return rise


def _categories_lost(real: EncodedTable, after: EncodedTable, qi, k: int) -> int:
    lost = 0
    for j in qi:
        size, mc = real.domains[j].size, real.domains[j].missing_code
        r = np.bincount(real.codes[:, j], minlength=size)
        a = np.bincount(after.codes[:, j], minlength=size)
        lost += sum(1 for v in range(size) if v != mc and r[v] >= 2 * k and a[v] == 0)
    return lost


@pytest.mark.slow
def test_targets_on_the_demo_data(tmp_path):
    """README demo, k = 10, length 3, epsilon 1: no blank share up by more than 2 points, every
    category with at least 2k real records kept, nobody dropped, and the 3-way TVD close to
    before: +9.7% here (seed 1); +9% to +13% over seeds 1-3 in benchmarks/README.md, where
    78% of the synthetic records sit in a combination seen fewer than 10 times (blanking
    costs +400%). Without the rebalance step: +16% to +22%."""
    from ptsynth.demo import demo_config_path, generate_demo

    path = tmp_path / "demo.csv"
    generate_demo(20_000, 1, path)
    real, before, after, supp, rep, qi = _targets(path, demo_config_path())
    assert rep["check"]["ok"] and rep["dropped_records"] == 0
    assert _blank_rise(before, after, qi) <= 0.02
    assert _categories_lost(real, after, qi, 10) == 0
    t0, t1, ts = _tvd3(real, before), _tvd3(real, after), _tvd3(real, supp)
    assert t1 <= 1.12 * t0
    assert ts - t0 > 10 * (t1 - t0)  # blanking, the earlier method, costs far more


@pytest.mark.slow
@pytest.mark.shared_data
def test_targets_on_ctdc_vp(shared_data, tmp_path):
    """The issue's targets in full on the CTDC victim-perpetrator data (k = 10, length 3)."""
    from pathlib import Path

    data = shared_data / "ctdc_vp" / "CTDC_VPsynthetic_condensed.csv"
    if not data.exists():
        pytest.skip("CTDC VP synthetic data absent")
    config = Path(__file__).resolve().parents[2] / "configs" / "ctdc_vp.toml"
    real, before, after, supp, rep, qi = _targets(data, config)
    assert rep["check"]["ok"] and rep["dropped_records"] == 0
    assert _blank_rise(before, after, qi) <= 0.02
    assert _categories_lost(real, after, qi, 10) == 0
    assert _tvd3(real, after) <= 1.10 * _tvd3(real, before)
