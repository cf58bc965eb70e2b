"""Graphical-model internals where the answer is known: brute force, noise-free fits, sampler."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptsynth.counting import marginal_counts
from ptsynth.privacy import seeded_random
from ptsynth.synth.graphical.compression import ColumnCompression
from ptsynth.synth.graphical.estimation import (
    Measurement,
    MirrorDescentEstimator,
    estimate_total,
)
from ptsynth.synth.graphical.inference import (
    BeliefPropagation,
    CliqueMarginals,
    broadcast_shape,
)
from ptsynth.synth.graphical.junction_tree import build_junction_tree, triangulated_sizes
from ptsynth.synth.graphical.sampling import sample_records, stratified_draw, systematic_counts
from ptsynth.synth.graphical.selection import candidate_weights
from ptsynth.table import ColumnDomain, EncodedTable

SIZES = (2, 3, 2, 4, 3)
CYCLE = [(0, 1), (1, 2), (2, 3), (0, 3), (3, 4), (1, 4)]


def brute_force(sizes, potentials):
    """Full joint from the explicit product of clique potentials."""
    grids = np.indices(sizes)
    logf = np.zeros(sizes)
    for clique, pot in potentials.items():
        logf += pot[tuple(grids[v] for v in clique)]
    joint = np.exp(logf - logf.max())
    return joint / joint.sum()


def tree_marginals(sizes, potentials) -> CliqueMarginals:
    tree = build_junction_tree(sizes, list(potentials))
    logp = [np.zeros(tree.shape(i)) for i in range(len(tree.cliques))]
    for clique, pot in potentials.items():
        i = tree.containing(clique)
        logp[i] = logp[i] + pot.reshape(broadcast_shape(clique, tree.cliques[i], sizes))
    probs = BeliefPropagation(tree).probabilities(logp)
    return CliqueMarginals(tree, probs)


def correlated_table(n: int, sizes, seed: int) -> EncodedTable:
    g = np.random.default_rng(seed)
    cols = [g.integers(0, sizes[0], n)]
    for s in sizes[1:]:
        copy = g.random(n) < 0.6
        cols.append(np.where(copy, cols[-1] % s, g.integers(0, s, n)))
    doms = tuple(
        ColumnDomain(f"c{j}", tuple(str(i) for i in range(s)), allows_missing=False)
        for j, s in enumerate(sizes)
    )
    return EncodedTable(np.stack(cols, axis=1), doms)


# -- junction tree ------------------------------------------------------------------------


def test_junction_tree_covers_cliques_and_has_running_intersection():
    tree = build_junction_tree(SIZES, CYCLE)
    for c in CYCLE:
        assert tree.containing(c) is not None
    # Running intersection: the cliques holding each variable form a connected subtree.
    for v in range(len(SIZES)):
        holders = {i for i, c in enumerate(tree.cliques) if v in c}
        tops = [i for i in holders if tree.parent[i] not in holders]
        assert len(tops) == 1
    assert sorted(tree.order) == list(range(len(tree.cliques)))


def test_predicted_size_equals_built_size():
    extra = [(0, 2), (2, 4), (0, 4), (1, 3)]
    predicted = triangulated_sizes(SIZES, CYCLE, extra)
    for e, size in zip(extra, predicted, strict=True):
        assert build_junction_tree(SIZES, CYCLE + [e]).total_size == size


def _reference_elimination(adj: np.ndarray, log_sizes: np.ndarray, heuristic: str) -> np.ndarray:
    """Greedy elimination of one graph, one vertex at a time in plain Python: the rule the
    lock-step, compacted ``_eliminate`` must follow (ties to the lowest variable)."""
    d = adj.shape[0]
    nbrs = {v: {u for u in range(d) if adj[v, u]} for v in range(d)}
    alive = set(range(d))
    cliques = np.zeros((d, d), dtype=bool)
    scale = float(log_sizes.sum()) + 1.0
    for k in range(d):
        def score(v: int) -> float:
            logw = round(float(sum(log_sizes[u] for u in nbrs[v]) + log_sizes[v]), 9)
            if heuristic != "min_fill":
                return logw
            nb = sorted(nbrs[v])
            fill = sum(1 for a, b in itertools.combinations(nb, 2) if b not in nbrs[a])
            return fill + logw / scale
        v = min(sorted(alive), key=score)
        cliques[k, list(nbrs[v]) + [v]] = True
        for a, b in itertools.combinations(sorted(nbrs[v]), 2):
            nbrs[a].add(b)
            nbrs[b].add(a)
        for u in nbrs[v]:
            nbrs[u].discard(v)
        alive.discard(v)
        del nbrs[v]
    return cliques


@pytest.mark.parametrize("heuristic", ["min_fill", "min_weight"])
def test_lockstep_elimination_follows_the_one_graph_rule(heuristic):
    from ptsynth.synth.graphical.junction_tree import _eliminate

    rng = np.random.default_rng(7)
    for _ in range(15):
        d, m = int(rng.integers(2, 14)), int(rng.integers(1, 6))
        adj = rng.random((m, d, d)) < rng.uniform(0.1, 0.6)
        adj = adj | adj.transpose(0, 2, 1)
        adj[:, np.arange(d), np.arange(d)] = False
        log_sizes = np.log(rng.integers(2, 6, size=d).astype(np.float64))
        elim, _ = _eliminate(adj, log_sizes, heuristic)
        for g in range(m):
            assert np.array_equal(elim[g], _reference_elimination(adj[g], log_sizes, heuristic))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inference_equals_brute_force(seed):
    g = np.random.default_rng(seed)
    pots = {c: g.normal(scale=2.0, size=[SIZES[v] for v in c]) for c in CYCLE}
    joint = brute_force(SIZES, pots)
    marg = tree_marginals(SIZES, pots)
    for k in (1, 2, 3):
        for s in itertools.combinations(range(len(SIZES)), k):
            exact = joint.sum(axis=tuple(a for a in range(len(SIZES)) if a not in s))
            assert np.abs(marg.marginal(s) - exact).max() < 1e-12
    # Any axis order, and the log-space path agrees with the linear-space one.
    exact = np.transpose(joint.sum(axis=(1, 2)), (2, 0, 1))
    assert np.abs(marg.marginal((4, 0, 3)) - exact).max() < 1e-12
    tree = marg.tree
    logp = [np.zeros(tree.shape(i)) for i in range(len(tree.cliques))]
    for clique, pot in pots.items():
        i = tree.containing(clique)
        logp[i] = logp[i] + pot.reshape(broadcast_shape(clique, tree.cliques[i], SIZES))
    log_space = BeliefPropagation(tree).calibrate(logp)
    assert all(np.allclose(np.exp(a), b) for a, b in zip(log_space, marg.probs, strict=True))


def test_candidate_weights_follow_aim():
    w = candidate_weights([(0, 1, 2), (1, 2, 3)], degree=2)
    assert w[(1, 2)] == 4.0 and w[(0, 1)] == 3.0 and w[(1,)] == 2.0 and w[(0,)] == 1.0
    assert (0, 3) not in w and (0, 1, 2) not in w


# -- estimation ---------------------------------------------------------------------------


def test_noise_free_fit_reproduces_measured_marginals():
    sizes = (3, 4, 2, 3, 5)
    table = correlated_table(3000, sizes, seed=3)
    cliques = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 2, 3)]
    meas = [Measurement((j,), marginal_counts(table, [j]), 1.0) for j in range(len(sizes))]
    meas += [Measurement(c, marginal_counts(table, c), 1.0) for c in cliques]
    assert estimate_total(meas) == pytest.approx(3000)
    est = MirrorDescentEstimator(sizes)
    model = est.fit(meas, iters=1500)
    for m in meas:
        err = np.abs(model.project(m.clique) - m.values).max() / 3000
        assert err < 2e-3, (m.clique, err)


def test_warm_start_continues_from_previous_potentials():
    sizes = (3, 4, 2)
    table = correlated_table(2000, sizes, seed=5)
    meas = [Measurement((j,), marginal_counts(table, [j]), 1.0) for j in range(3)]
    est = MirrorDescentEstimator(sizes)
    est.fit(meas, iters=200)
    meas.append(Measurement((0, 1), marginal_counts(table, [0, 1]), 1.0))
    est.fit(meas, iters=150)
    loss_first = est.last_loss
    second = est.fit(meas, iters=150)
    assert est.last_loss <= loss_first  # continues downhill from the stored potentials
    assert np.abs(second.project((0, 1)) - meas[-1].values).max() < 10


# -- sampling -----------------------------------------------------------------------------


@given(
    n=st.integers(0, 400),
    seed=st.integers(0, 2**31 - 1),
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=5),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sampler_domain_row_count_and_determinism(n, seed, sizes):
    sizes = tuple(sizes)
    g = np.random.default_rng(seed)
    d = len(sizes)
    cliques = [(j, j + 1) for j in range(d - 1)] + ([(0, d - 1)] if d > 2 else [])
    cliques = [c for c in cliques if c[0] != c[1]] or [(0,)]
    pots = {c: g.normal(scale=2.0, size=[sizes[v] for v in c]) for c in cliques}
    marg = tree_marginals(sizes, pots)
    a = sample_records(marg, n, seeded_random(seed))
    b = sample_records(marg, n, seeded_random(seed))
    assert a.shape == (n, d)
    assert np.array_equal(a, b)
    if n:
        assert a.min() >= 0 and np.all(a.max(axis=0) < np.asarray(sizes))


@given(n=st.integers(0, 10_000), k=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_systematic_counts_are_controlled_rounding(n, k, seed):
    p = np.random.default_rng(seed).dirichlet(np.ones(k))
    c = systematic_counts(p, n, seeded_random(seed))
    assert c.sum() == n and c.min() >= 0
    assert np.all(np.abs(c - n * p) < 1 + 1e-9)


def test_generated_data_matches_model_from_exact_marginals():
    """Regression: with exact marginals, the sample's 1-way and measured-clique marginals match
    the model's within sampling error (conditioning on maximal cliques, not measured ones)."""
    sizes = (3, 4, 2, 3, 5, 2)
    table = correlated_table(4000, sizes, seed=11)
    cliques = [(0, 1), (1, 2), (2, 3), (0, 3), (3, 4), (4, 5), (1, 5)]
    meas = [Measurement((j,), marginal_counts(table, [j]), 1.0) for j in range(len(sizes))]
    meas += [Measurement(c, marginal_counts(table, c), 1.0) for c in cliques]
    model = MirrorDescentEstimator(sizes).fit(meas, iters=600)
    n = 40_000
    codes = sample_records(model.marginals, n, seeded_random(1))
    synth = EncodedTable(codes, table.domains)
    for c in [(j,) for j in range(len(sizes))] + cliques:
        p_model = model.marginals.marginal(c)
        p_synth = marginal_counts(synth, c) / n
        tvd = 0.5 * np.abs(p_model - p_synth).sum()
        assert tvd < 0.02, (c, tvd)
    # The 1-way marginals come out within one record per cell of the root (controlled rounding)
    # or close to it elsewhere.
    for j in range(len(sizes)):
        assert 0.5 * np.abs(model.marginals.marginal((j,)) - marginal_counts(synth, [j]) / n).sum() < 0.01


