"""The last step of k-anonymity enforcement (ptsynth.release.rebalance): moves back toward the
table before enforcement that keep the table k-anonymous."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptsynth.privacy import seeded_random
from ptsynth.release import rebalance as rb
from ptsynth.release.protect import STEPS, check_k_anonymity, enforce_k_anonymity
from ptsynth.structure import StructuralZero, violations
from ptsynth.table import ColumnDomain, EncodedTable
from synthetic_tables import make_table

WITHOUT = tuple(s for s in STEPS if s != "rebalance")


def _missing(domains, qi) -> list[int]:
    return [-1 if domains[j].missing_code is None else domains[j].missing_code for j in qi]


def _objective(before: np.ndarray, after: np.ndarray, qi, sizes, L, partners) -> float:
    """The module's objective, recomputed from scratch: weighted L1 of QI marginals up to L
    and of the QI-by-partner tables, against the table before."""
    total = 0.0
    for ell in range(1, min(L, len(qi)) + 1):
        w = rb.W_ONE if ell == 1 else rb.W_PAIR if ell == 2 else rb.W_HIGHER
        for cols in itertools.combinations(qi, ell):
            cells = int(np.prod([sizes[c] for c in cols]))
            key_b = np.ravel_multi_index(before[:, cols].T, [sizes[c] for c in cols])
            key_a = np.ravel_multi_index(after[:, cols].T, [sizes[c] for c in cols])
            total += w * np.abs(np.bincount(key_a, minlength=cells)
                                - np.bincount(key_b, minlength=cells)).sum()
    for j, c in partners:
        shape = (sizes[j], sizes[c])
        a = np.bincount(np.ravel_multi_index(after[:, [j, c]].T, shape), minlength=shape[0] * shape[1])
        b = np.bincount(np.ravel_multi_index(before[:, [j, c]].T, shape), minlength=shape[0] * shape[1])
        total += rb.W_PARTNER * np.abs(a - b).sum()
    return float(total)


def run(before: EncodedTable, after: EncodedTable, qi: list[int], k: int, L: int, *,
        zeros=(), floors=None, seed: int = 0, partners=None):
    """Call :func:`rebalance` on ``after`` (k-anonymous) the way the enforcer does; returns
    the new codes and the rows changed."""
    sizes = [d.size for d in before.domains]
    bq, aq = np.asarray(before.codes)[:, qi], np.asarray(after.codes)[:, qi]
    profiles = np.unique(np.concatenate([bq, aq]), axis=0)
    index = {tuple(p): i for i, p in enumerate(profiles)}
    weight_now = np.bincount([index[tuple(r)] for r in aq], minlength=len(profiles))
    weight_before = np.bincount([index[tuple(r)] for r in bq], minlength=len(profiles))
    others = [c for c in range(before.n_columns) if c not in qi]
    if partners is None:
        partners = [(j, c) for j in qi for c in others]
    tables = {}
    for j, c in partners:
        shape = (sizes[j], sizes[c])

        def table(codes, j=j, c=c, shape=shape):
            flat = np.ravel_multi_index(np.asarray(codes)[:, [j, c]].T, shape)
            return np.bincount(flat, minlength=shape[0] * shape[1]).reshape(shape).astype(float)

        tables[(j, c)] = (table(after.codes), table(before.codes))
    if floors is None:
        floors = [np.zeros(sizes[j]) for j in qi]
    names = [d.name for d in before.domains]
    full = np.array(after.codes, copy=True)

    def impossible(codes):
        return violations(list(zeros), codes, names)

    rows, codes = rb.rebalance(
        full, np.arange(full.shape[0]), bq, qi, sizes, _missing(before.domains, qi), k=k,
        reporting_length=L, floors=floors, profiles=profiles, weight_now=weight_now,
        weight_before=weight_before, partners=tables, zero_values=None,
        rng_uniform=seeded_random(seed).uniform, impossible=impossible if zeros else None)
    np.testing.assert_array_equal(full, np.asarray(after.codes))  # left to the caller
    full[rows] = codes
    return full, rows, list(tables)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), k=st.integers(2, 6), L=st.integers(1, 3),
       n=st.integers(60, 400), n_qi=st.integers(2, 4), small_space=st.booleans(),
       few_candidates=st.booleans())
def test_stays_k_anonymous_and_never_worsens_the_objective(seed, k, L, n, n_qi, small_space,
                                                           few_candidates):
    """Also with group moves off (cells beyond the dense limit) and with a candidate sample."""
    t = make_table(n, 6, seed=seed, max_size=5)
    qi = list(range(n_qi))
    after, _ = enforce_k_anonymity(t, qi, k=k, reporting_length=L, rng=seeded_random(seed),
                                   steps=WITHOUT)
    if after.n_records != t.n_records:  # dropped records: no row-aligned "before" here
        return
    with pytest.MonkeyPatch.context() as mp:
        if small_space:
            mp.setattr(rb, "SPACE_CELLS", 1)
        if few_candidates:
            mp.setattr(rb, "MAX_CANDIDATES", 16)
        full, rows, partners = run(t, after, qi, k, L, seed=seed)
    out = EncodedTable(full, t.domains)
    assert check_k_anonymity(out, qi, k=k, reporting_length=L)["ok"]
    changed = (full != np.asarray(after.codes)).any(axis=1)
    assert set(np.flatnonzero(changed)) <= set(rows.tolist())
    # only QI values change, and never to missing
    others = [c for c in range(t.n_columns) if c not in qi]
    assert (full[:, others] == np.asarray(after.codes)[:, others]).all()
    # a new blank only ever comes from a group taking a profile its records had before
    was = np.asarray(after.codes)
    blanked = np.zeros(t.n_records, dtype=bool)
    for j in qi:
        mc = t.domains[j].missing_code
        if mc is not None:
            blanked |= (full[:, j] == mc) & (was[:, j] != mc)
    if small_space:
        assert not blanked.any()  # single-value moves never blank
    for r in np.flatnonzero(blanked):
        assert (np.asarray(t.codes)[:, qi] == full[r, qi]).all(axis=1).any()
    sizes = [d.size for d in t.domains]
    before_obj = _objective(np.asarray(t.codes), np.asarray(after.codes), qi, sizes, L, partners)
    after_obj = _objective(np.asarray(t.codes), full, qi, sizes, L, partners)
    assert after_obj <= before_obj + 1e-9


def _domains(sizes: list[int]) -> tuple[ColumnDomain, ...]:
    return tuple(ColumnDomain(f"c{i}", tuple(f"v{v}" for v in range(s)), allows_missing=False)
                 for i, s in enumerate(sizes))


def test_a_pair_emptied_by_enforcement_is_refilled_by_a_group():
    """Before: pair (c0=0, c1=0) holds 8 records, spread over c2 = 0..3 (each triple rare).
    Enforcement moved them all to c0 = 1. Groups of k of them take back (0, 0), each with
    one common c2 (a triple of k records), which every marginal up to the pair prefers."""
    k, L = 4, 3
    doms = _domains([3, 2, 4])
    common = [[1, 0, v] for v in range(4) for _ in range(6)] + [[2, 1, v] for v in range(4) for _ in range(6)]
    before_rows = common + [[0, 0, v] for v in (0, 0, 0, 1, 1, 2, 3, 0)]
    after_rows = common + [[1, 0, v] for v in (0, 0, 0, 1, 1, 2, 3, 0)]
    before = EncodedTable(np.array(before_rows, dtype=np.int8), doms)
    after = EncodedTable(np.array(after_rows, dtype=np.int8), doms)
    assert check_k_anonymity(after, [0, 1, 2], k=k, reporting_length=L)["ok"]
    full, rows, _ = run(before, after, [0, 1, 2], k, L)
    out = EncodedTable(full, doms)
    assert check_k_anonymity(out, [0, 1, 2], k=k, reporting_length=L)["ok"]
    pair = int(((full[:, 0] == 0) & (full[:, 1] == 0)).sum())
    assert pair == 8  # two groups: the pair is whole again, with the records it had
    assert ((full[48:, 0] == 0) & (full[48:, 1] == 0)).all()
    with pytest.MonkeyPatch.context() as mp:  # single-value moves alone cannot do it
        mp.setattr(rb, "SPACE_CELLS", 1)
        full, rows, _ = run(before, after, [0, 1, 2], k, L)
    assert int(((full[:, 0] == 0) & (full[:, 1] == 0)).sum()) == 0


def test_single_value_moves_restore_a_columns_shares():
    """Enforcement shifted 10 records of c0 from value 1 to 0 (where every combination has
    room); moving them back restores the column's shares (the pairs to within a record: the
    heavier 1-way table is served first) and keeps the table k-anonymous."""
    k, L = 3, 2
    doms = _domains([2, 2])
    rows_before = [[0, 0]] * 20 + [[0, 1]] * 20 + [[1, 0]] * 15 + [[1, 1]] * 15
    rows_after = ([[0, 0]] * 20 + [[0, 1]] * 20 + [[0, 0]] * 5 + [[1, 0]] * 10
                  + [[0, 1]] * 5 + [[1, 1]] * 10)
    before = EncodedTable(np.array(rows_before, dtype=np.int8), doms)
    after = EncodedTable(np.array(rows_after, dtype=np.int8), doms)
    full, rows, _ = run(before, after, [0, 1], k, L)
    counts = np.bincount(full[:, 0] * 2 + full[:, 1], minlength=4)
    np.testing.assert_array_equal(np.bincount(full[:, 0]), [40, 30])
    assert np.abs(counts - [20, 20, 15, 15]).max() <= 1
    assert rows.size == 10 and check_k_anonymity(EncodedTable(full, doms), [0, 1], k=k,
                                                 reporting_length=L)["ok"]


def test_protected_floor_holds():
    """A category at its floor keeps its records even when the objective would move them."""
    k, L = 3, 1
    doms = _domains([2, 2])
    rows_before = [[0, 0]] * 10 + [[1, 0]] * 30
    rows_after = [[0, 0]] * 20 + [[1, 0]] * 20
    before = EncodedTable(np.array(rows_before, dtype=np.int8), doms)
    after = EncodedTable(np.array(rows_after, dtype=np.int8), doms)
    floors = [np.array([20.0, 0.0])]  # value 0 of c0 may not fall below 20
    full, rows, _ = run(before, after, [0], k, L, floors=floors)
    assert (full[:, 0] == 0).sum() == 20 and rows.size == 0
    full, rows, _ = run(before, after, [0], k, L)  # without the floor they move back
    assert (full[:, 0] == 0).sum() == 10


def test_no_move_into_a_structural_zero():
    """Group and single-value moves both skip records that would land in an impossible
    combination (here: c0 = 0 with c2 = 1, c2 not a QI)."""
    k, L = 3, 2
    doms = _domains([2, 2, 2])
    rows_before = [[0, 0, 0]] * 10 + [[0, 1, 0]] * 10 + [[1, 0, 1]] * 10 + [[1, 1, 1]] * 10
    rows_after = [[0, 0, 0]] * 5 + [[0, 1, 0]] * 10 + [[1, 0, 0]] * 5 + [[1, 0, 1]] * 10 + [[1, 1, 1]] * 10
    before = EncodedTable(np.array(rows_before, dtype=np.int8), doms)
    after = EncodedTable(np.array(rows_after, dtype=np.int8), doms)
    zero = StructuralZero(("c0", "c2"), ((0,), (1,)))
    full, rows, _ = run(before, after, [0, 1], k, L, zeros=[zero])
    assert not violations([zero], full, [d.name for d in doms]).any()
    # the 5 records with c2 = 0 may go back to c0 = 0; none with c2 = 1 does
    assert ((full[:, 0] == 0) & (full[:, 2] == 0)).sum() == 20


def test_a_defective_rebalance_is_undone(monkeypatch):
    """Should the last step ever break k-anonymity, the table from before it is released."""
    t = make_table(600, 6, seed=11, max_size=6)
    qi = [0, 1, 2, 3]
    base, _ = enforce_k_anonymity(t, qi, k=5, reporting_length=3, rng=seeded_random(3),
                                  steps=WITHOUT)

    def broken(full, live, *args, **kwargs):
        rows = live[:3]
        codes = np.array(full[rows], copy=True)
        codes[:, 0] = 0
        codes[0, qi] = [d.size - 1 for d in (t.domains[j] for j in qi)]  # a lone profile
        return rows, codes

    monkeypatch.setattr("ptsynth.release.protect.rebalance", broken)
    out, rep = enforce_k_anonymity(t, qi, k=5, reporting_length=3, rng=seeded_random(3))
    assert rep["check"]["ok"] and rep["records_rebalanced"] == 0
    assert rep["rebalance_note"].startswith("undone")
    np.testing.assert_array_equal(out.codes, base.codes)


def test_a_failing_rebalance_is_skipped(monkeypatch):
    """An exception in the last step leaves the k-anonymous table it was given, and says so."""
    t = make_table(600, 6, seed=11, max_size=6)
    qi = [0, 1, 2, 3]
    base, _ = enforce_k_anonymity(t, qi, k=5, reporting_length=3, rng=seeded_random(3),
                                  steps=WITHOUT)

    def broken(*args, **kwargs):
        raise IndexError("a defect")

    monkeypatch.setattr("ptsynth.release.protect.rebalance", broken)
    out, rep = enforce_k_anonymity(t, qi, k=5, reporting_length=3, rng=seeded_random(3))
    assert rep["check"]["ok"] and rep["records_rebalanced"] == 0
    assert rep["rebalance_note"] == "skipped: internal error (IndexError)"
    np.testing.assert_array_equal(out.codes, base.codes)


def test_enforcement_reports_the_rebalanced_records():
    t = make_table(600, 6, seed=11, max_size=6)
    qi = [0, 1, 2, 3]
    out, rep = enforce_k_anonymity(t, qi, k=5, reporting_length=3, rng=seeded_random(3))
    base, rep0 = enforce_k_anonymity(t, qi, k=5, reporting_length=3, rng=seeded_random(3),
                                     steps=WITHOUT)
    assert rep["check"]["ok"] and rep0["records_rebalanced"] == 0
    assert rep["method"].endswith("suppress or drop, rebalance")
    differs = (np.asarray(out.codes) != np.asarray(base.codes)).any(axis=1)
    assert rep["records_rebalanced"] == int(differs.sum()) > 0 and rep["rebalance_note"] == ""
