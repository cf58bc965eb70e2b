"""Structural zeros in both synthesizers: known zeros in the model, never released, never drawn."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ptsynth.aggregates import AggregateRelease
from ptsynth.config import ReleaseConfig
from ptsynth.ingest import read_records
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.release.pipeline import release
from ptsynth.structure import combinations_in_zeros, violations
from ptsynth.synth.aggregate_seeded import AggregateSeededSynthesizer
from ptsynth.synth.graphical.estimation import Measurement, MirrorDescentEstimator
from ptsynth.synth.graphical.inference import BeliefPropagation
from ptsynth.synth.persist import load as load_synthesizer
from ptsynth.synth.persist import save as save_synthesizer
from ptsynth.synth.pgm import PGMSynthesizer

REGIONS = {"Europe": ["UKR", "MDA", "ROU"], "Asia": ["PHL", "IDN", "KHM", "VNM"],
           "Africa": ["NGA", "GHA"]}
BANDS = ["0--8", "9--17", "18--29", "30--49", "50+"]
CONFIG = {
    "dataset": {"name": "structured", "subject_id": "id"},
    "privacy": {"epsilon": 1.0, "delta": 1e-6},
    "release": {"reporting_length": 3, "k": 5},
    "evaluation": {"holdout_fraction": 0.0},
    "columns": [
        {"name": "id", "kind": "subject_id"},
        {"name": "country", "kind": "categorical", "values": sum(REGIONS.values(), [])},
        {"name": "region", "kind": "categorical", "values": list(REGIONS)},
        {"name": "band", "kind": "ordinal", "values": BANDS},
        {"name": "majority", "kind": "categorical", "values": ["Adult", "Minor"], "missing": "forbid"},
        {"name": "work", "kind": "set", "values": ["domestic", "mining", "sex", "begging"]},
        {"name": "flag", "kind": "categorical", "values": ["1"]},
    ],
    "hierarchies": [
        {"column": "country", "parent": "region", "groups": REGIONS},
        {"column": "band", "parent": "majority",
         "map": {"0--8": "Minor", "9--17": "Minor", "18--29": "Adult", "30--49": "Adult",
                 "50+": "Adult"}},
    ],
    "constraints": [
        {"name": "no minors in mining or sex work",
         "forbid": {"majority": ["Minor"], "work": ["mining", "sex"]}},
    ],
}


def _config(**release_opts) -> ReleaseConfig:
    data = copy.deepcopy(CONFIG)
    data["release"].update(release_opts)
    return ReleaseConfig.from_dict(data)


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Records that respect the structure, with dependencies between the columns."""
    rng = np.random.default_rng(seed)
    region = rng.choice(list(REGIONS), n, p=[0.5, 0.35, 0.15])
    country = np.array([rng.choice(REGIONS[r]) for r in region])
    band = rng.choice(BANDS, n, p=[0.05, 0.2, 0.4, 0.25, 0.1])
    minor = np.isin(band, BANDS[:2])
    work = []
    for r, m in zip(region, minor, strict=True):
        opts = ["domestic", "begging"] if m else (["mining", "domestic"] if r == "Africa"
                                                    else ["sex", "domestic", "begging"])
        work.append(";".join(rng.choice(opts, rng.integers(0, 3), replace=False)))
    keep_region = rng.random(n) < 0.9
    return pd.DataFrame({
        "id": [f"p{i}" for i in range(n)],
        "country": np.where(rng.random(n) < 0.95, country, ""),
        "region": np.where(keep_region, region, ""),
        "band": np.where(rng.random(n) < 0.9, band, ""),
        "majority": np.where(minor, "Minor", "Adult"),
        "work": work,
        "flag": np.where(rng.random(n) < 0.3, "1", ""),
    })


@pytest.fixture(scope="module")
def data():
    cfg = _config()
    table = read_records(_frame(4000, 0), cfg.schema)  # ingest refuses any violation
    return cfg, table


