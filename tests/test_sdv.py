"""SDV Metadata ⇄ ptsynth Schema: forms read, public domains, refusals, round trips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

import ptsynth
from ptsynth.demo import demo_config_path
from ptsynth.errors import ConfigError, InputError, SchemaError
from ptsynth.schema import ColumnSpec, Schema
from ptsynth.sdv import parse_datetimes, read_metadata, resolve


def _demo_schema() -> Schema:
    return ptsynth.ReleaseConfig.load(demo_config_path()).schema


def _table(columns: dict, **extra) -> dict:
    return {"METADATA_SPEC_VERSION": "V2", "tables": {"cases": {"columns": columns, **extra}},
            "relationships": []}


def _explicit_domains(schema: Schema) -> dict:
    """What a caller passes for the demo schema's columns that SDV metadata cannot describe."""
    out: dict = {}
    for c in schema.data_columns:
        if c.kind == "numeric":
            out[c.name] = list(c.bins)
        elif c.kind == "date":
            out[c.name] = {"period": c.period, "start": c.start, "end": c.end}
        elif c.kind == "set":
            out[c.name] = {"kind": "set", "values": list(c.values), "delimiter": c.delimiter}
        else:
            out[c.name] = "metadata"
    return out


def _same_domains(a: Schema, b: Schema) -> None:
    assert a.subject_id == b.subject_id
    assert [(c.name, c.kind) for c in a.columns] == [(c.name, c.kind) for c in b.columns]
    assert a.encoded_domains() == tuple(
        d.__class__(d.name, d.labels, d.source, d.kind, d.allows_missing) for d in b.encoded_domains()
    )


def test_round_trip_through_the_sdv_dict_keeps_every_domain() -> None:
    schema = _demo_schema()
    doc = schema.to_sdv_dict(table_name="cases")
    assert doc["METADATA_SPEC_VERSION"] == "V2" and doc["tables"]["cases"]["primary_key"] == "caseId"
    back = Schema.from_sdv(json.loads(json.dumps(doc)), domains=_explicit_domains(schema))
    _same_domains(back, schema)
    # the released schema (all labels) round-trips with the metadata's own ranges alone, except
    # set columns, which SDV sees as categorical over their member combinations
    released = schema.released()
    sets = {c.name: {"kind": "set", "values": list(c.values)} for c in released.columns
            if c.kind == "set"}
    back = Schema.from_sdv(released.to_sdv_dict(), domains={
        **{c.name: "metadata" for c in released.columns if c.kind != "set"}, **sets})
    _same_domains(back, released)


def test_sdv_itself_accepts_the_metadata_and_gives_it_back() -> None:
    metadata_cls = pytest.importorskip("sdv.metadata").Metadata
    schema = _demo_schema()
    metadata = schema.to_sdv(table_name="cases")
    assert isinstance(metadata, metadata_cls)
    metadata.validate()
    assert metadata.to_dict() == schema.to_sdv_dict(table_name="cases")
    _same_domains(Schema.from_sdv(metadata, domains=_explicit_domains(schema)), schema)


def test_detected_metadata_needs_public_domains_and_names_the_columns() -> None:
    pytest.importorskip("sdv")
    from sdv.metadata import Metadata

    frame = ptsynth.generate_demo(300, 2)[["gender", "ageBroad", "age", "isForcedLabour"]]
    metadata = Metadata.detect_from_dataframes({"cases": frame})
    # SDV filled range_values from the data: not public, so not used as domains
    assert "range_values" in metadata.to_dict()["tables"]["cases"]["columns"]["gender"]
    with pytest.raises(SchemaError, match=r"no public domain for 4 column\(s\) \(gender, ageBroad, age, isForcedLabour\)"):
        Schema.from_sdv(metadata)
    schema = Schema.from_sdv(metadata, domains=demo_config_path())  # a preset, by path
    assert [c.kind for c in schema.columns] == ["categorical", "ordinal", "numeric", "categorical"]
    assert schema.column("age").bins == _demo_schema().column("age").bins


def test_domain_forms() -> None:
    md = _table({
        "id": {"sdtype": "id"},
        "sex": {"sdtype": "categorical", "range_values": ["F", "M"]},
        "band": {"sdtype": "ordinal"},
        "age": {"sdtype": "numerical", "range_min": 0, "range_max": 99},
        "seen": {"sdtype": "datetime", "datetime_format": "%d/%m/%Y",
                 "range_min": "01/01/2010", "range_max": "31/12/2020"},
        "flag": {"sdtype": "boolean"},
        "means": {"sdtype": "categorical"},
    }, primary_key="id")
    spec = ColumnSpec(name="other", kind="ordinal", values=("lo", "mid", "hi"))
    schema = Schema.from_sdv(md, domains={
        "sex": "metadata", "band": spec, "age": [0, 18, 65, 120], "seen": "metadata",
        "means": {"kind": "set", "values": ["debt", "threats"]},
    })
    assert schema.subject_id == "id" and schema.column("id").kind == "subject_id"
    assert schema.column("sex").values == ("F", "M")
    assert schema.column("band").name == "band" and schema.column("band").kind == "ordinal"
    assert schema.column("age").bins == (0, 18, 65, 120)
    seen = schema.column("seen")
    assert (seen.kind, str(seen.start), str(seen.end)) == ("date", "2010-01-01", "2020-12-31")
    assert schema.column("flag").values == ("False", "True")  # booleans need no domain
    assert schema.column("means").kind == "set"
    # 'metadata' for every column: numerical ranges become 10 round bins covering the range;
    # columns without a range stay without a public domain
    everything = resolve(md, domains="metadata")
    assert everything.unconfirmed == ["band", "means"]
    edges = everything.specs["age"].bins
    assert edges[0] <= 0 and edges[-1] > 99 and len(edges) == 11
    with pytest.raises(SchemaError, match=r"\(band, means\)"):
        Schema.from_sdv(md, domains="metadata")


