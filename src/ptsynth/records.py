"""Ingest: case records from CSV / TSV / Parquet / Arrow / pandas / SQL → an encoded table.

Why strict and vectorised: this is the one place where sensitive records enter. Every cell is
checked against the *public* schema with whole-column Arrow / NumPy operations (no Python loop
per row); the first violation of a rule raises :class:`~ptsynth.errors.InputError` naming the
file, row, column and rule plus how many other rows break the same rule, and **never** the
offending value. Nothing is returned unless the whole input is valid (no partial output).

Row numbers: for text files, ``row N`` is the line as a person counts it (header = row 1, so the
first record is row 2); this equals the physical line unless a quoted cell holds a line break.
For tables (Parquet, Arrow, pandas, SQL) the first record is row 1.

Cleaning rules, all public and documented: cells are stripped of surrounding whitespace; a cell
equal to one of the column's ``missing_values`` (default: empty) is missing; the column's ``map``
renames spellings to declared values; set cells are split on the delimiter, members are
stripped, empty members and missing tokens dropped, repeated members counted once.

With a subject id, rows sharing an id merge into one record (one person = one record, which the
add/remove-one-person neighbouring relation needs): single-valued columns must agree where both
are present (missing + value → value), set columns take the union.
"""

from __future__ import annotations

import codecs
import csv
import io
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from ptsynth.errors import InputError
from ptsynth.schema import ColumnSpec, Schema, period_ordinal
from ptsynth.table import EncodedTable

#: Fewest records (after merging by subject) a table may hold.
MIN_RECORDS = 2
_PARQUET = (".parquet", ".pq")
_ARROW = (".feather", ".arrow", ".ipc", ".arrows")
_TAB = (".tsv", ".tab")
_BLOCK = 1 << 24


class ErrorReporter:
    """Raises InputError for the first row of a boolean problem mask (never the value)."""

    def __init__(self, label: str | None, row_offset: int) -> None:
        self.label, self.row_offset = label, row_offset

    def check(self, bad: np.ndarray, rule: str, column: str | None = None,
              rows: np.ndarray | None = None) -> None:
        """``bad``: mask over records; ``rows`` maps mask positions to input row indices."""
        hits = np.flatnonzero(bad)
        if hits.size == 0:
            return
        if rows is not None:  # several problems in one input row count once
            hits = np.unique(rows[hits])
        raise InputError(rule, file=self.label, row=int(hits[0]) + self.row_offset, column=column,
                         more=int(hits.size - 1))

    def fail(self, rule: str, *, column: str | None = None, row: int | None = None) -> InputError:
        return InputError(rule, file=self.label, row=row, column=column)