def _names(table):
    return [d.name for d in table.domains]


# -- pgm -----------------------------------------------------------------------------------------
def test_pgm_gives_known_zeros_probability_zero_and_never_draws_them(data):
    cfg, table = data
    zeros = cfg.schema.structural_zeros
    acc = Accountant(0.5, 1e-6, rng=seeded_random(4))
    synth = PGMSynthesizer(rounds=6, iters=20, final_iters=80, structural_zeros=zeros).fit(table, acc)
    names = _names(table)
    model = synth.model_
    assert model is not None
    for clique, forbidden in synth.zero_tables_.items():
        home = model.tree.containing(clique)
        assert home is not None  # a clique of the tree covers every zero set
        probs = model.marginals.marginal(list(clique))
        assert np.all(probs[forbidden] == 0.0) and probs[~forbidden].sum() == pytest.approx(1.0)
        for j in clique:  # constrained columns keep every value
            assert not synth.compression_[j].compressed
    sample = synth.sample(20_000, seeded_random(5))
    assert not violations(zeros, sample.codes, names).any()
    assert synth.diagnostics["known_zeros"]["cells"] == sum(int(t.sum()) for t in synth.zero_tables_.values())
    # the same fit without declared zeros does put records there (the test can fail)
    acc2 = Accountant(0.5, 1e-6, rng=seeded_random(4))
    plain = PGMSynthesizer(rounds=6, iters=20, final_iters=80).fit(table, acc2)
    assert violations(zeros, plain.sample(20_000, seeded_random(5)).codes, names).sum() > 0
    # measurements are unchanged: the same 1-way noisy marginals, the same spend
    for a, b in zip(synth.measurements_[: table.n_columns], plain.measurements_[: table.n_columns],
                    strict=True):
        if a.values.size == b.values.size:
            np.testing.assert_array_equal(a.values, b.values)
    assert acc.spent_rho == pytest.approx(acc2.spent_rho, rel=1e-9)


def test_a_saved_pgm_model_keeps_its_zeros(data, tmp_path: Path):
    cfg, table = data
    zeros = cfg.schema.structural_zeros
    synth = PGMSynthesizer(rounds=3, iters=10, final_iters=30, structural_zeros=zeros).fit(
        table, Accountant(0.5, 1e-6, rng=seeded_random(1)))
    save_synthesizer(synth, tmp_path / "m.json")
    loaded = load_synthesizer(tmp_path / "m.json")
    assert loaded.structural_zeros == zeros
    assert not violations(zeros, loaded.sample(5000, seeded_random(2)).codes, _names(table)).any()


def test_estimator_known_zeros_in_both_calibrations():
    """Known-zero cells stay at probability 0 through mirror descent, and the log-space
    calibration (the underflow fallback) agrees with the linear one even when a whole value
    is impossible (a separator cell with no mass)."""
    sizes = (3, 4, 2)
    forbidden = np.zeros((3, 4), dtype=bool)
    forbidden[0, :] = True  # variable 0 can never be 0
    forbidden[1, 2:] = True
    noisy = np.random.default_rng(0).normal(50, 10, (4, 2))
    est = MirrorDescentEstimator(sizes, zeros={(0, 1): forbidden})
    model = est.fit([Measurement((1, 2), noisy, 2.0), Measurement((0,), np.array([5., 40, 60]), 2.0)],
                    iters=40)
    joint = model.marginals.marginal([0, 1])
    assert np.all(joint[forbidden] == 0.0)
    bp = BeliefPropagation(model.tree)
    rng = np.random.default_rng(1)
    pots = [rng.normal(0, 1, model.tree.shape(i)) for i in range(len(model.tree.cliques))]
    for home, mask in est._log_masks(model.tree):
        pots[home] = pots[home] + mask
    linear = bp.probabilities(pots)
    logspace = [np.exp(b) for b in bp.calibrate(pots)]
    for a, b in zip(linear, logspace, strict=True):
        assert np.all(np.isfinite(b))
        np.testing.assert_allclose(a, b, atol=1e-12)


