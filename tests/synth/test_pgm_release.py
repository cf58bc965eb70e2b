"""PGM release integration: DP record count, public plan, JSON diagnostics, candidate cap."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.errors import ConfigError
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.synth.graphical.compression import ColumnCompression, simplex_projection
from ptsynth.synth.graphical.selection import candidate_weights
from ptsynth.synth.pgm import PGMOptions, PGMSynthesizer, budget_split
from ptsynth.table import ColumnDomain
from synthetic_tables import chain_table


@pytest.fixture(scope="module")
def fitted():
    table = chain_table(4000, (3, 4, 2, 5, 3, 2, 3), seed=1)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(3))
    synth = PGMSynthesizer(rounds=5, iters=20, final_iters=60, max_candidates=4).fit(table, acc)
    return table, acc, synth


def test_total_is_a_dp_estimate_of_the_record_count(fitted):
    table, _, synth = fitted
    assert synth.total_ is not None
    assert abs(synth.total_ - table.n_records) < 0.05 * table.n_records
    assert synth.total_ == pytest.approx(synth.model_.total)


def test_diagnostics_are_json_ready_and_public(fitted):
    table, acc, synth = fitted
    diag = synth.diagnostics_
    text = json.dumps(diag)  # raises on numpy types
    back = json.loads(text)
    assert back["rho"] == pytest.approx(acc.target_rho)
    assert back["rho_spent"] == pytest.approx(acc.spent_rho, rel=1e-6)
    assert len(back["rounds"]) == len(synth.rounds_) >= 1
    names = set(table.column_names)
    for r in back["rounds"]:
        assert set(r["columns"]) <= names and r["sigma"] > 0
        # The cap: at most 4 sets outside the model were scored in any round.
        assert r["scored_outside_model"] <= 4
    assert back["model"]["total_size"] == synth.model_.tree.total_size
    assert {"oneway_s", "rounds_s", "final_fit_s", "fit_s"} <= set(back["timings"])
    steps = [row["step"] for row in back["budget_split"]]
    assert steps[0] == "1-way marginals"


def plan_pgm(domains, *, rho, **knobs):
    """The registry planner's rows for these knobs (reads no data)."""
    return PGMSynthesizer.plan_release(domains, rho=rho, options=PGMOptions(**knobs),
                                       reporting_length=3, k=10)["steps"]


def test_plan_matches_the_fit_and_reads_no_data(fitted):
    table, acc, synth = fitted
    rows = plan_pgm(table.domains, rho=acc.target_rho, rounds=5, iters=20, final_iters=60)
    assert [r["step"] for r in rows] == ["1-way marginals", "adaptive rounds (selection + measurement)"]
    assert all(set(r) == set(rows[0]) for r in rows)  # one key set: the CLI prints a table
    assert sum(r["rho"] for r in rows) == pytest.approx(acc.target_rho)
    oneway = [e for e in acc.entries if "1-way" in e.query and "again" not in e.query]
    assert rows[0]["measurements"] == len(oneway) == table.n_columns
    assert rows[0]["sigma"] == pytest.approx(max(e.noise_scale for e in oneway))
    assert rows[1]["measurements"] == 5
    first_round = synth.rounds_[0]
    assert rows[1]["sigma"] == pytest.approx(first_round.sigma)


def test_plan_refuses_bad_knobs_and_handles_one_column():
    doms = (ColumnDomain("a", ("x", "y")),)
    rows = plan_pgm(doms, rho=0.1)
    assert len(rows) == 1 and rows[0]["rho"] == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="degree"):
        plan_pgm(doms, rho=0.1, degree=0)
    with pytest.raises(ConfigError, match="nope"):
        plan_pgm(doms, rho=0.1, workload=[("a", "nope")])


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 200), min_size=1, max_size=12),
    budget=st.floats(1e-4, 10.0),
    alloc=st.sampled_from(["equal", "size"]),
)
def test_budget_split_spends_exactly_the_budget(sizes, budget, alloc):
    sp = budget_split(sizes, budget, adaptive=True, oneway_share=0.25, rounds=7, oneway_allocation=alloc)
    spent_1 = sum(1.0 / (2.0 * s**2) for s in sp.oneway_sigma)
    assert spent_1 == pytest.approx(0.25 * budget, rel=1e-9)
    per_round = 1.0 / (2.0 * sp.sigma**2) + sp.epsilon**2 / 8.0
    assert spent_1 + 7 * per_round == pytest.approx(budget, rel=1e-9)
    if alloc == "size":  # larger domains get less noise
        order = np.argsort(sizes)
        assert np.all(np.diff(np.asarray(sp.oneway_sigma)[order]) <= 1e-12)


@settings(max_examples=60, deadline=None)
@given(
    y=st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=30),
    total=st.floats(0.0, 500.0),
)
def test_simplex_projection_is_the_closest_point(y, total):
    y = np.asarray(y)
    x = simplex_projection(y, total)
    assert np.all(x >= 0) and x.sum() == pytest.approx(total, abs=1e-6)
    # Optimality (KKT): one threshold tau with x = max(y - tau, 0).
    pos = x > 0
    if pos.any():
        tau = y[pos] - x[pos]
        assert np.allclose(tau, tau[0], atol=1e-6)
        assert np.all(y[~pos] <= tau[0] + 1e-6)