@pytest.mark.parametrize(
    ("columns", "match"),
    [
        ({"email": {"sdtype": "email", "pii": True}}, "personal data"),
        ({"x": {"sdtype": "unknown", "pii": True}}, "personal data"),
        ({"case": {"sdtype": "id"}}, "not the primary key"),
    ],
)
def test_identifiers_and_personal_data_are_refused(columns: dict, match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        Schema.from_sdv(_table({**columns, "sex": {"sdtype": "categorical"}}),
                        domains={"sex": ["F", "M"]})


def test_bad_domains_are_refused_with_the_column() -> None:
    md = _table({"sex": {"sdtype": "categorical"}, "seen": {"sdtype": "datetime"}})
    with pytest.raises(SchemaError, match="does not have"):
        Schema.from_sdv(md, domains={"sex": ["F"], "seen": "metadata", "nope": ["x"]})
    with pytest.raises(SchemaError, match="'seen'.*holds no range"):
        Schema.from_sdv(md, domains={"sex": ["F"], "seen": "metadata"})
    with pytest.raises(SchemaError, match="'seen'.*is a table"):
        Schema.from_sdv(md, domains={"sex": ["F"], "seen": ["2020"]})
    with pytest.raises(SchemaError, match="'sex'.*same entry twice"):
        Schema.from_sdv(md, domains={"sex": ["F", "F"], "seen": {"start": "2000", "end": "2001"}})
    with pytest.raises(SchemaError, match="domains must be"):
        Schema.from_sdv(md, domains=42)


def test_metadata_forms(tmp_path: Path) -> None:
    columns = {"sex": {"sdtype": "categorical"}}
    single = {"METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "columns": columns}
    assert read_metadata(single).name == "table"
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(_table(columns)))
    assert read_metadata(path).name == "cases"
    # SDV 1.x: an ordered categorical is an ordinal
    v1 = {"METADATA_SPEC_VERSION": "V1", "tables": {"t": {"columns": {
        "band": {"sdtype": "categorical", "order": ["lo", "hi"]},
        "n": {"sdtype": "numerical", "computer_representation": "Int64"}}}}}
    schema = Schema.from_sdv(v1, domains={"band": "metadata", "n": [0, 10]})
    assert schema.column("band").kind == "ordinal" and schema.column("band").values == ("lo", "hi")
    two = {"tables": {"a": {"columns": columns}, "b": {"columns": columns}}}
    with pytest.raises(SchemaError, match="2 tables"):
        read_metadata(two)
    assert read_metadata(two, table_name="b").name == "b"
    with pytest.raises(SchemaError, match="readable JSON"):
        (tmp_path / "bad.json").write_text("{")
        read_metadata(tmp_path / "bad.json")
    with pytest.raises(SchemaError, match="metadata must be"):
        read_metadata(3.5)


def test_unconfirmed_columns_come_from_the_metadata_or_the_frame() -> None:
    md = _table({"sex": {"sdtype": "categorical", "range_values": ["M", "F"]},
                 "age": {"sdtype": "numerical"}, "size": {"sdtype": "ordinal"}})
    resolved = resolve(md)
    assert resolved.unconfirmed == ["sex", "age", "size"]
    frame = pd.DataFrame({"sex": ["F", None], "age": [3.0, 47.5], "size": [10, 9]})
    schema = resolved.schema(frame)
    assert schema.column("sex").values == ("M", "F")  # the metadata's (detected) ranges
    assert schema.column("age").bins[0] <= 3 and schema.column("age").bins[-1] > 47.5
    assert schema.column("size").values == ("9", "10")  # numeric order, spelled as ingest reads
    with pytest.raises(SchemaError, match="no public domain and no data"):
        resolved.schema(None)


def test_parse_datetimes_names_the_column_never_the_value() -> None:
    frame = pd.DataFrame({"seen": ["31/12/2019", "", None, "2019-13-45"]})
    with pytest.raises(InputError, match="'seen'.*1 value") as err:
        parse_datetimes(frame, {"seen": "%d/%m/%Y"})
    assert "2019-13-45" not in str(err.value)
    out = parse_datetimes(frame.iloc[:3], {"seen": "%d/%m/%Y"})
    assert str(out["seen"].iloc[0].date()) == "2019-12-31" and out["seen"].isna().sum() == 2


def test_without_sdv_only_to_sdv_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sdv", None)
    monkeypatch.setitem(sys.modules, "sdv.metadata", None)
    schema = _demo_schema()
    assert Schema.from_sdv(schema.to_sdv_dict(), domains=schema).names == schema.names
    with pytest.raises(ConfigError, match=r"pip install 'ptsynth\[sdv\]'"):
        schema.to_sdv()
