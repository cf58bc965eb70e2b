"""Bad-input corpus: every rule fails with file, row, column and rule, never the value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ptsynth.config import ReleaseConfig
from ptsynth.errors import InputError
from ptsynth.ingest import read_records

CORPUS = Path(__file__).parent / "bad_inputs"
SCHEMA = ReleaseConfig.load(CORPUS / "config.toml").schema

# file, rule fragment, row (header = row 1), column, more, strings that must not appear
CASES = [
    ("unknown_category.csv", "not one of the declared values", 3, "gender", 1, ["SECRETGENDER", "SECRETOTHER"]),
    ("unknown_category.tsv", "not one of the declared values", 3, "gender", 0, ["SECRETTAB"]),
    ("non_numeric.csv", "not a number", 2, "age", 0, ["SECRET_AGE"]),
    ("out_of_range.csv", "outside the declared bins", 3, "age", 0, ["999"]),
    ("bad_date.csv", "not an ISO 8601 date", 3, "registered", 0, ["SECRET-DATE"]),
    ("date_out_of_range.csv", "outside the declared start..end", 3, "registered", 0, ["1999", "07-04"]),
    ("missing_forbidden.csv", "missing = \"forbid\"", 3, "forced", 0, []),
    ("missing_column.csv", "declared column is not in the input", None, "means", 0, []),
    # header names are named by position: a file without a header has a record in its place
    ("extra_column.csv", "not declared in the schema", None, None, 0, ["SECRETCOLUMN"]),
    ("empty.csv", "file is empty", None, None, 0, []),
    ("header_only.csv", "header but no records", 2, None, 0, []),
    ("ragged.csv", "different number of fields", 3, None, 0, ["SECRETEXTRA"]),
    ("bad_encoding.csv", "not valid UTF-8", 4, None, 0, ["SECRET"]),
    ("duplicate_conflict.csv", "disagree", 2, "gender", 0, ["Woman", "Man"]),
    ("too_few.csv", "fewer than 2 records", None, None, 0, []),
    ("unknown_set_member.csv", "set member is not one of the declared", 2, "means", 0, ["SECRETMEANS"]),
    ("too_many_members.csv", "more members than max_values", 2, "means", 0, ["debt;threats"]),
    ("missing_id.csv", "subject id is missing", 3, "id", 0, []),
    ("duplicate_header.csv", "have the same name", None, None, 0, []),
    ("bad_quoting.csv", "unclosed quote", 3, None, 0, ["threats"]),
]


@pytest.mark.parametrize(("name", "rule", "row", "column", "more", "secrets"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_input_names_place_not_value(name, rule, row, column, more, secrets):
    path = CORPUS / name
    with pytest.raises(InputError) as info:
        read_records(path, SCHEMA)
    err = info.value
    msg = str(err)
    assert rule in err.rule, msg
    assert err.file == str(path) and str(path) in msg
    assert err.row == row, msg
    assert err.column == column, msg
    assert err.more == more, msg
    if row is not None:
        assert f"row {row}" in msg
    if column is not None:
        assert repr(column) in msg
    for secret in secrets:
        assert secret not in msg, f"{name}: message leaks a value"


def test_valid_corpus_file_reads():
    table = read_records(CORPUS / "valid.csv", SCHEMA)
    assert table.n_records == 3
    assert table.column_names[:3] == ("gender", "age", "registered")


def test_file_label_replaces_path_in_messages():
    with pytest.raises(InputError) as info:
        read_records(CORPUS / "non_numeric.csv", SCHEMA, file_label="upload #7")
    assert "upload #7" in str(info.value)
    assert str(CORPUS) not in str(info.value)


def test_dataframe_rows_count_from_one():
    frame = pd.read_csv(CORPUS / "unknown_category.csv", dtype=str, keep_default_na=False)
    with pytest.raises(InputError) as info:
        read_records(frame, SCHEMA)
    assert info.value.row == 2  # second record of a table (no header line)
    assert "SECRET" not in str(info.value)


def test_missing_input_file():
    with pytest.raises(InputError, match="does not exist"):
        read_records(CORPUS / "no_such_file.csv", SCHEMA)


def test_no_partial_output_on_late_error(tmp_path):
    good = (CORPUS / "valid.csv").read_text().splitlines()
    lines = good + [f"{i},Woman,30,2015-02-01,debt,1" for i in range(10, 500)] + ["999,Woman,30,2015-02-01,debt,SECRETX"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_records(path, SCHEMA)
    assert info.value.row == len(lines)
    assert info.value.column == "forced"
    assert "SECRETX" not in str(info.value)
