"""Count queries where the answer is known: a hand-made model, noise-free aggregates, and the
synthetic records themselves; plus the rule, suppression, errors and the command line."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bundles import rehash, release, small_frame, true_count
from ptsynth.cli import app
from ptsynth.errors import ConfigError
from ptsynth.query import Z95, count, engine_for
from ptsynth.release.bundle import Bundle
from ptsynth.synth import persist
from ptsynth.synth.graphical.compression import ColumnCompression
from ptsynth.synth.graphical.estimation import GraphicalModel, Measurement
from ptsynth.synth.graphical.junction_tree import build_junction_tree
from ptsynth.synth.pgm import PGMSynthesizer

runner = CliRunner()
# the test records, with one selection made rare on purpose (2 people: below k = 3)
_BASE = small_frame()
_RARE = (_BASE.gender == "Male") & (_BASE.country == "GBR") & (_BASE.year == "2019")
FRAME = __import__("pandas").concat([_BASE[~_RARE], _BASE[_RARE].head(2)], ignore_index=True)
RARE = {"gender": ["Male"], "country": ["GBR"], "year": ["2019"]}


# ---------------------------------------------------------------------------------------------
# a hand-made graphical model: the expected counts are known in closed form
# ---------------------------------------------------------------------------------------------
# encoded columns: 0 gender(2), 1 country(3 -> model codes: USA kept, MEX+GBR merged),
# 2 year(3), 3 means=debt (present/absent), 4 means=threats, 5 isForcedLabour ("1"/missing)
P_GC = np.array([[0.30, 0.30], [0.15, 0.25]])  # gender x country model code (USA, bucket)
P_Y_GIVEN_C = np.array([[0.2, 0.3, 0.5], [0.5, 0.3, 0.2]])  # year | country model code
P_DEBT = np.array([0.4, 0.6])
P_THREATS = np.array([0.25, 0.75])
P_LABOUR = np.array([0.35, 0.65])
MERGED_PROBS = np.array([0.4, 0.6])  # MEX, GBR inside the bucket
TOTAL = 1000.0
SIGMA_1WAY = 2.0
SIGMA_GC = 3.0


def hand_model(domains) -> PGMSynthesizer:
    sizes = (2, 2, 3, 2, 2, 2)
    tree = build_junction_tree(sizes, [(0, 1), (1, 2), (3,), (4,), (5,)])
    joint = (P_GC[:, :, None, None, None, None] * P_Y_GIVEN_C[None, :, :, None, None, None]
             * P_DEBT[None, None, None, :, None, None] * P_THREATS[None, None, None, None, :, None]
             * P_LABOUR[None, None, None, None, None, :])
    probs = []
    for clique in tree.cliques:
        axes = tuple(a for a in range(6) if a not in clique)
        probs.append(joint.sum(axis=axes))
    synth = PGMSynthesizer()
    synth.domains_ = tuple(domains)
    synth.compression_ = [ColumnCompression.identity(d.size) for d in domains]
    synth.compression_[1] = ColumnCompression(
        np.array([0, 1, 1]), np.array([0]), np.array([1, 2]), MERGED_PROBS, np.array([10.0, 20.0]))
    synth.model_ = GraphicalModel(tree, probs, TOTAL)
    synth.total_ = TOTAL
    synth.measurements_ = [
        Measurement((0,), np.array([600.0, 400.0]), np.full(2, SIGMA_1WAY), query="1-way gender"),
        Measurement((0, 1), np.zeros((2, 2)), SIGMA_GC, query="gender x country"),
    ]
    return synth


def joint_original() -> np.ndarray:
    """The model's joint over original codes (country expanded), axes as the encoded columns."""
    pc = np.stack([P_GC[:, 0], P_GC[:, 1] * MERGED_PROBS[0], P_GC[:, 1] * MERGED_PROBS[1]], axis=1)
    pyc = np.stack([P_Y_GIVEN_C[0], P_Y_GIVEN_C[1], P_Y_GIVEN_C[1]])
    return (pc[:, :, None, None, None, None] * pyc[None, :, :, None, None, None]
            * P_DEBT[None, None, None, :, None, None] * P_THREATS[None, None, None, None, :, None]
            * P_LABOUR[None, None, None, None, None, :])


LABELS = {"gender": ["Female", "Male"], "country": ["USA", "MEX", "GBR"],
          "year": ["2019", "2020", "2021"]}