# --------------------------------------------------------------------------------------------
# Loading sources into an Arrow table (every value still raw)
# --------------------------------------------------------------------------------------------
def _check_utf8(path: Path, rep: ErrorReporter) -> bytes:
    """Stream the file through a strict UTF-8 decoder; return its first block (for the header).

    Bounded memory; on failure the error names the line, never the bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    lines_before = 0
    head = b""
    with pa.input_stream(str(path), compression="detect") as fh:
        while True:
            block = fh.read(_BLOCK)
            if not head:
                head = block
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                line = lines_before + block[: max(exc.start, 0)].count(b"\n") + 1
                raise rep.fail("file is not valid UTF-8 text (save it as UTF-8)", row=line) from None
            if not block:
                break
            lines_before += block.count(b"\n")
    return head


def _read_text(path: Path, rep: ErrorReporter) -> pa.Table:
    head = _check_utf8(path, rep)
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    if not text.strip():
        raise rep.fail("file is empty (no header line)")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    suffixes = [s.lower() for s in path.suffixes]
    if any(s in _TAB for s in suffixes) or ("\t" in first_line and "," not in first_line):
        delim = "\t"
    else:
        delim = ","
    header = next(csv.reader(io.StringIO(first_line), delimiter=delim))
    _check_header(header, rep)

    invalid: list[int | None] = []

    def handler(row: Any) -> str:
        invalid.append(row.number)
        return "skip"

    def read(threads: bool) -> pa.Table:
        return pacsv.read_csv(
            str(path),
            read_options=pacsv.ReadOptions(use_threads=threads, block_size=_BLOCK),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True,
                                             ignore_empty_lines=False, invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.large_string() for h in header},
                strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
            ),
        )

    try:
        table = read(True)
        if invalid:
            invalid.clear()
            read(False)  # single-threaded: Arrow then knows each bad row's line number
            first = min((n for n in invalid if n is not None), default=None)
            raise InputError("row has a different number of fields than the header "
                             "(or an unclosed quote)", file=rep.label, row=first,
                             more=len(invalid) - 1)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Arrow's message may quote the row: never pass it on.
        raise rep.fail("file could not be parsed as delimited text (check quoting)") from None
    if table.num_rows == 0:
        raise rep.fail("file has a header but no records", row=2)
    return table


def _check_header(names: list[str], rep: ErrorReporter) -> None:
    stripped = [str(n).strip() for n in names]
    for i, n in enumerate(stripped):
        if not n:
            raise rep.fail(f"header column {i + 1} has no name")
    seen: set[str] = set()
    for n in stripped:
        if n in seen:
            raise rep.fail("column name occurs twice in the header", column=n)
        seen.add(n)


def _frame_to_arrow(df: pd.DataFrame, rep: ErrorReporter) -> pa.Table:
    cols = {}
    for name in df.columns:
        s = df[name]
        try:
            cols[str(name)] = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python types in one column
            cols[str(name)] = pa.array(s.astype("string"), from_pandas=True)
    _check_header(list(cols), rep)
    if len(cols) != len(df.columns):
        raise rep.fail("column name occurs twice")
    return pa.table(cols) if cols else pa.table({})


def load_table(source: Any, rep: ErrorReporter) -> pa.Table:
    """Any supported source → an Arrow table of raw values. Sets ``rep.row_offset``."""
    if isinstance(source, pd.DataFrame):
        rep.row_offset = 1
        return _frame_to_arrow(source, rep)
    if isinstance(source, pa.Table):
        rep.row_offset = 1
        _check_header(source.column_names, rep)
        return source
    if isinstance(source, pa.RecordBatch):
        rep.row_offset = 1
        return pa.Table.from_batches([source])
    path = Path(source)
    if not path.is_file():
        raise rep.fail("input file does not exist or is not a file")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        rep.row_offset = 2 if suffix not in _PARQUET + _ARROW else 1
        raise rep.fail("file is empty (no header line)")
    if suffix in _PARQUET or suffix in _ARROW:
        rep.row_offset = 1
        try:
            table = pq.read_table(path) if suffix in _PARQUET else feather.read_table(path)
        except (pa.ArrowException, OSError):
            kind = "Parquet" if suffix in _PARQUET else "Arrow IPC / Feather"
            raise rep.fail(f"file cannot be read as {kind}") from None
        _check_header(table.column_names, rep)
        return table
    rep.row_offset = 2
    return _read_text(path, rep)


# --------------------------------------------------------------------------------------------
# Column cleaning and encoding (Arrow compute, whole columns)
# --------------------------------------------------------------------------------------------
def column_as_strings(col: pa.ChunkedArray | pa.Array, rep: ErrorReporter, name: str) -> pa.Array:
    """Raw column → large_string array, without guessing: integral floats print as integers."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.large_string())
    if pa.types.is_floating(t):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, t), arr)
        valid = pc.drop_null(arr)
        if len(valid) == 0 or pc.all(pc.equal(pc.floor(valid), valid)).as_py():
            with np.errstate(all="ignore"):
                arr = pc.cast(arr, pa.int64(), safe=False)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        try:
            arr = pc.cast(arr, pa.large_string())
        except pa.ArrowInvalid:
            raise rep.fail("column holds bytes that are not UTF-8 text", column=name) from None
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            arr = pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise rep.fail("column type is not supported (use text, numbers or dates)", column=name) from None
    return pc.cast(arr, pa.large_string())


def _clean(col: pa.ChunkedArray, spec: ColumnSpec, rep: ErrorReporter) -> tuple[pa.Array, np.ndarray]:
    """Stripped, mapped strings and the missing mask (null, empty or a declared missing token)."""
    arr = pc.utf8_trim_whitespace(column_as_strings(col, rep, spec.name))
    if spec.mapping:
        keys = pa.array(list(spec.mapping), pa.large_string())
        vals = pa.array(list(spec.mapping.values()), pa.large_string())
        idx = pc.index_in(arr, value_set=keys)
        arr = pc.if_else(pc.is_valid(idx), pc.take(vals, idx), arr)
    tokens = pa.array(list(spec.missing_values), pa.large_string())
    missing = pc.or_(pc.is_null(arr), pc.is_in(arr, value_set=tokens))
    return arr, missing.to_numpy(zero_copy_only=False).astype(bool)


