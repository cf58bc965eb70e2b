"""PGMSynthesizer end to end: budget only through the accountant, reproducible, accurate."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ptsynth.counting import marginal_counts
from ptsynth.errors import ConfigError, NotFittedError
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.synth.base import Synthesizer
from ptsynth.synth.pgm import PGMSynthesizer
from ptsynth.table import ColumnDomain, EncodedTable
from synthetic_tables import chain_table


def mean_tvd(real: EncodedTable, synth: EncodedTable, k: int, cap: int = 400) -> float:
    sets = list(itertools.combinations(range(real.n_columns), k))
    if len(sets) > cap:
        pick = np.random.default_rng(0).choice(len(sets), cap, replace=False)
        sets = [sets[i] for i in sorted(pick)]
    out = []
    for s in sets:
        a = marginal_counts(real, s).ravel() / real.n_records
        b = marginal_counts(synth, s).ravel() / synth.n_records
        out.append(0.5 * np.abs(a - b).sum())
    return float(np.mean(out))


@pytest.fixture(scope="module")
def fitted():
    table = chain_table(5000, (3, 4, 2, 5, 3, 2), seed=1)
    acc = Accountant(2.0, 1e-6, rng=seeded_random(3))
    synth = PGMSynthesizer(rounds=6, iters=30, final_iters=150).fit(table, acc)
    return table, acc, synth


def test_protocol_and_budget_spent_only_through_accountant(fitted):
    table, acc, synth = fitted
    assert isinstance(synth, Synthesizer) and synth.name == "pgm"
    assert acc.spent_rho == pytest.approx(acc.target_rho, rel=1e-6)
    assert acc.spent_rho <= acc.target_rho * (1 + 1e-12)
    mechanisms = {e.mechanism for e in acc.entries}
    assert mechanisms <= {"discrete_gaussian", "exponential_mechanism"}
    oneway = [e for e in acc.entries if "1-way" in e.query and "again" not in e.query]
    assert len(oneway) == table.n_columns
    assert sum(e.rho for e in acc.entries) == pytest.approx(acc.spent_rho, rel=1e-9)
    # One selection per measured round; the trace only holds public values.
    selections = [e for e in acc.entries if e.mechanism == "exponential_mechanism"]
    assert len(selections) == len(synth.rounds_) >= 1
    assert all(set(r.clique) <= set(table.column_names) for r in synth.rounds_)


def test_explicit_rho_spends_only_that():
    table = chain_table(1000, (3, 3, 2, 4), seed=2)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(0))
    part = acc.target_rho / 3
    PGMSynthesizer(rounds=3, iters=10, final_iters=20).fit(table, acc, rho=part)
    assert acc.spent_rho == pytest.approx(part, rel=1e-6)
    assert acc.remaining_rho == pytest.approx(2 * part, rel=1e-6)


def test_rho_beyond_the_budget_is_refused_before_any_measurement():
    from ptsynth.errors import BudgetExceededError

    table = chain_table(300, (3, 3), seed=2)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(0))
    with pytest.raises(BudgetExceededError):
        PGMSynthesizer().fit(table, acc, rho=2 * acc.target_rho)
    assert acc.spent_rho == 0 and not acc.entries


def test_sample_domains_count_and_determinism(fitted):
    table, _, synth = fitted
    a = synth.sample(777, seeded_random(5))
    b = synth.sample(777, seeded_random(5))
    c = synth.sample(777, seeded_random(6))
    assert a.domains == table.domains and a.n_records == 777
    a.validate()
    assert np.array_equal(a.codes, b.codes)
    assert not np.array_equal(a.codes, c.codes)
    assert synth.sample(0, seeded_random(1)).n_records == 0


def test_fit_is_reproducible_with_seeded_accountant():
    table = chain_table(1500, (3, 4, 2, 3), seed=4)
    runs = []
    for _ in range(2):
        acc = Accountant(1.0, 1e-6, rng=seeded_random(9))
        s = PGMSynthesizer(rounds=4, iters=10, final_iters=30).fit(table, acc)
        runs.append(s.sample(300, seeded_random(2)).codes)
    assert np.array_equal(runs[0], runs[1])


def test_beats_independent_columns(fitted):
    table, _, synth = fitted
    syn = synth.sample(table.n_records, seeded_random(8))
    g = np.random.default_rng(0)
    indep = table.with_codes(np.stack([g.permutation(table.codes[:, j]) for j in range(table.n_columns)], 1))
    assert mean_tvd(table, syn, 1) < 0.03
    assert mean_tvd(table, syn, 2) < 0.5 * mean_tvd(table, indep, 2)


def test_single_column_and_named_workload():
    one = chain_table(500, (4,), seed=0)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(0))
    s = PGMSynthesizer().fit(one, acc)
    assert acc.spent_rho == pytest.approx(acc.target_rho, rel=1e-6)
    assert s.sample(50, seeded_random(0)).n_records == 50
    table = chain_table(800, (3, 3, 2, 4), seed=3)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(1))
    s = PGMSynthesizer(workload=[("c0", "c1"), ("c2", "c3")], degree=2, rounds=2, iters=5, final_iters=10)
    s.fit(table, acc)
    assert {r.clique for r in s.rounds_} <= {("c0", "c1"), ("c2", "c3")}


def test_model_size_limit_is_respected():
    table = chain_table(1000, (9, 9, 9, 9, 9), seed=6)
    acc = Accountant(5.0, 1e-6, rng=seeded_random(2))
    s = PGMSynthesizer(max_model_size=800, rounds=6, iters=5, final_iters=5).fit(table, acc)
    assert s.model_ is not None and s.model_.tree.total_size <= 800
    assert all(r.model_size <= 800 for r in s.rounds_)


@pytest.mark.parametrize(
    "kw",
    [{"degree": 0}, {"max_model_size": 0}, {"rounds": 0}, {"oneway_share": 0.0}, {"iters": -1}],
)
def test_bad_knobs_are_refused(kw):
    with pytest.raises(ConfigError, match=next(iter(kw))):
        PGMSynthesizer(**kw)


def test_sample_before_fit_is_an_error():
    with pytest.raises(NotFittedError):
        PGMSynthesizer().sample(5, seeded_random(0))


def _ctdc(path) -> EncodedTable:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    cols, doms = [], []
    for c in df.columns:
        codes, uniq = pd.factorize(df[c], sort=True)
        labels = tuple(str(u) for u in uniq)
        cols.append(np.where(codes < 0, len(labels), codes))
        doms.append(ColumnDomain(str(c), labels))
    return EncodedTable(np.stack(cols, axis=1), tuple(doms))


@pytest.mark.slow
@pytest.mark.shared_data
def test_ctdc_accuracy_at_epsilon_one(shared_data):
    path = shared_data / "ctdc_vp" / "CTDC_VPsynthetic_condensed.csv"
    if not path.exists():
        pytest.skip("CTDC file absent")
    table = _ctdc(path)
    acc = Accountant(1.0, 1e-6, rng=seeded_random(0))
    s = PGMSynthesizer().fit(table, acc)
    syn = s.sample(table.n_records, seeded_random(1))
    tvds = [mean_tvd(table, syn, k) for k in (1, 2, 3)]
    n_sets = [16, 120, 400]
    pooled = sum(t * n for t, n in zip(tvds, n_sets, strict=True)) / sum(n_sets)
    assert pooled < 0.05, pooled  # speed: benchmarks/peers.py, not a timed test
