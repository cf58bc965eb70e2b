"""DP bin edges (``bins = "dp-quantiles"``): plan = spend, the mechanism, post-processing."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare
from typer.testing import CliRunner

from ptsynth.cli import app
from ptsynth.config import ReleaseConfig
from ptsynth.errors import BudgetExceededError, SchemaError
from ptsynth.ingest import read_records
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.privacy.zcdp import exponential_epsilon, rho_from_epsilon_delta
from ptsynth.release.dp_bins import (
    ColumnBinsPlan,
    dp_quantile_indices,
    plan_dp_bins,
    quantile_scores,
    read_schema,
    resolve_dp_bins,
    round_edges,
    roundness,
    strictly_increasing,
)
from ptsynth.release.pipeline import plan, release
from ptsynth.schema import DPBins, bin_labels

AGE = {"name": "age", "kind": "numeric", "bins": "dp-quantiles", "count": 4, "range": [0, 120],
       "resolution": 1}
CONFIG = {
    "dataset": {"name": "t"},
    "privacy": {"epsilon": 2.0, "delta": 1e-6},
    "release": {"dp_bins_share": 0.1},
    "evaluation": {"holdout_fraction": 0.0},
    "columns": [
        AGE,
        {"name": "income", "kind": "numeric", "bins": "dp-quantiles", "count": 3,
         "range": [10, 100000], "grid": "log", "out_of_range": "clip"},
        {"name": "gender", "kind": "categorical", "values": ["F", "M"]},
    ],
}


def _cfg(data: dict | None = None, **release) -> ReleaseConfig:
    data = copy.deepcopy(CONFIG if data is None else data)
    data["release"].update(release)
    return ReleaseConfig.from_dict(data)


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": np.clip(np.round(rng.gamma(5.0, 6.0, n), 1), 0, 119),
        "income": np.round(rng.lognormal(8.0, 1.0, n)),
        "gender": rng.choice(["F", "M", ""], n),
    })


# -- plan --------------------------------------------------------------------------------------
def test_plan_shows_the_step_and_splits_the_budget():
    cfg = _cfg()
    p = plan(cfg)
    rho = rho_from_epsilon_delta(2.0, 1e-6)
    rows = {r["step"]: r for r in p["dp_bins"]}
    assert set(rows) == {"DP bin edges of age", "DP bin edges of income"}
    assert sum(r["rho"] for r in rows.values()) == pytest.approx(0.1 * rho)
    age = rows["DP bin edges of age"]
    assert age["rho"] == pytest.approx(0.05 * rho) and age["measurements"] == 3
    assert age["epsilon_per_edge"] == pytest.approx(math.sqrt(8 * 0.05 * rho / 3))
    assert age["candidates"] == 119
    assert p["rho_synthesizer"] == pytest.approx(0.9 * rho)
    assert sum(s["rho"] for s in p["steps"]) == pytest.approx(0.9 * rho)  # pgm gets the rest
    assert "lengths" in plan(cfg, synthesizer="aggregate")
    # no DP-bins column: no step, the whole budget to the synthesizer
    data = copy.deepcopy(CONFIG)
    data["columns"] = data["columns"][2:]
    assert "dp_bins" not in plan(ReleaseConfig.from_dict(data))


def test_plan_on_the_command_line(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text(tomli_w.dumps(CONFIG))
    res = CliRunner().invoke(app, ["release", "x.csv", "--config", str(path), "--plan"])
    assert res.exit_code == 0, res.output
    lines = [" ".join(line.split()) for line in res.output.splitlines()]
    assert any(line.startswith("- DP bin edges of age: exponential mechanism") for line in lines)
    assert "synthesizer budget" in res.output


# -- plan = spend, edges published ---------------------------------------------------------------
@pytest.mark.parametrize("synth", ["pgm", "aggregate"])
def test_release_spends_the_plan_and_publishes_the_resolved_edges(tmp_path: Path, synth: str):
    cfg = _cfg(synthesizer=synth)
    planned = plan(cfg)
    out = tmp_path / "b"
    rel = release(_frame(), cfg, out, seed=3, evaluate_release=False)
    ledger = json.loads((out / "budget.json").read_text())
    by_col = {c: [e for e in ledger["entries"] if e["query"].startswith(f"dp bin edges of '{c}'")]
              for c in ("age", "income")}
    rows = {r["step"]: r for r in planned["dp_bins"]}
    for col, count in (("age", 4), ("income", 3)):
        entries = by_col[col]
        assert len(entries) == count - 1
        assert all(e["mechanism"] == "exponential_mechanism" for e in entries)
        assert sum(e["rho"] for e in entries) == pytest.approx(rows[f"DP bin edges of {col}"]["rho"])
        assert all("public candidate grid" in e["query"] and "quantile" in e["query"] for e in entries)
    spent = sum(e["rho"] for e in ledger["entries"])
    assert spent == pytest.approx(planned["rho"], rel=1e-6)
    assert spent <= planned["rho"] * (1 + 1e-12)
    # the edges are public DP outputs: in the manifest's config, on the grid, count + 1 of them
    manifest = json.loads((out / "manifest.json").read_text())
    cols = {c["name"]: c for c in manifest["config"]["columns"]}
    age_points = DPBins(count=4, lo=0, hi=120, resolution=1).points()
    for name, count, points in (("age", 4, age_points),
                                ("income", 3, DPBins(count=3, lo=10, hi=1e5, grid="log").points())):
        edges = cols[name]["bins"]
        assert len(edges) == count + 1 and edges[0] == points[0] and edges[-1] == points[-1]
        assert all(e in points for e in edges) and np.all(np.diff(edges) > 0)
        assert cols[name]["bins_source"].startswith("dp-quantiles")
        assert set(rel.synthetic[name].dropna()) <= set(bin_labels(edges))  # typed: NaN = missing
    assert rel.report["release"]["dp_bins"]["age"]["edges"] == cols["age"]["bins"]
    again = ReleaseConfig.from_dict(manifest["config"])  # the bundle's config reads back
    assert not again.schema.dp_bin_columns


def _resolve(df: pd.DataFrame, cfg: ReleaseConfig, acc: Accountant):
    return resolve_dp_bins(cfg, read_records(df, read_schema(cfg.schema)), acc)


def test_equal_mass_edges_at_a_large_budget():
    """With ε large the mechanism is near-exact: the edges split the persons evenly; the table
    is recoded onto them exactly as reading with the resolved schema would encode it."""
    df = _frame(4000)
    cfg = _cfg(dp_bins_share=0.5)
    acc = Accountant(1e4, 1e-6, rng=seeded_random(0))
    resolved, table, summary = _resolve(df, cfg, acc)
    edges = resolved.schema.column("age").bins
    assert summary is not None and list(edges) == summary["age"]["edges"]
    share = np.histogram(df["age"], bins=edges)[0] / len(df)
    assert np.all(np.abs(share - 0.25) < 0.04)
    direct = read_records(df, resolved.schema)
    assert table.domains == direct.domains and table.codes.dtype == direct.codes.dtype
    np.testing.assert_array_equal(table.codes, direct.codes)


def test_a_person_counts_once_however_many_rows(tmp_path: Path):
    data = copy.deepcopy(CONFIG)
    data["columns"] = [{"name": "id", "kind": "subject_id"}, AGE]
    cfg = ReleaseConfig.from_dict(data)
    df = pd.DataFrame({"id": [f"p{i}" for i in range(300)] + ["heavy"] * 600,
                       "age": list(np.linspace(10, 40, 300)) + [100.0] * 600})
    acc = Accountant(1e4, 1e-6, rng=seeded_random(1))
    resolved, _, _ = _resolve(df, cfg, acc)
    # counted per row, the heavy person would hold two thirds of the mass above 40
    assert resolved.schema.column("age").bins[-2] <= 45


def test_budget_is_checked_before_anything_is_measured():
    cfg = _cfg()
    acc = Accountant(2.0, 1e-6, rng=seeded_random(0))
    acc.measure_gaussian(np.array([1]), sigma=acc.sigma_for(acc.target_rho * 0.95, 1.0),
                         l2_sensitivity=1.0, query="earlier")
    with pytest.raises(BudgetExceededError):
        _resolve(_frame(100), cfg, acc)
    assert [e.query for e in acc.entries] == ["earlier"]


def test_a_bad_record_is_refused_before_any_budget_is_spent(tmp_path: Path, monkeypatch):
    from ptsynth.errors import InputError
    from ptsynth.release import dp_bins

    def no_spend(*args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("measured before the records were validated")

    monkeypatch.setattr(dp_bins, "dp_quantile_indices", no_spend)
    df = _frame(500)
    df.loc[7, "gender"] = "X"
    cfg = _cfg()
    with pytest.raises(InputError, match="row 8"):
        release(df, cfg, tmp_path / "b", seed=1, evaluate_release=False)
    assert not (tmp_path / "b").exists()


# -- the mechanism ----------------------------------------------------------------------------
def _plan(q_count: int, epsilon: float, candidates: int) -> ColumnBinsPlan:
    rho = epsilon * epsilon / 8
    return ColumnBinsPlan("x", q_count, candidates, rho * (q_count - 1), rho, epsilon, "grid")


def _gumbel(seed: int, n_draws: int, m: int) -> list[np.ndarray]:
    """The Gumbel noise a seeded accountant draws, replayed from the same stream."""
    rng = seeded_random(seed)
    return [-np.log(-np.log(rng.uniform_open(m))) for _ in range(n_draws)]


def test_edges_are_the_exponential_mechanism_on_the_histogram_given_the_noise():
    """Given the noise draws, the edges are argmax(ε u / 2Δ + G): the data enter only through
    the utility, computed from the histogram over the public grid."""
    hist = np.random.default_rng(5).integers(0, 30, 40)
    p = _plan(5, 0.7, 39)
    picks = dp_quantile_indices(hist, p, Accountant(50.0, 1e-6, rng=seeded_random(9)),
                                describe="grid")
    noise = _gumbel(9, 4, 39)
    expected = sorted(
        int(np.argmax(0.7 * quantile_scores(hist, q) / (2 * max(q, 1 - q)) + g)) + 1
        for q, g in zip(p.quantiles, noise, strict=True)
    )
    assert picks == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 20), min_size=3, max_size=30), st.integers(0, 10_000),
       st.integers(0, 29), st.booleans(), st.floats(0.05, 0.95))
def test_neighbours_with_the_same_noise_give_near_optimal_edges(hist, seed, cell, add, q):
    """Neighbouring histograms (one person added or removed) change every utility by at most
    max(q, 1-q); with the same Gumbel draws the neighbour's edge is within ε of the optimum
    of this dataset's noisy objective: the exponential mechanism's stability, which is what
    its privacy rests on."""
    h = np.array(hist, dtype=np.int64)
    cell = cell % h.size
    h2 = h.copy()
    if add:
        h2[cell] += 1
    elif h2[cell] > 0:
        h2[cell] -= 1
    sens = max(q, 1 - q)
    u, u2 = quantile_scores(h, q), quantile_scores(h2, q)
    assert np.max(np.abs(u - u2)) <= sens + 1e-9
    eps = 0.8
    g = _gumbel(seed, 1, h.size - 1)[0]

    def pick(hh):
        acc = Accountant(50.0, 1e-6, rng=seeded_random(seed))
        scores = quantile_scores(hh, q)
        return int(acc.select_exponential(scores, epsilon=eps, sensitivity=sens, query="t"))

    i, i2 = pick(h), pick(h2)
    value = eps * u / (2 * sens) + g
    assert value[i] == value.max()
    assert value[i2] >= value[i] - eps - 1e-9


def test_selection_frequencies_match_the_exponential_mechanism():
    """A statistical test of the mechanism's validity: chi-square of 6000 seeded draws on a
    dataset and on its neighbour against the exact pmfs, whose log-ratio is at most ε."""
    hist = np.array([5, 0, 3, 8, 2, 0, 0, 6, 1, 4, 2, 9])
    neighbour = hist.copy()
    neighbour[3] += 1
    eps, q, draws = 1.2, 0.5, 6000
    p = ColumnBinsPlan("x", 2, hist.size - 1, eps * eps / 8, eps * eps / 8, eps, "grid")
    log_pmfs = []
    for h in (hist, neighbour):
        acc = Accountant(1e5, 1e-6, rng=seeded_random(2024))
        counts = np.bincount(
            [dp_quantile_indices(h, p, acc, describe="grid")[0] - 1 for _ in range(draws)],
            minlength=hist.size - 1)
        logits = eps * quantile_scores(h, q) / (2 * max(q, 1 - q))
        log_pmf = logits - np.logaddexp.reduce(logits)
        log_pmfs.append(log_pmf)
        expected = np.exp(log_pmf) * draws
        keep = expected >= 5
        obs = np.append(counts[keep], counts[~keep].sum())
        exp = np.append(expected[keep], expected[~keep].sum())
        if exp[-1] == 0:
            obs, exp = obs[:-1], exp[:-1]
        assert chisquare(obs, exp).pvalue > 1e-3
        assert len(acc.entries) == draws  # one ledger entry per measurement
    assert np.max(np.abs(log_pmfs[0] - log_pmfs[1])) <= eps + 1e-12


# -- post-processing --------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 39), min_size=1, max_size=10))
def test_edges_are_made_distinct_and_rounded_within_tolerance(picks):
    points = DPBins(count=2, lo=0, hi=40, resolution=1).points()
    fixed = strictly_increasing(sorted(picks), len(points))
    assert len(fixed) == len(picks) and fixed[0] >= 1 and fixed[-1] <= len(points) - 2
    assert all(b > a for a, b in zip(fixed, fixed[1:], strict=False))
    rounded = round_edges(points, fixed, 0.2)
    assert len(rounded) == len(fixed) and all(b > a for a, b in zip(rounded, rounded[1:], strict=False))
    assert rounded[0] >= 1 and rounded[-1] <= len(points) - 2
    for k, (a, b) in enumerate(zip(fixed, rounded, strict=True)):
        left = rounded[k - 1] if k else 0
        right = fixed[k + 1] if k + 1 < len(fixed) else len(points) - 1
        assert abs(b - a) <= 0.2 * min(a - left, right - a) + 1e-9 or a == b
        assert roundness(points[b]) >= roundness(points[a])


def test_rounding_prefers_round_values():
    points = DPBins(count=2, lo=0, hi=120, resolution=1).points()
    assert [points[i] for i in round_edges(points, [23, 31, 44], 0.2)] == [23, 30, 45]
    assert [points[i] for i in round_edges(points, [23, 31, 44])] == [23, 31, 45]  # 10%
    fine = DPBins(count=2, lo=0, hi=100_000, resolution=100).points()
    assert [fine[i] for i in round_edges(fine, [234, 461, 702])] == [25_000, 45_000, 70_000]
    assert roundness(30) > roundness(25) > roundness(24)
    assert roundness(0.2) > roundness(0.15) > roundness(0.13)


def test_grids_are_round_decimals():
    pts = DPBins(count=3, lo=0, hi=1, resolution=0.1).points()
    assert pts == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert "[0.3, 0.4)" in bin_labels(pts)
    log = DPBins(count=3, lo=1, hi=1000, grid="log").points()
    assert log[:11] == (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0) and log[-1] == 1000
    assert DPBins(count=2, lo=0, hi=7).effective_resolution == 0.01  # 1-2-5 step, ≤ 1000 cells


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"count": 1}, "integer ≥ 2"),
        ({"count": None}, "integer ≥ 2"),
        ({"range": [5, 5]}, "range = [lo, hi]"),
        ({"range": [0]}, "range = [lo, hi]"),
        ({"resolution": 7}, "whole number of resolution steps"),
        ({"resolution": 0.001}, "more than 10000 cells"),
        ({"count": 200}, "exceeds the 120 cells"),
        ({"grid": "log"}, "does not apply"),
        ({"grid": "log", "resolution": None}, "lo > 0"),
        ({"labels": ["a", "b"]}, "one entry per bin"),
        ({"bins_source": "x"}, "only applies to public bins"),
    ],
)
def test_bad_dp_bins_are_schema_errors(change, fragment):
    data = copy.deepcopy(CONFIG)
    col = data["columns"][0]
    for key, value in change.items():
        if value is None:
            col.pop(key, None)
        else:
            col[key] = value
    with pytest.raises(SchemaError, match=fragment.replace("[", r"\[")):
        ReleaseConfig.from_dict(data)


def test_dp_keys_need_dp_quantiles_and_the_config_round_trips():
    data = copy.deepcopy(CONFIG)
    data["columns"][2] = {"name": "g", "kind": "numeric", "bins": [0, 1, 2], "count": 3}
    with pytest.raises(SchemaError, match="only apply with bins"):
        ReleaseConfig.from_dict(data)
    cfg = _cfg()
    again = ReleaseConfig.from_dict(cfg.to_dict())
    assert again.schema.column("age").dp_bins == cfg.schema.column("age").dp_bins
    assert again.schema.column("income").dp_bins == cfg.schema.column("income").dp_bins
    assert again.release.dp_bins_share == 0.1
    assert [p.column for p in plan_dp_bins(again.schema, rho=1.0, share=0.1)] == ["age", "income"]
    assert exponential_epsilon(plan_dp_bins(again.schema, rho=1.0, share=0.1)[0].rho_per_quantile) \
        == pytest.approx(math.sqrt(8 * 0.05 / 3))



CONFIG_TOML = """
[dataset]
name = "t"
[privacy]
epsilon = 2.0
delta = 1e-6
[release]
dp_bins_share = 0.1
synthesizer = "aggregate"
[evaluation]
holdout_fraction = 0.0
[[columns]]
name = "age"
kind = "numeric"
bins = "dp-quantiles"
count = 4
range = [0, 120]
resolution = 1
[[columns]]
name = "income"
kind = "numeric"
bins = "dp-quantiles"
count = 3
range = [10, 100000]
grid = "log"
out_of_range = "clip"
[[columns]]
name = "gender"
kind = "categorical"
values = ["F", "M"]
"""


def test_evaluate_reads_the_real_records_with_the_bundles_measured_edges(tmp_path: Path):
    """``ptsynth evaluate`` on a DP-bins release: the real records are encoded on the edges the
    release measured (read from the bundle); a bare CSV is refused with a clear message."""
    from typer.testing import CliRunner

    from ptsynth.cli import app

    cfg = tmp_path / "cfg.toml"
    cfg.write_text(CONFIG_TOML, encoding="utf-8")
    assert ReleaseConfig.load(cfg).schema.dp_bin_columns
    data = tmp_path / "real.csv"
    _frame().to_csv(data, index=False)
    out = tmp_path / "b"
    release(data, cfg, out, seed=3, evaluate_release=False)
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", str(data), str(out), "--config", str(cfg),
                              "--out", str(tmp_path / "rep"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["utility"]
    res = runner.invoke(app, ["evaluate", str(data), str(out / "synthetic.csv"), "--config",
                              str(cfg), "--out", str(tmp_path / "rep2"), "--quiet"])
    assert res.exit_code == 2 and "bundle folder" in res.output
