"""Values outside the declared domain (``unknown`` / ``out_of_range``), their private counts,
and records holding a declared impossible combination."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from ptsynth.config import ReleaseConfig
from ptsynth.errors import InputError, SchemaError
from ptsynth.ingest import read_records
from ptsynth.schema import Schema

SECRET = "Atlantis"  # a value outside every domain: must never appear in a message

COLUMNS = [
    {"name": "country", "kind": "categorical", "values": ["UKR", "PHL", "Other"]},
    {"name": "means", "kind": "set", "values": ["debt", "threats", "other"]},
    {"name": "age", "kind": "numeric", "bins": [0, 18, 120]},
    {"name": "registered", "kind": "date", "period": "year", "start": "2015-01-01",
     "end": "2020-12-31"},
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "country": ["UKR", SECRET, "PHL", SECRET, "", "UKR"],
        "means": ["debt", "debt;" + SECRET, "", SECRET, "threats", "debt;threats"],
        "age": ["17", "30", "200", "45", "", "-3"],
        "registered": ["2016-03-01", "2010-05-05", "2019-01-01", "", "2031-01-01", "2020-12-31"],
    })


def _schema(**policies) -> Schema:
    cols = copy.deepcopy(COLUMNS)
    for c in cols:
        c.update(policies.get(c["name"], {}))
    return Schema.from_dict(cols)


def _labels(table, schema: Schema) -> pd.DataFrame:
    return schema.decode(table)


def test_default_policy_refuses_and_never_names_the_value():
    with pytest.raises(InputError) as exc:
        read_records(_frame(), _schema())
    msg = str(exc.value)
    assert "column 'country'" in msg and "row 2" in msg and "1 more" in msg
    assert 'set unknown = "other"' in msg  # says how to recode such values
    assert SECRET not in msg


def test_other_and_missing_policies_recode_and_count_privately():
    schema = _schema(
        country={"unknown": "other", "other": "Other"},
        means={"unknown": "missing"},
        age={"out_of_range": "clip"},
        registered={"out_of_range": "missing"},
    )
    table = read_records(_frame(), schema)
    summary = table.summary
    out = _labels(table, schema)
    assert list(out["country"]) == ["UKR", "Other", "PHL", "Other", "", "UKR"]
    assert list(out["means"]) == ["debt", "debt", "", "", "threats", "debt;threats"]
    assert list(out["age"]) == ["[0, 18)", "[18, 120)", "[18, 120)", "[18, 120)", "", "[0, 18)"]
    assert list(out["registered"]) == ["2016", "", "2019", "", "", "2020"]
    got = {k: v["rows"] for k, v in summary.outside_domain.items()}
    assert got == {"country": 2, "means": 2, "age": 2, "registered": 2}
    assert summary.outside_domain["country"]["policy"] == "recorded as 'Other'"
    assert summary.outside_domain["means"]["policy"] == "member dropped"
    text = " ".join(summary.outside_domain_lines()) + str(summary.outside_domain)
    assert SECRET not in text


def test_set_members_may_become_the_catch_all_member():
    schema = _schema(country={"unknown": "missing"}, means={"unknown": "other", "other": "other"},
                     age={"out_of_range": "missing"}, registered={"out_of_range": "clip"})
    table = read_records(_frame(), schema)
    summary = table.summary
    out = _labels(table, schema)
    assert list(out["means"]) == ["debt", "debt;other", "", "other", "threats", "debt;threats"]
    assert list(out["country"]) == ["UKR", "", "PHL", "", "", "UKR"]
    assert list(out["age"]) == ["[0, 18)", "[18, 120)", "", "[18, 120)", "", ""]
    assert list(out["registered"]) == ["2016", "2015", "2019", "", "2020", "2020"]
    assert {k: v["rows"] for k, v in summary.outside_domain.items()} == {
        "country": 2, "means": 2, "age": 2, "registered": 2}


def test_counts_add_up_across_blocks(monkeypatch):
    from ptsynth.ingest import sources

    monkeypatch.setattr(sources, "BLOCK_ROWS", 2)
    schema = _schema(country={"unknown": "other", "other": "Other"}, means={"unknown": "missing"},
                     age={"out_of_range": "clip"}, registered={"out_of_range": "clip"})
    summary = read_records(_frame(), schema).summary
    assert summary.outside_domain["country"]["rows"] == 2
    assert summary.outside_domain["age"]["rows"] == 2


def test_the_per_person_merge_sees_recoded_values():
    schema = Schema.from_dict([
        {"name": "id", "kind": "subject_id"},
        {"name": "country", "kind": "categorical", "values": ["UKR", "PHL"], "unknown": "missing"},
    ])
    df = pd.DataFrame({"id": ["a", "a", "b", "c"], "country": ["UKR", SECRET, "PHL", "PHL"]})
    table = read_records(df, schema)
    assert list(schema.decode(table)["country"]) == ["UKR", "PHL", "PHL"]  # missing + UKR → UKR


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"unknown": "other"}, "needs other"),
        ({"unknown": "other", "other": "Elsewhere"}, "needs other"),
        ({"other": "Other"}, 'only applies with unknown = "other"'),
        ({"unknown": "missing", "missing": "forbid"}, 'needs missing = "allow"'),
        ({"unknown": "ignore"}, "unknown must be one of"),
    ],
)
def test_bad_policies_are_config_errors(change, fragment):
    cols = copy.deepcopy(COLUMNS)
    cols[0].update(change)
    with pytest.raises(SchemaError, match=fragment):
        Schema.from_dict(cols)


def test_policies_only_where_they_apply():
    cols = copy.deepcopy(COLUMNS)
    cols[2]["unknown"] = "missing"
    with pytest.raises(SchemaError, match="do not apply to kind 'numeric'"):
        Schema.from_dict(cols)
    cols = copy.deepcopy(COLUMNS)
    cols[3].update({"out_of_range": "missing", "missing": "forbid"})
    with pytest.raises(SchemaError, match='needs missing = "allow"'):
        Schema.from_dict(cols)


def test_policies_round_trip_through_the_config():
    data = {"dataset": {"name": "t"}, "privacy": {"epsilon": 1.0, "delta": 1e-6},
            "columns": _schema(country={"unknown": "other", "other": "Other"},
                               age={"out_of_range": "missing"}).to_dict()}
    cfg = ReleaseConfig.from_dict(data)
    again = ReleaseConfig.from_dict(cfg.to_dict())
    assert again.schema.column("country").unknown == "other"
    assert again.schema.column("country").other == "Other"
    assert again.schema.column("age").out_of_range == "missing"


# -- structural zeros in the input ----------------------------------------------------------------
STRUCTURED = {
    "columns": [
        {"name": "id", "kind": "subject_id"},
        {"name": "country", "kind": "categorical", "values": ["UKR", "PHL"]},
        {"name": "region", "kind": "categorical", "values": ["Europe", "Asia"]},
        {"name": "minor", "kind": "categorical", "values": ["yes", "no"]},
        {"name": "type", "kind": "set", "values": ["domestic", "mining"]},
    ],
    "hierarchies": [{"column": "country", "parent": "region",
                     "map": {"UKR": "Europe", "PHL": "Asia"}}],
    "constraints": [{"name": "no child miners", "forbid": {"minor": ["yes"], "type": ["mining"]}}],
}


def _structured() -> Schema:
    s = copy.deepcopy(STRUCTURED)
    return Schema.from_dict(s["columns"], hierarchies=s["hierarchies"],
                            constraints=s["constraints"])


def test_a_record_in_a_structural_zero_is_refused_with_row_and_columns():
    df = pd.DataFrame({"id": ["1", "2", "3", "4"], "country": ["UKR", "PHL", "PHL", "UKR"],
                       "region": ["Europe", "Asia", "Europe", ""], "minor": ["no", "yes", "", "yes"],
                       "type": ["mining", "domestic", "mining", "mining"]})
    with pytest.raises(InputError) as exc:
        read_records(df, _structured())
    msg = str(exc.value)
    assert "row 3" in msg and "hierarchy 'country → region'" in msg and "country, region" in msg
    assert "PHL" not in msg and "Europe" not in msg
    df.loc[2, "region"] = "Asia"
    with pytest.raises(InputError) as exc:
        read_records(df, _structured())
    assert "row 4" in str(exc.value) and "no child miners" in str(exc.value)
    df.loc[3, "minor"] = ""
    table = read_records(df, _structured())  # missing takes part in no zero
    assert table.n_records == 4


def test_a_merged_person_in_a_structural_zero_is_refused():
    df = pd.DataFrame({"id": ["1", "1", "2"], "country": ["UKR", "", "PHL"],
                       "region": ["", "", "Asia"], "minor": ["yes", "", "no"],
                       "type": ["domestic", "mining", ""]})
    with pytest.raises(InputError) as exc:
        read_records(df, _structured())
    msg = str(exc.value)
    assert "merged" in msg and "no child miners" in msg and "row" not in msg.split(":")[0]


def test_an_unresolved_dp_bins_schema_is_never_encoded():
    schema = Schema.from_dict([{"name": "age", "kind": "numeric", "bins": "dp-quantiles",
                                "count": 3, "range": [0, 120], "resolution": 1}])
    with pytest.raises(SchemaError, match="must be measured before"):
        read_records(pd.DataFrame({"age": np.arange(10)}), schema)