# -- aggregate -----------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 2, 3])
def test_aggregate_never_releases_nor_draws_a_structural_zero(data, length):
    cfg, table = data
    zeros = cfg.schema.structural_zeros
    names = _names(table)
    synth = AggregateSeededSynthesizer(reporting_length=length, k=5, structural_zeros=zeros)
    synth.fit(table, Accountant(2.0, 1e-6, rng=seeded_random(7)))
    agg = synth.aggregates
    for ell in range(1, length + 1):
        combos = agg.combinations[ell]
        if combos.size:
            assert not combinations_in_zeros(zeros, combos[:, :, 0], combos[:, :, 1], names).any()
    sample = synth.sample(8000, seeded_random(8))
    assert not violations(zeros, sample.codes, names).any()  # also for zeros longer than L
    # relaxed (exempt) columns are drawn outside the aggregates' guarantee, never in a zero
    j = names.index("majority")
    synth._dead[j] = True
    relaxed = synth.sample(8000, seeded_random(9))
    assert "majority" in synth.relaxed_columns_
    assert not violations(zeros, relaxed.codes, names).any()
    plain = AggregateSeededSynthesizer(reporting_length=length, k=5)
    plain.fit(table, Accountant(2.0, 1e-6, rng=seeded_random(7)))
    plain._dead[j] = True
    assert violations(zeros, plain.sample(8000, seeded_random(9)).codes, names).any()


def test_aggregate_dense_tables_hold_known_zeros(data):
    cfg, table = data
    names = _names(table)
    synth = AggregateSeededSynthesizer(reporting_length=2, k=5,
                                       structural_zeros=cfg.schema.structural_zeros)
    synth.fit(table, Accountant(2.0, 1e-6, rng=seeded_random(3)))
    i, j = names.index("country"), names.index("region")
    dense = synth._dense((i, j))
    hierarchy = cfg.schema.hierarchy("country")[0]
    for a, c in enumerate(table.domains[i].labels):
        for b, r in enumerate(table.domains[j].labels):
            if hierarchy.parent_of(c) != r:
                assert dense[a, b] == 0.0


def test_a_saved_aggregate_synthesizer_keeps_its_zeros(data, tmp_path: Path):
    cfg, table = data
    zeros = cfg.schema.structural_zeros
    synth = AggregateSeededSynthesizer(reporting_length=1, k=5, structural_zeros=zeros)
    synth.fit(table, Accountant(2.0, 1e-6, rng=seeded_random(7)))
    save_synthesizer(synth, tmp_path / "a.json")
    loaded = load_synthesizer(tmp_path / "a.json")
    assert loaded.structural_zeros == zeros
    assert not violations(zeros, loaded.sample(4000, seeded_random(1)).codes, _names(table)).any()


# -- the release -----------------------------------------------------------------------------
@pytest.mark.parametrize("synth", ["pgm", "aggregate"])
def test_released_records_and_aggregates_respect_the_structure(tmp_path: Path, synth: str):
    cfg = _config(synthesizer=synth)
    out = tmp_path / "b"
    release(_frame(3000, 1), cfg, out, seed=2, evaluate_release=False)
    manifest = json.loads((out / "manifest.json").read_text())
    published = ReleaseConfig.from_dict(manifest["config"]).schema
    assert published.structural_zeros == cfg.schema.structural_zeros  # public structure
    released = published.released()
    table = read_records(out / "synthetic.csv", released)  # ingest would refuse a violation
    assert not violations(released.structural_zeros, table.codes, _names(table)).any()
    agg = AggregateRelease.read_parquet(out / "aggregates.parquet", table.domains)
    names = [d.name for d in agg.domains]
    for combos in agg.combinations.values():
        if combos.size:
            assert not combinations_in_zeros(released.structural_zeros, combos[:, :, 0],
                                             combos[:, :, 1], names).any()
