"""``ptsynth init``: the proposal a steward reviews (kinds, domains, missing, QIs, review table).

Each test builds a small table whose columns have a known nature (a 1/blank flag, integer codes,
age bands, dates, ``;``-joined cells, identifiers, free text, measurements) and checks the kind,
domain and flags proposed for it, and that the proposal's files never carry a value beyond
domain labels.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ptsynth.cli import app
from ptsynth.config import ReleaseConfig
from ptsynth.errors import ConfigError
from ptsynth.ingest import read_records
from ptsynth.ingest.propose import (
    GENERAL_WARNING,
    band_order,
    init_config,
    review_path_for,
    round_edges,
)

N = 400


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    flag = np.where(rng.random(N) < 0.3, "1", "")
    binary = rng.choice(["0", "1"], N)
    yes_no = rng.choice(["Yes", "No"], N)
    codes = rng.integers(1, 41, N).astype(str)  # 40 integer codes: categorical, never binned
    codes[:40] = np.arange(1, 41).astype(str)
    bands = rng.choice(["0--8", "9--17", "18--20", "48+"], N)
    ages = rng.integers(18, 80, N).astype(str)
    start = np.datetime64("2014-01-01")
    dates = (start + rng.integers(0, 3000, N).astype("timedelta64[D]")).astype(str)
    recent = (np.datetime64("2022-02-01") + rng.integers(0, 300, N).astype("timedelta64[D]")).astype(str)
    members = np.array(["debt", "threats", "abuse", "documents"])
    sets = [";".join(sorted(set(rng.choice(members, rng.integers(0, 3))))) for _ in range(N)]
    piped = [ "|".join(rng.choice(["a", "b", "c"], 2, replace=False)) for _ in range(N)]
    words = ["case", "worker", "noted", "that", "the", "person", "said", "she", "was", "moved"]
    text = [" ".join(rng.choice(words, 8)) + f" {i}" for i in range(N)]
    amount = np.round(rng.gamma(2.0, 0.17, N), 3).astype(str)
    return pd.DataFrame({
        "caseId": [f"C{i:05d}" for i in rng.permutation(N)],
        "isForcedLabour": flag,
        "consent01": binary,
        "hasChildren": yes_no,
        "industryCode": codes,
        "ageBroad": bands,
        "age": ages,
        "registrationDate": dates,
        "referralDate": recent,
        "gender": rng.choice(["Woman", "Man"], N),
        "countryOfExploitation": rng.choice(["UKR", "MDA", "ROU"], N),
        "meansOfControl": sets,
        "platforms": piped,
        "notes": text,
        "share": amount,
        "otherRecordId": [f"R{i}" for i in range(N)],
    })


@pytest.fixture()
def proposed(tmp_path):
    data = tmp_path / "cases.csv"
    _frame().to_csv(data, index=False)
    out = tmp_path / "cases.toml"
    starter = init_config(data, out)
    return data, out, starter


def _entry(cfg: ReleaseConfig, name: str):
    return cfg.schema.column(name)


def test_kinds_domains_and_missing(proposed):
    data, out, starter = proposed
    cfg = ReleaseConfig.load(out)
    assert cfg.release.synthesizer == "pgm"
    assert cfg.domains_confirmed is False
    assert cfg.dataset.subject_id == "caseId"
    flag = _entry(cfg, "isForcedLabour")
    assert (flag.kind, flag.values, flag.missing) == ("categorical", ("1",), "allow")
    binary = _entry(cfg, "consent01")
    assert (binary.kind, binary.values, binary.missing) == ("categorical", ("0", "1"), "forbid")
    assert _entry(cfg, "hasChildren").values == ("No", "Yes")
    codes = _entry(cfg, "industryCode")
    assert codes.kind == "categorical" and codes.values == tuple(str(i) for i in range(1, 41))
    assert _entry(cfg, "ageBroad").kind == "ordinal"
    assert _entry(cfg, "ageBroad").values == ("0--8", "9--17", "18--20", "48+")
    age = _entry(cfg, "age")  # 62 single years: a quantity by name, binned (not 62 codes)
    assert age.kind == "numeric" and age.bins == tuple(float(e) for e in range(10, 90, 10))
    reg = _entry(cfg, "registrationDate")
    assert reg.kind == "date" and reg.period == "year"
    assert reg.start.year % 5 == 0 and reg.end.year % 5 == 4 and reg.start.year <= 2014
    ref = _entry(cfg, "referralDate")
    assert ref.kind == "date" and ref.period == "month"
    means = _entry(cfg, "meansOfControl")
    assert means.kind == "set" and means.values == ("abuse", "debt", "documents", "threats")
    assert means.missing == "allow"  # some cells are empty
    piped = _entry(cfg, "platforms")
    assert piped.kind == "set" and piped.delimiter == "|" and piped.missing == "forbid"
    share = _entry(cfg, "share")
    assert share.kind == "numeric"
    # missing values are allowed only where the input has them, and in quasi-identifiers (so
    # that k-anonymity can blank a rare value rather than drop the record)
    allowed = {c.name for c in cfg.schema.data_columns if c.missing == "allow" and c.kind != "set"}
    assert allowed == {"isForcedLabour"} | set(cfg.schema.quasi_identifiers)
    assert "consent01" not in allowed and "industryCode" not in allowed
    names = cfg.schema.names
    assert "notes" not in names and "otherRecordId" not in names
    assert cfg.dataset.extra_columns == "ignore"
    # the proposal accepts the data it came from
    table = read_records(data, cfg.schema)
    assert table.n_records == N


def test_numeric_edges_are_round_and_not_the_data_range(proposed):
    data, out, _ = proposed
    cfg = ReleaseConfig.load(out)
    edges = _entry(cfg, "share").bins
    values = pd.read_csv(data, dtype=str)["share"].astype(float)
    assert edges[0] <= values.min() and edges[-1] > values.max()
    assert values.max() not in edges and (values.min() not in edges or values.min() == 0)
    assert all(len(repr(e)) <= 6 for e in edges), edges  # 0.1, 0.2, ... never 0.30000000000000004
    step = edges[1] - edges[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))


def test_quasi_identifiers_and_review(proposed):
    data, out, starter = proposed
    cfg = ReleaseConfig.load(out)
    qi = set(cfg.schema.quasi_identifiers)
    assert {"gender", "countryOfExploitation", "age", "ageBroad", "registrationDate"} <= qi
    assert "isForcedLabour" not in qi and "industryCode" not in qi
    review = review_path_for(out)
    assert review.name == "cases.review.md" and review.is_file()
    text = review.read_text()
    assert "| column | kind | domain size | missing allowed | QI | domain from | why |" in text
    rows = {r.column: r for r in starter.review}
    assert set(rows) == set(_frame().columns)
    assert rows["gender"].quasi_identifier and "demographic" in rows["gender"].why
    assert "geographic" in rows["countryOfExploitation"].why
    assert rows["notes"].kind == "left out" and "free text" in rows["notes"].why
    assert rows["otherRecordId"].kind == "left out" and "identifier" in rows["otherRecordId"].why
    assert rows["industryCode"].domain_size == 40
    assert rows["isForcedLabour"].missing_allowed and not rows["consent01"].missing_allowed
    assert "dp-quantiles" in rows["share"].why
    # no cell of the free-text, identifier or numeric columns reaches the config, review or warnings
    frame = _frame()
    leaked = set(frame["notes"]) | set(frame["caseId"]) | set(frame["otherRecordId"]) | set(frame["share"])
    outputs = out.read_text() + text + "\n".join(starter.warnings)
    assert not [v for v in leaked if v in outputs]


def test_unconfirmed_config_is_refused_then_releases_once_confirmed(proposed, tmp_path):
    import ptsynth

    data, out, starter = proposed
    assert starter.warnings[0] == GENERAL_WARNING
    with pytest.raises(ConfigError, match="not confirmed public"):
        ptsynth.release(data, out, tmp_path / "bundle", evaluate_release=False)
    out.write_text(out.read_text().replace("domains_confirmed = false", "domains_confirmed = true"))
    cfg = ReleaseConfig.load(out)
    # the proposal is releasable as it stands, with the default synthesizer
    rel = ptsynth.release(data, cfg, tmp_path / "bundle", seed=1, evaluate_release=False, epsilon=4.0)
    synth = pd.read_csv(tmp_path / "bundle" / "synthetic.csv", dtype=str, keep_default_na=False)
    assert len(rel.synthetic) > 0
    assert set(synth["isForcedLabour"]) <= {"1", ""}  # a flag stays a flag
    assert set(synth["consent01"]) <= {"0", "1"}
    assert set(synth["industryCode"]) <= {str(i) for i in range(1, 41)}
    # only the numeric columns show their public bin labels ("age" kept its values once
    # k-anonymity stopped blanking whole columns)
    binned = [c for c in synth.columns if cfg.schema.column(c).kind == "numeric"]
    assert set(binned) == {"share", "age"}
    assert not synth.apply(lambda s: s.str.contains(r"\[\d", regex=True)).drop(columns=binned).any().any()


def test_rows_of_one_subject_that_disagree_become_a_set(tmp_path):
    rng = np.random.default_rng(3)
    people = [str(i) for i in range(100)]
    exploitation = rng.choice(["sexual", "labour", "other"], 100)
    region = rng.choice(["Europe", "Asia", "Africa"], 100)
    # persons 0-9 have a second row: other exploitation (a disagreement), region blank
    frame = pd.DataFrame({
        "personId": people + people[:10],
        "exploitation": list(exploitation) + ["labour" if e != "labour" else "sexual" for e in exploitation[:10]],
        "region": list(region) + [""] * 10,
    })
    data = tmp_path / "rows.csv"
    frame.to_csv(data, index=False)
    starter = init_config(data, tmp_path / "rows.toml")
    cfg = ReleaseConfig.load(tmp_path / "rows.toml")
    assert cfg.dataset.subject_id == "personId"
    assert cfg.schema.column("exploitation").kind == "set"  # person 1 has two values
    assert cfg.schema.column("region").kind == "categorical"  # blank + value merges fine
    assert any("disagree" in r.why for r in starter.review)
    table = read_records(data, cfg.schema)
    assert table.n_records == 100


def test_band_order_and_codes():
    assert band_order(["48+", "0--8", "18--20", "9--17"]) == ["0--8", "9--17", "18--20", "48+"]
    assert band_order(["2019", "2005-2013", "2021-2022"]) == ["2005-2013", "2019", "2021-2022"]
    assert band_order(["<18", "18-64", "65+"]) == ["<18", "18-64", "65+"]
    assert band_order(["17-04001", "01-01301"]) is None  # codes with leading zeros, not bands
    assert band_order(["1", "2"]) is None  # plain numbers alone are codes
    assert band_order(["Europe", "Asia"]) is None


@settings(max_examples=200, deadline=None)
@given(lo=st.floats(-1e6, 1e6, allow_nan=False), width=st.floats(1e-3, 1e6), integer=st.booleans())
def test_round_edges_properties(lo, width, integer):
    hi = lo + width
    if integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    edges = round_edges(lo, hi, integer=integer)
    assert all(b > a for a, b in zip(edges, edges[1:], strict=False))
    assert edges[0] <= lo and edges[-1] > hi
    assert edges[0] != lo or lo == 0
    assert 2 <= len(edges) <= 25
    for e in edges:  # printed as a person writes it: a short decimal, no binary artefact
        assert re.fullmatch(r"-?\d+(\.\d{1,9})?(e[-+]?\d+)?", repr(e)), edges


def test_cli_init_prints_review_and_writes_it(tmp_path):
    data = tmp_path / "cases.csv"
    _frame().to_csv(data, index=False)
    out = tmp_path / "cfg.toml"
    result = CliRunner().invoke(app, ["init", str(data), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "review" in result.output and "domains_confirmed = false" in result.output
    assert (tmp_path / "cfg.review.md").is_file()
    bad = CliRunner().invoke(app, ["init", str(data), "-o", str(out), "--preset", "nope"])
    assert bad.exit_code == 2 and "unknown preset" in bad.output
    lone = CliRunner().invoke(app, ["init", str(data), "-o", str(out), "--propose-unmatched"])
    assert lone.exit_code == 2


def test_small_file_names_and_long_text_are_left_out(tmp_path):
    frame = pd.DataFrame({
        "fullName": [f"Person Number{i}" for i in range(30)],
        "story": ["she was promised a job abroad and then " + str(i) for i in range(30)],
        "sex": ["F", "M"] * 15,
    })
    data = tmp_path / "small.csv"
    frame.to_csv(data, index=False)
    starter = init_config(data, tmp_path / "small.toml")
    rows = {r.column: r for r in starter.review}
    assert rows["fullName"].kind == "left out" and "identifier" in rows["fullName"].why
    assert rows["story"].kind == "left out" and "free text" in rows["story"].why
    assert rows["sex"].kind == "categorical" and rows["sex"].quasi_identifier
    text = (tmp_path / "small.toml").read_text() + (tmp_path / "small.review.md").read_text()
    assert "Number1" not in text and "promised" not in text
