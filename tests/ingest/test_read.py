"""Ingest: every source format, cleaning rules, per-subject merge, SDS format cases, real data."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptsynth.config import ReleaseConfig
from ptsynth.errors import InputError
from ptsynth.ingest import read_records, read_records_sql
from ptsynth.schema import Schema

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PTSYNTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
CORPUS = Path(__file__).parent / "bad_inputs"
SCHEMA = ReleaseConfig.load(CORPUS / "config.toml").schema


def _frame() -> pd.DataFrame:
    return pd.read_csv(CORPUS / "valid.csv", dtype=str, keep_default_na=False)


def _reference():
    return read_records(CORPUS / "valid.csv", SCHEMA)


def test_valid_codes():
    t = _reference()
    assert t.column_names == ("gender", "age", "registered", "means=debt", "means=threats",
                              "means=abuse", "forced")
    expected = np.array([
        [0, 1, 5, 0, 1, 1, 0],
        [1, 1, 6, 1, 0, 0, 1],
        [0, 1, 7, 1, 1, 1, 0],
    ])
    np.testing.assert_array_equal(t.codes, expected)
    assert np.issubdtype(t.codes.dtype, np.integer)


@pytest.mark.parametrize("fmt", ["tsv", "parquet", "feather", "arrow", "frame", "table", "sql", "sql_path"])
def test_all_sources_agree(tmp_path, fmt):
    ref = _reference()
    df = _frame()
    if fmt == "tsv":
        src = tmp_path / "x.tsv"
        df.to_csv(src, sep="\t", index=False)
        t = read_records(src, SCHEMA)
    elif fmt in ("parquet", "feather", "arrow"):
        src = tmp_path / f"x.{fmt}"
        table = pa.Table.from_pandas(df, preserve_index=False)
        (pq.write_table if fmt == "parquet" else feather.write_feather)(table, src)
        t = read_records(src, SCHEMA)
    elif fmt == "frame":
        t = read_records(df, SCHEMA)
    elif fmt == "table":
        t = read_records(pa.Table.from_pandas(df, preserve_index=False), SCHEMA)
    else:
        db = tmp_path / "x.sqlite"
        with sqlite3.connect(db) as con:
            df.to_sql("cases", con, index=False)
        if fmt == "sql":
            con = sqlite3.connect(db)
            t = read_records_sql("SELECT * FROM cases", con, SCHEMA)
            con.close()
        else:
            t = read_records_sql("SELECT * FROM cases", f"sqlite:///{db}", SCHEMA)
    np.testing.assert_array_equal(t.codes, ref.codes)


def test_typed_parquet_numbers_and_dates(tmp_path):
    df = _frame()
    df["age"] = [30.0, 40.0, 25.0]
    df["registered"] = pd.to_datetime(df["registered"])
    df["forced"] = [1, 0, 1]
    src = tmp_path / "typed.parquet"
    df.to_parquet(src, index=False)
    np.testing.assert_array_equal(read_records(src, SCHEMA).codes, _reference().codes)


def test_sql_error_does_not_leak(tmp_path):
    con = sqlite3.connect(":memory:")
    with pytest.raises(InputError, match="SQL query failed"):
        read_records_sql("SELECT * FROM nothing WHERE x = 'SECRET'", con, SCHEMA)


def test_cleaning_whitespace_map_missing_tokens():
    s = Schema.from_dict([
        {"name": "g", "kind": "categorical", "values": ["Woman", "Man"],
         "map": {"female": "Woman", "F": "Woman"}, "missing_values": ["", "N", "unknown"]},
        {"name": "m", "kind": "set", "values": ["a", "b"], "missing_values": ["", "0"]},
    ])
    df = pd.DataFrame({"g": ["  Woman ", "female", "F", "N", "unknown", None, "Man"],
                       "m": [" a ; b ", "0", "a;;a", "b; ", None, "0;b", ""]})
    t = read_records(df, s)
    np.testing.assert_array_equal(t.column("g"), [0, 0, 0, 2, 2, 2, 1])
    np.testing.assert_array_equal(t.column("m=a"), [0, 1, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(t.column("m=b"), [0, 1, 1, 0, 1, 0, 1])


def test_numeric_clip_and_date_clip():
    s = Schema.from_dict([
        {"name": "x", "kind": "numeric", "bins": [0, 10, 20], "out_of_range": "clip"},
        {"name": "d", "kind": "date", "period": "year", "start": 2010, "end": 2012, "out_of_range": "clip"},
    ])
    df = pd.DataFrame({"x": ["-5", "0", "9.99", "10", "20", "1e9", ""],
                       "d": ["2000-01-01", "2010-06-30", "2011", "2012-12-31T23:00:00", "2030-01-01", "", "2011-02"]})
    t = read_records(df, s)
    np.testing.assert_array_equal(t.column("x"), [0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(t.column("d"), [0, 0, 1, 2, 2, 3, 1])


def test_extra_columns_ignore():
    s = Schema.from_dict([{"name": "g", "kind": "categorical", "values": ["a"]}], extra_columns="ignore")
    t = read_records(pd.DataFrame({"g": ["a", "a"], "other": ["x", "y"]}), s)
    assert t.column_names == ("g",)


MERGE_SCHEMA = Schema.from_dict([
    {"name": "pid", "kind": "subject_id"},
    {"name": "g", "kind": "categorical", "values": ["a", "b"]},
    {"name": "h", "kind": "ordinal", "values": ["1", "2"], "missing": "forbid"},
    {"name": "m", "kind": "set", "values": ["x", "y", "z"]},
])


def test_merge_missing_plus_value_and_set_union():
    df = pd.DataFrame({"pid": ["p1", "p2", "p1", "p3", "p2"],
                       "g": ["", "b", "a", "", ""],
                       "h": ["1", "2", "1", "2", "2"],
                       "m": ["x", "", "z", "y", "y;x"]})
    t = read_records(df, MERGE_SCHEMA)
    assert t.n_records == 3  # order of first appearance: p1, p2, p3
    np.testing.assert_array_equal(t.column("g"), [0, 1, 2])
    np.testing.assert_array_equal(t.column("h"), [0, 1, 1])
    present = t.select(["m=x", "m=y", "m=z"]).codes == 0
    np.testing.assert_array_equal(present, [[1, 0, 1], [1, 1, 0], [0, 1, 0]])


def test_merge_conflict_reports_first_row_of_subject_only():
    df = pd.DataFrame({"pid": ["p1", "p2", "p2", "p1"], "g": ["a", "a", "a", "a"],
                       "h": ["1", "1", "1", "2"], "m": ["", "", "", ""]})
    with pytest.raises(InputError) as info:
        read_records(df, MERGE_SCHEMA)
    assert info.value.row == 1 and info.value.column == "h" and info.value.more == 0
    assert "p1" not in str(info.value)


def test_missing_ids_allowed_stand_alone():
    s = Schema.from_dict([{"name": "pid", "kind": "subject_id", "missing": "allow"},
                          {"name": "g", "kind": "categorical", "values": ["a", "b"]}])
    t = read_records(pd.DataFrame({"pid": ["1", "", "1", ""], "g": ["a", "b", "", "a"]}), s)
    np.testing.assert_array_equal(t.column("g"), [0, 1, 0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["a", "b", ""]),
                          st.sets(st.sampled_from(["x", "y", "z"]))), min_size=2, max_size=40))
def test_merge_properties(rows):
    """One record per distinct id; sets are unions; single values agree or the input is refused."""
    df = pd.DataFrame({"pid": [str(r[0]) for r in rows], "g": [r[1] for r in rows],
                       "h": ["1"] * len(rows), "m": [";".join(sorted(r[2])) for r in rows]})
    ids = list(dict.fromkeys(df["pid"]))
    conflict = any(df.loc[(df.pid == i) & (df.g != ""), "g"].nunique() > 1 for i in ids)
    if conflict or len(ids) < 2:
        with pytest.raises(InputError):
            read_records(df, MERGE_SCHEMA)
        return
    t = read_records(df, MERGE_SCHEMA)
    assert t.n_records == len(ids)
    for k, i in enumerate(ids):
        sub = df[df.pid == i]
        members = set().union(*[set(filter(None, v.split(";"))) for v in sub["m"]])
        got = {v for v in "xyz" if t.column(f"m={v}")[k] == 0}
        assert got == members
        gs = set(sub["g"]) - {""}
        assert t.domain("g").label(int(t.column("g")[k])) == (gs.pop() if gs else None)


# ---- Synthetic Data Showcase format cases (MIT, microsoft/synthetic-data-showcase) ----------
SDS = SHARED / "sds_format_cases"
needs_sds = pytest.mark.skipif(not SDS.is_dir(), reason=f"SDS format cases not found at {SDS}")


def _sds_schema(with_id: bool) -> Schema:
    cols = [{"name": "ID", "kind": "subject_id"}] if with_id else []
    cols += [
        {"name": "A", "kind": "set", "values": ["a1", "a2", "a3", "b2"]},
        {"name": "B", "kind": "set", "values": ["b1", "b2", "b3", "b4"], "missing_values": ["", "0"]},
        {"name": "C", "kind": "set", "values": ["c1", "c2", "c3", "c4"]},
        {"name": "F", "kind": "categorical", "values": ["1"], "missing_values": ["", "0"]},
        {"name": "G", "kind": "categorical", "values": ["1"], "missing_values": ["", "0"]},
        {"name": "D", "kind": "set", "values": [f"d{i}" for i in range(1, 11)], "delimiter": "|"},
    ]
    return Schema.from_dict(cols)


@pytest.mark.shared_data
@needs_sds
def test_sds_multi_value_joiner():
    t = read_records(SDS / "test_multi_value_column_joiner.csv", _sds_schema(True))
    assert t.n_records == 11
    b = t.select([f"B=b{i}" for i in range(1, 5)]).codes == 0
    assert b[0].tolist() == [True, False, True, True]  # "b1;b4;0;  b3": 0 absent, spaces stripped
    assert b[5].tolist() == [False, True, True, False]  # "b2;b3;b2": repeated member once
    c = t.select([f"C=c{i}" for i in range(1, 5)]).codes == 0
    assert c[8].tolist() == [True, False, True, True]  # "c1;c4;  ;c3": empty member dropped


@pytest.mark.shared_data
@needs_sds
def test_sds_duplicated_ids_merge():
    t = read_records(SDS / "test_duplicated_id_valid.csv", _sds_schema(True))
    assert t.n_records == 9  # ids 1..9; 1 and 9 repeat
    # id 9 (ninth distinct id in order of appearance is id 7; id 9 appears fifth)
    row9 = 4
    a = {v for v in ["a1", "a2", "a3", "b2"] if t.column(f"A={v}")[row9] == 0}
    assert a == {"a1", "a2", "b2"}
    assert t.domain("G").label(int(t.column("G")[row9])) == "1"  # 0 (absent) + 1 merge to 1
    d = {v for v in [f"d{i}" for i in range(1, 11)] if t.column(f"D={v}")[row9] == 0}
    assert d == {"d1", "d3", "d7", "d10"}


@pytest.mark.shared_data
@needs_sds
def test_sds_missing_ids_refused_without_leaking():
    with pytest.raises(InputError) as info:
        read_records(SDS / "test_duplicated_id_missing_id.csv", _sds_schema(True))
    assert info.value.row == 6 and info.value.column == "ID" and info.value.more == 1


@pytest.mark.shared_data
@needs_sds
def test_sds_block_without_id():
    s = Schema.from_dict([{"name": c, "kind": "categorical", "values": [f"{c.lower()}{i}" for i in range(1, 4)]}
                          for c in "ABCD"])
    t = read_records(SDS / "test_block.csv", s)
    assert t.n_records == 3 and t.column("C").tolist() == [0, 3, 3]


# ---- presets on the real public data ---------------------------------------------------------
REAL = [
    ("ctdc_vp.toml", "ctdc_vp/CTDC_VPsynthetic_condensed.csv", 21195),
    ("nist_acs2019.toml", "nist/national2019.csv", 27253),
    ("adult.toml", "adult/adult.csv", 48842),
]


@pytest.mark.shared_data
@pytest.mark.parametrize(("config", "data", "rows"), REAL, ids=[r[0] for r in REAL])
def test_presets_read_real_data(config, data, rows):
    path = SHARED / data
    if not path.is_file():
        pytest.skip(f"shared data not found at {path} (set PTSYNTH_SHARED_DATA)")
    cfg = ReleaseConfig.load(ROOT / "configs" / config)
    t = read_records(path, cfg.schema)
    assert t.n_records == rows
    t.validate()


# ---- streaming: blocks must not change codes, row numbers or counts ----------------------
@pytest.fixture
def tiny_blocks(monkeypatch):
    """Blocks of a few rows / bytes so that small inputs span many blocks."""
    import ptsynth.ingest.sources as records

    monkeypatch.setattr(records, "BLOCK_ROWS", 3)
    monkeypatch.setattr(records, "BLOCK_BYTES", 64)


def _merge_frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    pid = rng.integers(0, n // 3, n).astype(str)
    pid[rng.random(n) < 0.1] = ""  # rows without id stand alone
    g = np.where(rng.random(n) < 0.5, "", "a")
    m = rng.choice(["", "x", "y;z", "x;y"], n)
    return pd.DataFrame({"pid": pid, "g": g, "h": ["1"] * n, "m": m})


@pytest.mark.parametrize("fmt", ["csv", "parquet", "feather", "frame"])
def test_blocks_do_not_change_codes(tmp_path, monkeypatch, fmt):
    s = Schema.from_dict([{"name": "pid", "kind": "subject_id", "missing": "allow"},
                          {"name": "g", "kind": "categorical", "values": ["a", "b"]},
                          {"name": "h", "kind": "ordinal", "values": ["1", "2"]},
                          {"name": "m", "kind": "set", "values": ["x", "y", "z"]}])
    df = _merge_frame(300)
    whole = read_records(df, s)
    import ptsynth.ingest.sources as records

    monkeypatch.setattr(records, "BLOCK_ROWS", 7)
    monkeypatch.setattr(records, "BLOCK_BYTES", 128)
    if fmt == "frame":
        src = df
    else:
        src = tmp_path / f"x.{fmt}"
        if fmt == "csv":
            df.to_csv(src, index=False)
        else:
            table = pa.Table.from_pandas(df, preserve_index=False)
            if fmt == "parquet":
                pq.write_table(table, src, row_group_size=11)
            else:
                feather.write_feather(table, src, chunksize=13)
    t = read_records(src, s)
    assert t.n_records < 300
    np.testing.assert_array_equal(t.codes, whole.codes)
    # reference: first-appearance order of ids, lone rows in place
    ids = df["pid"].tolist()
    order = []
    for i, p in enumerate(ids):
        if p == "" or p not in ids[:i]:
            order.append(i)
    assert t.n_records == len(order)
    np.testing.assert_array_equal(t.column("m=x"), [0 if any(
        "x" in df["m"][j].split(";") for j in range(len(ids)) if (ids[j] == ids[i] and ids[i] != "") or j == i)
        else 1 for i in order])


def test_row_numbers_and_counts_exact_across_blocks(tmp_path, tiny_blocks):
    good = (CORPUS / "valid.csv").read_text().splitlines()
    bad_rows = [40, 41, 77, 300]  # 1-based data row numbers that hold an unknown gender
    lines = [good[0]]
    for i in range(1, 400):
        g = "SECRETG" if i in bad_rows else "Woman"
        lines.append(f"{i},{g},30,2015-02-01,debt,1")
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_records(path, SCHEMA)
    assert info.value.row == bad_rows[0] + 1 and info.value.column == "gender"
    assert info.value.more == len(bad_rows) - 1
    assert "SECRETG" not in str(info.value)


def test_earlier_column_wins_over_earlier_block(tmp_path, tiny_blocks):
    """The reported rule is the one a whole-file pass meets first (column order), not the first
    block with a problem: a late bad 'gender' beats an early bad 'forced'."""
    good = (CORPUS / "valid.csv").read_text().splitlines()
    lines = [good[0]] + [f"{i},Woman,30,2015-02-01,debt,1" for i in range(1, 200)]
    lines[3] = "3,Woman,30,2015-02-01,debt,SECRETF"
    lines[150] = "150,SECRETG,30,2015-02-01,debt,1"
    path = tmp_path / "order.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_records(path, SCHEMA)
    assert info.value.column == "gender" and info.value.row == 151 and info.value.more == 0


def test_ragged_row_in_late_block_wins(tmp_path, tiny_blocks):
    good = (CORPUS / "valid.csv").read_text().splitlines()
    lines = [good[0]] + [f"{i},SECRETG,30,2015-02-01,debt,1" for i in range(1, 100)]
    lines[90] = "90,Woman,30"
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_records(path, SCHEMA)
    assert "different number of fields" in info.value.rule and info.value.row == 91


def test_conflict_across_blocks_names_first_row(tmp_path, tiny_blocks):
    good = (CORPUS / "valid.csv").read_text().splitlines()
    lines = [good[0]] + [f"{i},Woman,30,2015-02-01,debt,1" for i in range(1, 60)]
    lines.append("7,Man,30,2015-02-01,debt,1")  # id 7 (row 8) disagrees in a later block
    path = tmp_path / "conflict.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_records(path, SCHEMA)
    assert info.value.row == 8 and info.value.column == "gender" and info.value.more == 0


def test_codes_are_narrow():
    t = _reference()
    assert t.codes.dtype == np.uint8


def test_blank_header_line(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\ngender\nWoman\n")
    with pytest.raises(InputError, match="header line is empty") as info:
        read_records(path, SCHEMA)
    assert info.value.row == 1