@given(
    n=st.integers(1, 3000),
    g=st.integers(1, 4),
    k=st.integers(2, 6),
    seed=st.integers(0, 2**31 - 1),
)
@settings(max_examples=40, deadline=None)
def test_balanced_draw_keeps_group_counts_and_balances_keys(n, g, k, seed):
    """Keys change which record gets which value, not how many: each group still gets its
    conditional counts within one record, and each run of equal keys gets its share too."""
    gen = np.random.default_rng(seed)
    cond = gen.dirichlet(np.ones(k), size=g)
    groups = gen.integers(0, g, n)
    keys = gen.integers(0, 2, (n, 1))
    out = stratified_draw(cond, groups, seeded_random(seed), keys)
    assert out.shape == (n,) and out.min() >= 0 and out.max() < k
    for grp in range(g):
        in_g = groups == grp
        m = int(in_g.sum())
        counts = np.bincount(out[in_g], minlength=k)
        assert np.all(np.abs(counts - m * cond[grp]) < 1 + 1e-9)
        for key in (0, 1):
            sel = in_g & (keys[:, 0] == key)
            got = np.bincount(out[sel], minlength=k)
            # Kronecker (golden-ratio) points: any run of ranks is within a few of its share.
            assert np.all(np.abs(got - sel.sum() * cond[grp]) < 4), (got, sel.sum() * cond[grp])