def test_refined_bucket_drops_noise_only_values():
    noisy = np.array([900.0, 800.0, 12.0, 30.0, -8.0, 4.0, 25.0])
    comp = ColumnCompression.from_noisy(noisy, sigma=10.0)
    assert comp.compressed
    clipped = comp.merged_probs
    ref = comp.refined(20.0)
    assert ref.merged_probs.sum() == pytest.approx(1.0)
    # Fewer values keep mass than with clipping, and the largest noisy count keeps the most.
    assert (ref.merged_probs > 0).sum() < (clipped > 0).sum()
    assert np.argmax(ref.merged_probs) == np.argmax(noisy[comp.merged])
    assert comp.refined(0.0) is comp  # nothing in the bucket: unchanged


def test_candidate_weights_count_duplicates_and_cover_the_downward_closure():
    w = candidate_weights([(0, 1), (0, 1), (1, 2)], degree=2)
    assert w[(0, 1)] == 5.0 and w[(1,)] == 3.0 and w[(1, 2)] == 4.0
    big = candidate_weights([c for c in __import__("itertools").combinations(range(32), 3)], 3)
    assert len(big) == 32 + 496 + 4960


def test_uncapped_and_capped_fits_both_respect_the_budget():
    table = chain_table(1500, (3, 3, 2, 4, 2), seed=5)
    for cap in (None, 2):
        acc = Accountant(1.0, 1e-6, rng=seeded_random(0))
        s = PGMSynthesizer(rounds=3, iters=10, final_iters=20, max_candidates=cap).fit(table, acc)
        assert acc.spent_rho == pytest.approx(acc.target_rho, rel=1e-6)
        assert s.sample(100, seeded_random(1)).n_records == 100


@pytest.mark.parametrize("kw", [{"max_candidates": 0}, {"oneway_allocation": "x"}, {"rho": -1.0}])
def test_new_bad_knobs_are_refused(kw):
    with pytest.raises(ConfigError, match=next(iter(kw))):
        PGMSynthesizer(**kw)


def test_pooled_bucket_counts_are_inverse_variance_weighted():
    from ptsynth.synth.pgm import _pooled

    comp = ColumnCompression.from_noisy(np.array([500.0, 400.0, 3.0, 9.0, -2.0]), sigma=10.0)
    obs = [(np.array([3.0, 9.0, -2.0]), 10.0), (np.array([6.0, 0.0, 1.0]), 5.0)]
    pooled = _pooled(comp, obs).merged_noisy
    w1, w2 = 1 / 100, 1 / 25
    assert np.allclose(pooled, (w1 * obs[0][0] + w2 * obs[1][0]) / (w1 + w2))
    assert _pooled(comp, []) is comp


def _skewed_table(n: int, seed: int):
    """A 60-value column with a geometric tail (most values rare) next to two small ones."""
    from ptsynth.table import EncodedTable

    g = np.random.default_rng(seed)
    wide = np.minimum(g.geometric(0.12, n) - 1, 59)
    a = (wide % 3 + g.integers(0, 2, n)) % 3
    b = np.where(g.random(n) < 0.8, a % 2, g.integers(0, 2, n))
    doms = (
        ColumnDomain("wide", tuple(str(i) for i in range(60)), allows_missing=False),
        ColumnDomain("a", ("x", "y", "z"), allows_missing=False),
        ColumnDomain("b", ("u", "v"), allows_missing=False),
    )
    return EncodedTable(np.stack([wide, a, b], axis=1), doms)


def test_oneway_remeasurement_is_full_resolution_and_charged():
    """A compressed column can be measured again in a round: all its values, in the ledger."""
    table = _skewed_table(3000, seed=4)
    acc = Accountant(0.3, 1e-6, rng=seeded_random(0))
    synth = PGMSynthesizer(rounds=8, iters=20, final_iters=60, oneway_share=0.05).fit(table, acc)
    assert synth.compression_[0].compressed
    again = [e for e in acc.entries if "again" in e.query]
    oneway_rounds = [r for r in synth.rounds_ if len(r.clique) == 1]
    assert len(again) == len(oneway_rounds) >= 1
    assert acc.spent_rho == pytest.approx(acc.target_rho, rel=1e-6)
    # The measurement joins the estimator in model codes; the bucket's members are pooled.
    col = table.column_names.index(oneway_rounds[0].clique[0])
    ones = [m for m in synth.measurements_ if m.clique == (col,)]
    assert len(ones) == 1 + sum(r.clique == oneway_rounds[0].clique for r in oneway_rounds)
    assert all(m.values.size == synth.compression_[col].size for m in ones)
    off = PGMSynthesizer(rounds=8, iters=20, final_iters=60, oneway_share=0.05, remeasure_oneway=False)
    off.fit(table, Accountant(0.3, 1e-6, rng=seeded_random(0)))
    assert all(len(r.clique) > 1 for r in off.rounds_)