def _encode_labels(arr: pa.Array, missing: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Codes via Arrow ``index_in`` (missing → len(labels)) and the mask of unknown values."""
    idx = pc.index_in(arr, value_set=pa.array(list(labels), pa.large_string()))
    codes = pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    unknown = (codes < 0) & ~missing
    codes[missing] = len(labels)
    return codes, unknown


def _encode_numeric(col: pa.ChunkedArray, spec: ColumnSpec, rep: ErrorReporter, err: Callable) -> np.ndarray:
    raw = col.combine_chunks()
    if pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type) or pa.types.is_decimal(raw.type):
        x = pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False)
        x = np.asarray(x, dtype=np.float64)
        missing = np.isnan(x)
    else:
        arr, missing = _clean(col, spec, rep)
        strings = pd.Series(pc.if_else(pa.array(missing), pa.scalar(None, pa.large_string()), arr)
                            .to_numpy(zero_copy_only=False), dtype=object)
        x = pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        err(np.isnan(x) & ~missing, "value is not a number", spec.name)
    edges = np.asarray(spec.bins)
    nbins = len(edges) - 1
    with np.errstate(invalid="ignore"):
        idx = np.searchsorted(edges, x, side="right") - 1
        outside = ~missing & ~((x >= edges[0]) & (x < edges[-1]))
    if spec.out_of_range == "clip":
        idx = np.clip(idx, 0, nbins - 1)
    else:
        err(outside, "value lies outside the declared bins (set out_of_range = \"clip\" to clamp)", spec.name)
    idx[missing] = nbins
    return idx


def _encode_date(col: pa.ChunkedArray, spec: ColumnSpec, rep: ErrorReporter, err: Callable) -> np.ndarray:
    raw = col.combine_chunks()
    if pa.types.is_timestamp(raw.type) or pa.types.is_date(raw.type):
        ts = pd.Series(pd.to_datetime(raw.to_pandas(), utc=True))
        missing = ts.isna().to_numpy()
    else:
        arr, missing = _clean(col, spec, rep)
        strings = pd.Series(pc.if_else(pa.array(missing), pa.scalar(None, pa.large_string()), arr)
                            .to_numpy(zero_copy_only=False), dtype=object)
        try:
            ts = pd.to_datetime(strings, format="ISO8601", errors="coerce", utc=True)
        except (ValueError, OverflowError):
            ts = pd.Series(pd.NaT, index=strings.index)
        err(ts.isna().to_numpy() & ~missing, "value is not an ISO 8601 date (YYYY-MM-DD)", spec.name)
    years = ts.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    months = ts.dt.month.to_numpy(dtype=np.float64, na_value=np.nan)
    lo, hi = spec.period_range
    p = np.full(len(years), lo, dtype=np.int64)
    ok = ~missing
    p[ok] = period_ordinal(years[ok].astype(np.int64), months[ok].astype(np.int64), spec.period)
    idx = p - lo
    outside = ok & ((idx < 0) | (idx > hi - lo))
    if spec.out_of_range == "clip":
        idx = np.clip(idx, 0, hi - lo)
    else:
        err(outside, "date lies outside the declared start..end range (set out_of_range = \"clip\" to clamp)", spec.name)
    idx[missing] = hi - lo + 1
    return idx


def _encode_set(col: pa.ChunkedArray, spec: ColumnSpec, rep: ErrorReporter, err: Callable) -> np.ndarray:
    """(n, m) member codes: 0 = present, 1 = absent. Split / flatten / index_in, no row loop."""
    arr = column_as_strings(col, rep, spec.name)
    n, m = len(arr), len(spec.values)
    lists = pc.split_pattern(arr, pattern=spec.delimiter)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    members = pc.utf8_trim_whitespace(pc.list_flatten(lists))
    if spec.mapping:
        keys = pa.array(list(spec.mapping), pa.large_string())
        vals = pa.array(list(spec.mapping.values()), pa.large_string())
        idx = pc.index_in(members, value_set=keys)
        members = pc.if_else(pc.is_valid(idx), pc.take(vals, idx), members)
    tokens = pa.array(list(spec.missing_values) + [""], pa.large_string())
    absent = pc.is_in(members, value_set=tokens).to_numpy(zero_copy_only=False).astype(bool)
    codes, unknown = _encode_labels(members, absent, spec.values)
    err(unknown, "set member is not one of the declared values", spec.name, parents)
    keep = ~absent
    rows, cols = parents[keep], codes[keep]
    present = np.zeros((n, m), dtype=bool)
    present[rows, cols] = True
    if spec.missing == "forbid":
        err(~present.any(axis=1), "cell is empty but the column has missing = \"forbid\"", spec.name)
    if spec.max_values is not None:
        err(present.sum(axis=1) > spec.max_values, "cell has more members than max_values", spec.name)
    return np.where(present, 0, 1)


def _subject_groups(col: pa.ChunkedArray, spec: ColumnSpec, rep: ErrorReporter, err: Callable) -> np.ndarray:
    """Group number of each row, in order of first appearance (rows without id stand alone)."""
    arr, missing = _clean(col, spec, rep)
    if spec.missing == "forbid":
        err(missing, "subject id is missing (set missing = \"allow\" if such rows are distinct people)", spec.name)
    enc = pc.dictionary_encode(pc.if_else(pa.array(missing), pa.scalar(None, pa.large_string()), arr))
    g = enc.indices.to_numpy(zero_copy_only=False)
    g = np.asarray(g, dtype=np.float64)
    n_known = len(enc.dictionary)
    lone = np.isnan(g)
    g = np.where(lone, 0, g).astype(np.int64)
    g[lone] = n_known + np.arange(int(lone.sum()))
    # renumber so groups follow first appearance in the file
    _, first = np.unique(g, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[g]


def _merge(codes: np.ndarray, groups: np.ndarray, schema: Schema, domains: tuple, err: Callable) -> np.ndarray:
    """One record per subject: agree-or-missing for single-valued columns, union for sets.

    Only subjects with several rows go through the sort / ``reduceat`` path; the (usual)
    single-row subjects are copied straight through.
    """
    n_groups = int(groups.max()) + 1 if groups.size else 0
    if n_groups == codes.shape[0]:
        return codes
    sizes = np.bincount(groups, minlength=n_groups)
    first_row = np.full(n_groups, codes.shape[0], dtype=np.int64)
    np.minimum.at(first_row, groups, np.arange(codes.shape[0]))
    merged = np.empty((n_groups, codes.shape[1]), dtype=codes.dtype)
    single = sizes[groups] == 1
    merged[groups[single]] = codes[single]
    rows = np.flatnonzero(~single)
    order = rows[np.argsort(groups[rows], kind="stable")]
    gs = groups[order]
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    targets = gs[starts]
    block = np.ascontiguousarray(codes[order].T).astype(np.int64)
    big = np.iinfo(np.int64).max
    for j, dom in enumerate(domains):  # loop over columns, not rows
        c = block[j]
        if dom.kind == "set_member":
            merged[targets, j] = np.minimum.reduceat(c, starts)
            continue
        if dom.allows_missing:
            mc = dom.missing_code
            hi = np.maximum.reduceat(np.where(c == mc, -1, c), starts)
            lo = np.minimum.reduceat(np.where(c == mc, big, c), starts)
            conflict = (hi >= 0) & (lo != hi)
            merged[targets, j] = np.where(hi >= 0, hi, mc)
        else:
            hi = np.maximum.reduceat(c, starts)
            lo = np.minimum.reduceat(c, starts)
            conflict = lo != hi
            merged[targets, j] = hi
        err(conflict, "rows of one subject id disagree in this single-valued column "
                      "(ids and values are not shown)", dom.source, first_row[targets])
    for spec in schema.data_columns:
        if spec.kind == "set" and spec.max_values is not None:
            idx = [k for k, d in enumerate(domains) if d.source == spec.name]
            count = (merged[:, idx] == 0).sum(axis=1)
            err(count > spec.max_values, "the merged rows of one subject id have more set members "
                                         "than max_values", spec.name, first_row)
    return merged


def encode_table(table: pa.Table, schema: Schema, rep: ErrorReporter) -> EncodedTable:
    """Validate and encode a raw Arrow table against the schema (see the module docstring)."""
    names = [str(c).strip() for c in table.column_names]
    table = table.rename_columns(names)
    present = set(names)
    for spec in schema.columns:
        if spec.name not in present:
            raise rep.fail("declared column is not in the input", column=spec.name)
    if schema.extra_columns == "error":
        declared = set(schema.names)
        for name in names:
            if name not in declared:
                raise rep.fail("input column is not declared in the schema "
                               "(set [dataset] extra_columns = \"ignore\" to skip it)", column=name)
    if table.num_rows == 0:
        raise rep.fail("input has no records")
    err = rep.check
    domains = schema.encoded_domains()
    max_size = max(d.size for d in domains)
    dtype = np.int16 if max_size < 2**15 else np.int32
    blocks: list[np.ndarray] = []
    groups = None
    for spec in schema.columns:
        col = table.column(spec.name)
        if spec.kind == "subject_id":
            groups = _subject_groups(col, spec, rep, err)
            continue
        if spec.kind in ("categorical", "ordinal"):
            arr, missing = _clean(col, spec, rep)
            codes, unknown = _encode_labels(arr, missing, spec.values)
            err(unknown, "value is not one of the declared values", spec.name)
            if spec.missing == "forbid":
                err(missing, "value is missing but the column has missing = \"forbid\"", spec.name)
            blocks.append(codes[:, None])
        elif spec.kind == "numeric":
            codes = _encode_numeric(col, spec, rep, err)
            if spec.missing == "forbid":
                err(codes == len(spec.bins) - 1, "value is missing but the column has missing = \"forbid\"", spec.name)
            blocks.append(codes[:, None])
        elif spec.kind == "date":
            codes = _encode_date(col, spec, rep, err)
            if spec.missing == "forbid":
                err(codes == len(spec.labels), "value is missing but the column has missing = \"forbid\"", spec.name)
            blocks.append(codes[:, None])
        else:
            blocks.append(_encode_set(col, spec, rep, err))
    codes = np.concatenate(blocks, axis=1).astype(dtype, copy=False)
    if groups is not None:
        codes = _merge(codes, groups, schema, domains, err)
    if codes.shape[0] < MIN_RECORDS:
        raise rep.fail(f"input holds fewer than {MIN_RECORDS} records"
                       + (" after merging rows by subject id" if groups is not None else ""))
    out = EncodedTable(codes, domains)
    out.validate()
    return out


def _label_for(source: Any, file_label: str | None) -> str | None:
    if file_label is not None:
        return file_label
    if isinstance(source, (str, Path)):
        return str(source)
    return None


def read_records(source: Any, schema: Schema, *, file_label: str | None = None) -> EncodedTable:
    """Read, validate and encode case records. See the module docstring for rules and row numbers.

    Args:
        source: path (``.csv``/``.tsv``/other text, ``.parquet``, ``.feather``/``.arrow``),
            a pandas DataFrame or a pyarrow Table.
        schema: the public schema (domains come from it, never from the data).
        file_label: name used in error messages (default: the path; none for in-memory tables).

    Raises:
        InputError: the first violated rule (file, row, column, rule, count of others).
    """
    rep = ErrorReporter(_label_for(source, file_label), 2)
    table = load_table(source, rep)
    return encode_table(table, schema, rep)


def read_records_sql(query: str, connection: sqlite3.Connection | str, schema: Schema, *,
                     file_label: str | None = None) -> EncodedTable:
    """Records from a SQL query (a ``sqlite3`` connection, or a path/``sqlite:///`` URL to a file).

    Row numbers in errors count the query's result rows from 1.
    """
    label = file_label or "SQL query"
    rep = ErrorReporter(label, 1)
    own = False
    if isinstance(connection, (str, Path)):
        target = str(connection)
        if target.startswith("sqlite:///"):
            target = target[len("sqlite:///"):]
        if not Path(target).is_file():
            raise rep.fail("SQLite database file does not exist")
        connection = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        own = True
    try:
        try:
            frame = pd.read_sql(query, connection, dtype=object)
        except Exception as exc:  # database errors: report the kind only (no data values)
            raise rep.fail(f"SQL query failed ({type(exc).__name__})") from None
    finally:
        if own:
            connection.close()
    return encode_table(_frame_to_arrow(frame, rep), schema, rep)