def expected(where: dict[str, list[str]]) -> float:
    joint = joint_original()
    mask = np.ones(joint.shape, dtype=bool)
    for col, values in where.items():
        if col in LABELS:
            axis = list(LABELS).index(col)
            sel = np.isin(LABELS[col], values)
            shape = [1] * 6
            shape[axis] = -1
            mask &= sel.reshape(shape)
        elif col == "means":
            debt = np.array([1, 0]) if "debt" in values else np.zeros(2)
            threats = np.array([1, 0]) if "threats" in values else np.zeros(2)
            mask &= (debt[:, None] + threats[None, :] > 0)[None, None, None, :, :, None]
        elif col == "isForcedLabour":
            mask &= np.array([True, False])[None, None, None, None, None, :]
    return float(TOTAL * joint[mask].sum())


@pytest.fixture(scope="module")
def hand_bundle(tmp_path_factory) -> Bundle:
    out = release(tmp_path_factory.mktemp("hand") / "bundle", epsilon=2.0)
    bundle = Bundle.load(out)
    persist.save(hand_model(bundle.schema.encoded_domains()), out / "model.json")
    rehash(out)
    return Bundle.load(out)


QUERIES = [
    {},
    {"gender": ["Female"]},
    {"country": ["MEX"]},  # a merged value: expanded by its share of the bucket
    {"country": ["MEX", "GBR"]},
    {"gender": ["Male"], "country": ["USA", "GBR"], "year": ["2021"]},
    {"means": ["debt"]},
    {"means": ["debt", "threats"]},  # OR over a set column: any member present
    {"means": ["debt", "threats"], "gender": ["Female"], "year": ["2019", "2020"]},
    {"isForcedLabour": ["1"], "country": ["GBR"], "means": ["threats"]},
]


@pytest.mark.parametrize("where", QUERIES)
def test_model_answers_equal_the_hand_made_models_expected_counts(hand_bundle, where) -> None:
    row = hand_bundle.count(where=where).row
    assert row.source == "model"
    assert row.estimate == pytest.approx(expected(where), abs=0.051)


def test_by_gives_one_row_per_cell_in_product_order(hand_bundle) -> None:
    result = hand_bundle.count(where={"means": ["debt"]}, by=["gender", "country"])
    cells = [(r.cell["gender"], r.cell["country"]) for r in result.rows]
    assert cells == list(itertools.product(LABELS["gender"], LABELS["country"]))
    for r in result.rows:
        want = expected({"means": ["debt"], "gender": [r.cell["gender"]],
                         "country": [r.cell["country"]]})
        assert r.estimate == pytest.approx(want, abs=0.051)
    # `by` on a column of `where` keeps only the selected values
    sub = hand_bundle.count(where={"country": ["GBR", "USA"]}, by="country")
    assert [r.cell["country"] for r in sub.rows] == ["USA", "GBR"]


def test_model_interval_pools_the_covering_measurements(hand_bundle) -> None:
    # gender=Female is covered by the 1-way measurement (variance sigma1^2) and by gender x
    # country (the Female row: 2 model cells, variance 2 sigma_gc^2); pooled by inverse variance
    row = hand_bundle.count(where={"gender": ["Female"]}).row
    se = 1 / math.sqrt(1 / SIGMA_1WAY**2 + 1 / (2 * SIGMA_GC**2))
    assert row.high - row.estimate == pytest.approx(Z95 * se, abs=0.06)
    assert row.estimate - row.low == pytest.approx(Z95 * se, abs=0.06)


def test_extrapolated_interval_has_the_documented_allowance(hand_bundle) -> None:
    from ptsynth.query import MODEL_EXTRAPOLATION

    where = {"gender": ["Female"], "year": ["2021"]}  # no measurement covers gender x year
    row = hand_bundle.count(where=where).row
    value = expected(where)
    floor = 1 / math.sqrt(1 / SIGMA_1WAY**2 + 1 / (2 * SIGMA_GC**2))  # gender's own SE
    half = Z95 * math.sqrt(floor**2 + MODEL_EXTRAPOLATION**2 * value)
    assert row.high == pytest.approx(value + half, abs=0.06)
    assert "extrapolated" in row.note


# ---------------------------------------------------------------------------------------------
# noise-free aggregates: counts equal the records' counts exactly
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exact_aggregates(tmp_path_factory) -> Bundle:
    out = release(tmp_path_factory.mktemp("agg") / "bundle", FRAME, synthesizer="aggregate",
                  epsilon=1e5, max_attributes=6)
    return Bundle.load(out)


@pytest.mark.parametrize("where", [
    {"gender": ["Female"]},
    {"gender": ["Male"], "country": ["MEX"]},
    {"country": ["USA", "GBR"]},  # OR: sum of disjoint released counts
    {"year": ["2019"], "means": ["threats"], "isForcedLabour": ["1"]},
])
def test_noise_free_aggregates_answer_exact_counts(exact_aggregates, where) -> None:
    row = exact_aggregates.count(where=where).row
    assert row.source == "dp_aggregate"
    assert row.estimate == true_count(FRAME, where)
    assert row.low <= row.estimate <= row.high


