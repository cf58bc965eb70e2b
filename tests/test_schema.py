"""Schema and config: validation in one place, encoded domains, decode, presets."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.config import ReleaseConfig
from ptsynth.demo import demo_config_path
from ptsynth.errors import ConfigError, SchemaError
from ptsynth.schema import Schema, bin_labels
from ptsynth.table import EncodedTable

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "configs").glob("*.toml"))

BASE = {
    "dataset": {"name": "t"},
    "privacy": {"epsilon": 1.0, "delta": 1e-6},
    "columns": [
        {"name": "g", "kind": "categorical", "values": ["a", "b"]},
        {"name": "m", "kind": "set", "values": ["x", "y", "z"]},
        {"name": "age", "kind": "numeric", "bins": [0, 18, 65, 120]},
        {"name": "d", "kind": "date", "period": "quarter", "start": "2020-01-01", "end": "2021-06-30"},
    ],
}


def _with(**changes):
    import copy

    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *head, last = path.split("__")
        node = data
        for h in head:
            node = node[int(h)] if h.isdigit() else node[h]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return data


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_encoded_domains_expand_sets_and_label_bins_and_periods():
    cfg = ReleaseConfig.from_dict(BASE)
    doms = cfg.schema.encoded_domains()
    names = [d.name for d in doms]
    assert names == ["g", "m=x", "m=y", "m=z", "age", "d"]
    member = doms[1]
    assert member.labels == ("1",) and member.allows_missing and member.kind == "set_member"
    assert member.source == "m"
    assert doms[4].labels == ("[0, 18)", "[18, 65)", "[65, 120)")
    assert doms[5].labels == ("2020-Q1", "2020-Q2", "2020-Q3", "2020-Q4", "2021-Q1", "2021-Q2")
    assert cfg.release.reporting_length == 3 and cfg.release.k == 10
    assert cfg.release.synthesizer == "pgm" and cfg.release.rows is None
    assert cfg.evaluation.holdout_fraction == 0.0 and cfg.evaluation.target is None
    assert cfg.domains_confirmed is True


def test_month_and_year_periods():
    s = Schema.from_dict([{"name": "d", "kind": "date", "period": "month", "start": dt.date(2019, 11, 5),
                           "end": "2020-02"}])
    assert s.encoded_domains()[0].labels == ("2019-11", "2019-12", "2020-01", "2020-02")
    s = Schema.from_dict([{"name": "d", "kind": "date", "start": 2002, "end": "2004-12-31"}])
    assert s.encoded_domains()[0].labels == ("2002", "2003", "2004")


def test_bin_labels_format():
    assert bin_labels([0, 2.5, 10]) == ("[0, 2.5)", "[2.5, 10)")


@pytest.mark.parametrize(
    ("change", "fragment", "column"),
    [
        ({"columns__0__values": None}, "needs a public list of values", "g"),
        ({"columns__0__values": ["a", "a"]}, "same entry twice", "g"),
        ({"columns__0__kind": "text"}, "kind must be one of", "g"),
        ({"columns__0__colour": "red"}, "unknown key", "g"),
        ({"columns__2__bins": [0, 18, 18]}, "strictly increasing", "age"),
        ({"columns__2__bins": [5]}, "at least two", "age"),
        ({"columns__2__values": ["a"]}, "do not apply", "age"),
        ({"columns__3__end": "2019-01-01"}, "end is before start", "d"),
        ({"columns__3__period": "week"}, "period must be one of", "d"),
        ({"columns__1__values": ["x;y", "z"]}, "contains the delimiter", "m"),
        ({"columns__1__max_values": 0}, "max_values", "m"),
        ({"columns__0__missing": "maybe"}, "missing must be one of", "g"),
        ({"columns__0__map": {"A": "c"}}, "map targets", "g"),
    ],
)
def test_schema_errors_name_config_column_rule(tmp_path, change, fragment, column):
    path = _write(tmp_path, _with(**change))
    with pytest.raises(SchemaError) as info:
        ReleaseConfig.load(path)
    msg = str(info.value)
    assert str(path) in msg and fragment in msg and repr(column) in msg


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"privacy__epsilon": 0}, "epsilon must lie in"),
        ({"privacy__delta": 1.0}, "delta must lie in"),
        ({"privacy": None}, "[privacy]: table is missing"),
        ({"dataset__name": ""}, "name must be"),
        ({"dataset__epsilion": 1}, "unknown key"),
        ({"dataset__ledger": "l.json", "dataset__lifetime_epsilon": 5.0}, "both"),
        ({"dataset__ledger": "l.json", "dataset__lifetime_epsilon": 0.5, "dataset__lifetime_delta": 1e-5},
         "exceeds the dataset"),
        ({"dataset__lifetime_epsilon": 5, "dataset__lifetime_delta": 1e-5}, "need a ledger path"),
        ({"dataset__extra_columns": "warn"}, "extra_columns"),
        ({"release": {"synthesizer": "gan"}}, "synthesizer"),
        ({"release": {"k": 0}}, "k must be an integer"),
        ({"evaluation": {"target": "m"}}, "single-valued"),
        ({"evaluation": {"holdout_fraction": 1.5}}, "holdout_fraction"),
        ({"extra": {}}, "unknown table"),
    ],
)
def test_config_errors(tmp_path, change, fragment):
    path = _write(tmp_path, _with(**change))
    with pytest.raises(ConfigError) as info:
        ReleaseConfig.load(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[dataset\nname=")
    with pytest.raises(ConfigError, match="invalid TOML"):
        ReleaseConfig.load(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        ReleaseConfig.load(tmp_path / "none.toml")


def test_ledger_relative_to_config_and_roundtrip(tmp_path):
    data = _with(dataset__ledger="ledgers/budget.json", dataset__lifetime_epsilon=5.0,
                 dataset__lifetime_delta=1e-5, dataset__subject_id="pid",
                 release={"rows": 100, "synthesizer": "pgm", "pgm": {"iters": 50}},
                 evaluation={"target": "g", "holdout_fraction": 0.3})
    path = _write(tmp_path, data)
    cfg = ReleaseConfig.load(path)
    assert cfg.dataset.ledger == (tmp_path / "ledgers" / "budget.json").resolve()
    assert cfg.schema.subject_id == "pid" and "pid" in cfg.schema.names
    assert cfg.release.options.iters == 50 and cfg.release.rows == 100
    assert cfg.release.options.final_iters == 250  # defaults fill the rest
    again = ReleaseConfig.from_dict(cfg.to_dict(), path=path)
    assert again.schema.encoded_domains() == cfg.schema.encoded_domains()
    assert again.dataset == cfg.dataset and again.release == cfg.release
    assert tomli_w.dumps(cfg.to_dict())


def test_subject_id_must_agree(tmp_path):
    data = _with(dataset__subject_id="g")
    with pytest.raises(SchemaError, match="subject_id"):
        ReleaseConfig.from_dict(data)


def test_set_member_name_clash():
    with pytest.raises(SchemaError, match="occurs twice"):
        Schema.from_dict([{"name": "m", "kind": "set", "values": ["x"]},
                          {"name": "m=x", "kind": "categorical", "values": ["1"]}])


def test_quasi_identifiers_and_sensitive_use_encoded_names():
    s = Schema.from_dict([
        {"name": "g", "kind": "categorical", "values": ["a"], "quasi_identifier": True},
        {"name": "m", "kind": "set", "values": ["x", "y"], "sensitive": True},
    ])
    assert s.quasi_identifiers == ["g"]
    assert s.sensitive == ["m=x", "m=y"]


def test_missing_forbid_has_no_missing_code():
    s = Schema.from_dict([{"name": "g", "kind": "ordinal", "values": ["1", "2"], "missing": "forbid"}])
    dom = s.encoded_domains()[0]
    assert not dom.allows_missing and dom.size == 2


def test_decode_condenses_sets_and_blanks_missing():
    cfg = ReleaseConfig.from_dict(BASE)
    doms = cfg.schema.encoded_domains()
    codes = np.array([[0, 0, 1, 0, 1, 5], [2, 1, 1, 1, 3, 6]])
    frame = cfg.schema.decode(EncodedTable(codes, doms))
    assert list(frame.columns) == ["g", "m", "age", "d"]
    assert frame.iloc[0].tolist() == ["a", "x;z", "[18, 65)", "2021-Q2"]
    assert frame.iloc[1].tolist() == ["", "", "", ""]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.lists(st.booleans(), min_size=14, max_size=14)),
                min_size=1, max_size=30))
def test_decode_set_roundtrip_property(rows):
    """Decoding then re-reading gives the same codes (sets of any width, incl. >12 members)."""
    from ptsynth.ingest import read_records

    values = [f"v{i}" for i in range(14)]
    s = Schema.from_dict([{"name": "g", "kind": "categorical", "values": ["a", "b"]},
                          {"name": "m", "kind": "set", "values": values, "delimiter": "|"}])
    doms = s.encoded_domains()
    codes = np.array([[g] + [0 if b else 1 for b in bits] for g, bits in rows])
    table = EncodedTable(codes, doms)
    frame = s.decode(table)
    if len(frame) < 2:
        frame = frame.iloc[[0, 0]]
        codes = codes[[0, 0]]
    again = read_records(frame, s)
    np.testing.assert_array_equal(again.codes, codes)


@pytest.mark.parametrize("path", PRESETS, ids=[p.name for p in PRESETS])
def test_presets_load(path):
    cfg = ReleaseConfig.load(path)
    assert cfg.domains_confirmed
    assert len(cfg.schema.encoded_domains()) >= 14


def test_nist_preset_has_19_columns():
    cfg = ReleaseConfig.load(ROOT / "configs" / "nist_acs2019.toml")
    assert len(cfg.schema.data_columns) == 19
    assert cfg.schema.column("AGEP").kind == "numeric"


def test_packaged_demo_config_equals_preset():
    assert demo_config_path().read_bytes() == (ROOT / "configs" / "ctdc_demo.toml").read_bytes()