def test_balanced_sampling_is_unbiased():
    """Averaged over seeds, a cross-clique cell's count matches the model's expectation."""
    sizes = (2, 3, 2)
    pots = {
        (0, 1): np.log([[1.0, 2.0, 3.0], [3.0, 1.0, 1.0]]),
        (1, 2): np.log([[1.0, 4.0], [2.0, 1.0], [1.0, 1.0]]),
    }
    marg = tree_marginals(sizes, pots)
    n, reps = 500, 200
    acc = np.zeros((2, 2))
    for s in range(reps):
        c = sample_records(marg, n, seeded_random(s))
        acc += np.histogram2d(c[:, 0], c[:, 2], bins=[2, 2], range=[[0, 2], [0, 2]])[0]
    expect = n * marg.marginal((0, 2))
    assert np.abs(acc / reps - expect).max() < 3.0


# -- compression --------------------------------------------------------------------------


def test_compression_merges_rare_values_and_expands_back():
    noisy = np.array([500, 2, -3, 400, 1, 0])
    comp = ColumnCompression.from_noisy(noisy, sigma=5.0)
    assert comp.size == 3 and comp.compressed
    values, sig = comp.compress_measurement(noisy, 5.0)
    assert values.tolist() == [500, 400, 0] and sig[-1] == pytest.approx(5.0 * 2)
    codes = np.array([0, 1, 2, 2, 2, 2])
    out = comp.expand(codes, seeded_random(0))
    assert out[0] == 0 and out[1] == 3
    assert set(out[2:].tolist()) <= {1, 4}  # values with positive noisy count only
    assert ColumnCompression.from_noisy(np.array([500, 2, 400]), 5.0).compressed is False