def test_below_k_is_suppressed_never_a_number(exact_aggregates) -> None:
    k = exact_aggregates.k
    assert 0 < true_count(FRAME, RARE) < k
    row = exact_aggregates.count(where=RARE).row
    assert row.suppressed and row.estimate is None and row.low is None and row.high is None
    assert row.source == "dp_aggregate" and row.note.startswith(f"fewer than {k}")
    assert row.text == f"fewer than {k}"
    by = exact_aggregates.count(where={"gender": ["Male"], "country": ["GBR"]}, by="year")
    assert [r.suppressed for r in by.rows] == [True, False, False]


def test_longer_than_the_reporting_length_falls_to_synthetic(exact_aggregates) -> None:
    where = {"gender": ["Female"], "country": ["USA"], "year": ["2021"], "means": ["debt"]}
    row = exact_aggregates.count(where=where).row
    assert row.source == "synthetic"
    syn = exact_aggregates.synthetic
    n_syn = true_count(syn.assign(means=syn["means"]), where)
    engine = engine_for(exact_aggregates)
    assert engine.synthetic.scale == pytest.approx(
        exact_aggregates.aggregates.record_count / len(syn))
    if not row.suppressed:
        assert row.estimate == pytest.approx(n_syn * engine.synthetic.scale, abs=0.051)


def test_or_over_a_set_column_is_not_answered_by_aggregates(exact_aggregates) -> None:
    row = exact_aggregates.count(where={"means": ["debt", "threats"]}).row
    assert row.source == "synthetic"  # members overlap: released counts cannot be summed


# ---------------------------------------------------------------------------------------------
# without a model: synthetic counts
# ---------------------------------------------------------------------------------------------
def test_without_model_json_pgm_bundles_count_synthetic_rows(tmp_path) -> None:
    out = release(tmp_path / "b", epsilon=3.0)
    (out / "model.json").unlink()
    rehash(out)
    bundle = Bundle.load(out)
    assert not bundle.has_model
    syn = bundle.synthetic
    for where in ({"gender": ["Female"]}, {"country": ["MEX", "GBR"], "means": ["debt"]}):
        row = bundle.count(where=where).row
        assert row.source == "synthetic"
        if not row.suppressed:
            assert row.estimate == pytest.approx(true_count(syn, where), abs=0.051)


# ---------------------------------------------------------------------------------------------
# errors and the command line
# ---------------------------------------------------------------------------------------------
def test_unknown_columns_and_values_name_the_column(hand_bundle) -> None:
    with pytest.raises(ConfigError, match="'sex'.*not a column"):
        hand_bundle.count(where={"sex": ["Female"]})
    with pytest.raises(ConfigError, match="'gender'.*'Woman' is not a public value"):
        hand_bundle.count(where={"gender": ["Woman"]})
    with pytest.raises(ConfigError, match="'year'"):
        hand_bundle.count(by=["year", "year"])


def test_cli_query_prints_json_and_a_table(hand_bundle) -> None:
    res = runner.invoke(app, ["query", str(hand_bundle.path), "--where", "gender=Female",
                              "--where", "country=MEX,GBR", "--by", "year", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["where"] == {"gender": ["Female"], "country": ["MEX", "GBR"]}
    assert [r["cell"]["year"] for r in doc["rows"]] == LABELS["year"]
    assert doc["seeded_test_bundle"] is True
    for r in doc["rows"]:
        want = expected({"gender": ["Female"], "country": ["MEX", "GBR"],
                         "year": [r["cell"]["year"]]})
        assert r["estimate"] == pytest.approx(want, abs=0.051) and r["source"] == "model"
    res = runner.invoke(app, ["query", str(hand_bundle.path), "--where", "gender=Female"])
    assert res.exit_code == 0 and "model" in res.stdout


@pytest.mark.parametrize("args", [["--where", "genderx=Female"], ["--where", "gender=Woman"],
                                  ["--where", "gender"], ["--by", "nope"]])
def test_cli_query_errors_exit_2_naming_the_column(hand_bundle, args) -> None:
    res = runner.invoke(app, ["query", str(hand_bundle.path), *args])
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "error:" in res.output


def test_cli_query_refuses_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    res = runner.invoke(app, ["query", str(tmp_path)])
    assert res.exit_code == 2 and "manifest" in res.output


def test_count_function_and_method_agree(hand_bundle) -> None:
    a = count(hand_bundle, where={"year": ["2020"]}, by="gender").to_dict()
    b = hand_bundle.count(where={"year": ["2020"]}, by=["gender"]).to_dict()
    assert a == b
