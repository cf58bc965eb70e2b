"""Attacks: predicate counting vs brute force; copies are caught; noise is not flagged."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.evaluate.attacks import _PredicateCounter, inference, linkability, singling_out
from ptsynth.table import ColumnDomain, EncodedTable

DOMS = (
    ColumnDomain("c", ("a", "b", "c")),
    ColumnDomain("o", tuple(str(i) for i in range(5)), kind="ordinal"),
    ColumnDomain("n", tuple(str(i) for i in range(4)), kind="numeric", allows_missing=False),
    ColumnDomain("s", ("x", "y")),
)


def _random_table(rng: np.random.Generator, n: int) -> EncodedTable:
    return EncodedTable(np.stack([rng.integers(0, d.size, n) for d in DOMS], 1), DOMS)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 80))
def test_predicate_counter_equals_brute_force(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    t = _random_table(rng, n)
    q = 50
    cols = np.sort(np.argsort(rng.random((q, 4)), axis=1)[:, :2], axis=1)
    sizes = np.array([d.size for d in DOMS])
    missing = np.array([d.missing_code if d.missing_code is not None else -1 for d in DOMS])
    lo = rng.integers(0, sizes[cols])
    hi = np.maximum(lo, rng.integers(0, sizes[cols]))
    neg = rng.random((q, 2)) < 0.3
    got = _PredicateCounter(t.codes, DOMS).count(cols, lo, hi, neg)
    want = np.zeros(q, dtype=int)
    for i in range(q):
        ok = np.ones(n, dtype=bool)
        for a in range(2):
            x = t.codes[:, cols[i, a]]
            m = missing[cols[i, a]]
            is_m = x == m
            if lo[i, a] == m and m >= 0:
                hit = is_m if not neg[i, a] else is_m
            else:
                top = m - 1 if m >= 0 else sizes[cols[i, a]] - 1
                inside = (x >= lo[i, a]) & (x <= min(hi[i, a], top)) & ~is_m
                hit = (~inside & ~is_m) if neg[i, a] else inside
            ok &= hit
        want[i] = ok.sum()
    np.testing.assert_array_equal(got, want)


def test_copy_is_caught_and_independent_noise_is_not() -> None:
    rng = np.random.default_rng(5)
    wide = (*DOMS, *(ColumnDomain(f"w{i}", tuple("abcdef")) for i in range(6)))

    def make(n: int) -> EncodedTable:
        return EncodedTable(np.stack([rng.integers(0, d.size, n) for d in wide], 1), wide)

    real, control, fresh = make(400), make(400), make(400)
    aux = ["c", "o", "n", *(f"w{i}" for i in range(6))]
    # synthetic = the real records themselves: the aux columns find each record exactly
    inf = inference(real, real, control, "s", aux, n_attacks=200, seed=0)
    assert inf["attack_rate"]["n_success"] == 200
    assert inf["risk"]["value"] > 0.5 and inf["beats_baseline_significantly"]
    link = linkability(real, real, control, (["c", "o", "w0", "w1", "w2"], ["n", "s", "w3", "w4",
                                                                          "w5"]),
                       n_attacks=200, seed=0)
    assert link["attack_rate"]["value"] > link["control_rate"]["value"]
    so = singling_out(real, real, control, n_attacks=100, seed=0, max_batches=5, batch=500)
    assert so["attack_rate"]["n_success"] == so["queries_generated"] > 0
    # independent synthetic records: no residual inference risk beyond noise
    inf2 = inference(real, fresh, control, "s", aux, n_attacks=200, seed=0)
    assert inf2["risk"]["ci"][0] == 0.0


def test_attacks_are_seeded() -> None:
    rng = np.random.default_rng(9)
    real, syn, ctl = (_random_table(rng, 300) for _ in range(3))
    a = singling_out(real, syn, ctl, n_attacks=50, seed=3, max_batches=3, batch=300)
    b = singling_out(real, syn, ctl, n_attacks=50, seed=3, max_batches=3, batch=300)
    assert a == b


def test_batched_inference_equals_one_at_a_time() -> None:
    """Batching attacks into one nearest-neighbour search must not change any result."""
    from ptsynth.evaluate.attacks import SynthIndex, inference_many

    rng = np.random.default_rng(11)
    real, syn, ctl = _random_table(rng, 300), _random_table(rng, 250), _random_table(rng, 80)
    plan = [("s", ["c", "o"]), ("n", ["c", "o"]), ("c", ["o", "n", "s"]), ("o", ["c"])]
    batched = inference_many(real, syn, ctl, plan, n_attacks=60, seed=3, index=SynthIndex(syn))
    alone = [inference(real, syn, ctl, s, aux, n_attacks=60, seed=3) for s, aux in plan]
    assert batched == alone
    assert [b["secret"] for b in batched] == ["s", "n", "c", "o"]
    # no control set: same figures on the attack side, control omitted
    no_ctl = inference_many(real, syn, None, plan, n_attacks=60, seed=3)
    for a, b in zip(no_ctl, alone, strict=True):
        assert a["attack_rate"] == b["attack_rate"] and a["control_rate"] is None


def test_popcount_matches_byte_table() -> None:
    from ptsynth.evaluate.attacks import _POPCOUNT, _popcount_rows

    rng = np.random.default_rng(2)
    words = rng.integers(0, 2**63, size=(7, 5), dtype=np.uint64) | np.uint64(2**63)
    want = _POPCOUNT[words.view(np.uint8)].sum(axis=1)
    np.testing.assert_array_equal(_popcount_rows(words), want)
    assert _popcount_rows(np.full((1, 2), np.uint64(2**64 - 1)))[0] == 128


def test_hypergeometric_probability_of_one_matches_scipy() -> None:
    """The singling-out correction's P(X = 1) equals scipy.stats' pmf (edge cases included)."""
    import numpy as np
    from scipy.stats import hypergeom

    from ptsynth.evaluate.attacks import _hypergeom_pmf_one

    rng = np.random.default_rng(0)
    for n_total, draws in [(10, 0), (10, 3), (10, 10), (50, 10), (20_000, 5_000), (1_000, 999)]:
        successes = np.concatenate([[0, 1, n_total - 1, n_total],
                                    rng.integers(0, n_total + 1, size=200)])
        expected = hypergeom.pmf(1, n_total, successes, draws)
        got = _hypergeom_pmf_one(n_total, successes, draws)
        assert np.allclose(got, expected, rtol=1e-8, atol=1e-15)
