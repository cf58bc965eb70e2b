"""Ingest: case records from CSV / TSV / Parquet / Arrow / pandas / SQL → an encoded table.

Why strict and vectorised: this is the one place where sensitive records enter. Every cell is
checked against the *public* schema with whole-block Arrow / NumPy operations (no Python loop
per row); the first violated rule raises :class:`~ptsynth.errors.InputError` naming the file,
row, column and rule plus how many other rows break the same rule, and **never** the offending
value. Nothing is returned unless the whole input is valid (no partial output).

Why streaming: files are read in blocks (Arrow's streaming CSV reader with every column as
text, Parquet row groups, Arrow IPC record batches) and each block is validated and turned into
small integer codes at once, so memory holds only the codes (one byte per cell for the usual
domains) and the subject ids, never the raw text of the whole file. Each block is encoded
through its *distinct* cells (``dictionary_encode``): cleaning, mapping, number / date parsing
and set splitting run once per distinct value and reach the rows by a lookup. Problems are
tallied per rule across blocks (first row in file order, number of other rows), and the rule
reported is the one the whole-file order of checks meets first: declared column order, then
within a column the order below; per-subject merging comes last.

Row numbers: for text files, ``row N`` is the line as a person counts it (header = row 1, so the
first record is row 2); this equals the physical line unless a quoted cell holds a line break.
For tables (Parquet, Arrow, pandas, SQL) the first record is row 1.

Cleaning rules, all public and documented: cells are stripped of surrounding whitespace; a cell
equal to one of the column's ``missing_values`` (default: empty) is missing; the column's ``map``
renames spellings to declared values; set cells are split on the delimiter, members are
stripped, empty members and missing tokens dropped, repeated members counted once.

Checks per column, in order: categorical / ordinal: unknown value, missing in a ``forbid``
column; numeric: not a number, outside the bins, missing; date: not an ISO date, outside the
range, missing; set: unknown member, empty in a ``forbid`` column, more than ``max_values``;
subject id: missing in a ``forbid`` column.

With a subject id, rows sharing an id merge into one record (one person = one record, which the
add/remove-one-person neighbouring relation needs): single-valued columns must agree where both
are present (missing + value → value), set columns take the union.
"""

from __future__ import annotations

import codecs
import csv
import io
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
from ptsynth.table import ColumnDomain, EncodedTable

#: Fewest records (after merging by subject) a table may hold.
MIN_RECORDS = 2
#: Bytes of delimited text per streamed block. Arrow's reader keeps a few blocks in flight, so
#: this bounds the reader's memory (~100 MB at 2 MiB) independently of the file size.
BLOCK_BYTES = 1 << 21
#: Rows per block for tables (Parquet, Arrow, pandas, SQL).
BLOCK_ROWS = 1 << 16
_PARQUET = (".parquet", ".pq")
_ARROW = (".feather", ".arrow", ".ipc", ".arrows")
_TAB = (".tsv", ".tab")
_UTF8_BLOCK = 1 << 20
_PARSE_RULE = "file could not be parsed as delimited text (check quoting)"
_RAGGED_RULE = "row has a different number of fields than the header (or an unclosed quote)"


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


class _Issues:
    """Problems tallied across blocks: per check, the first row (file order) and the row count.

    Keys order the checks as a whole-file pass meets them: ``(column position, check number)``;
    the smallest key with a problem is raised once every block has been seen.
    """

    def __init__(self, rep: ErrorReporter) -> None:
        self.rep = rep
        self.found: dict[tuple[int, int], list[Any]] = {}

    def add(self, key: tuple[int, int], bad: np.ndarray, rule: str, column: str | None,
            base: int) -> None:
        """``bad``: row mask of one block whose first row has 0-based index ``base``."""
        hits = np.flatnonzero(bad)
        if hits.size == 0:
            return
        entry = self.found.get(key)
        if entry is None:
            self.found[key] = [base + int(hits[0]), int(hits.size), rule, column]
        elif entry[0] is not None:
            entry[1] += int(hits.size)

    def add_error(self, key: tuple[int, int], exc: InputError) -> None:
        """A rule about a whole column (e.g. an unsupported type): no row."""
        self.found.setdefault(key, [None, 1, exc.rule, exc.column])

    def raise_first(self) -> None:
        if not self.found:
            return
        row, count, rule, column = self.found[min(self.found)]
        raise InputError(rule, file=self.rep.label, column=column,
                         row=None if row is None else row + self.rep.row_offset,
                         more=count - 1 if row is not None else 0)


# --------------------------------------------------------------------------------------------
# Sources as a stream of raw Arrow record batches (every value still raw)
# --------------------------------------------------------------------------------------------
@dataclass
class _Stream:
    """Column names plus a lazy stream of record batches of at most ``BLOCK_ROWS`` rows (tables)
    or ``BLOCK_BYTES`` of text. ``finish()`` raises reader problems found on the way (ragged
    rows) and must run after the last batch, before any cell-level problem is reported."""

    names: list[str]
    batches: Iterator[pa.RecordBatch]
    schema: pa.Schema
    text: bool = False
    finish: Callable[[], None] = field(default=lambda: None)


def _check_utf8(path: Path, rep: ErrorReporter) -> tuple[bytes, bool]:
    """Stream the file through a strict UTF-8 decoder; return its first line (for the header)
    and whether the file holds anything but whitespace.

    Small blocks keep memory flat; on failure the error names the line, never the bytes.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    lines_before = 0
    head, head_done, content = b"", False, False
    with pa.input_stream(str(path), compression="detect") as fh:
        while True:
            block = fh.read(_UTF8_BLOCK)
            if not head_done:
                cut = block.find(b"\n")
                head += block if cut < 0 else block[: cut + 1]
                head_done = cut >= 0 or not block
            content = content or bool(block.strip())
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                line = lines_before + block[: max(exc.start, 0)].count(b"\n") + 1
                raise rep.fail("file is not valid UTF-8 text (save it as UTF-8)", row=line) from None
            if not block:
                break
            lines_before += block.count(b"\n")
    return head, content


def _open_text(path: Path, rep: ErrorReporter) -> _Stream:
    """Arrow's streaming CSV reader, single-threaded (it then knows each bad row's line), every
    column as text so nothing is silently coerced. UTF-8 was checked beforehand."""
    head, content = _check_utf8(path, rep)
    first_line = head.decode("utf-8", errors="ignore").lstrip("\ufeff").rstrip("\r\n")
    if not content:
        raise rep.fail("file is empty (no header line)")
    if not first_line.strip():
        raise rep.fail("header line is empty (the first line must name the columns)", row=1)
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

    try:
        reader = pacsv.open_csv(
            str(path),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delim, newlines_in_values=True,
                                             ignore_empty_lines=False, invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, check_utf8=False,
                strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Arrow's message may quote the row: never pass it on.
        raise rep.fail(_PARSE_RULE) from None

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise rep.fail(_PARSE_RULE) from None
            yield batch

    def finish() -> None:
        if invalid:
            first = min((n for n in invalid if n is not None), default=None)
            raise InputError(_RAGGED_RULE, file=rep.label, row=first, more=len(invalid) - 1)

    return _Stream(list(reader.schema.names), batches(), reader.schema, text=True, finish=finish)


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


def _sliced(batches: Iterator[pa.RecordBatch], kind: str | None, rep: ErrorReporter
            ) -> Iterator[pa.RecordBatch]:
    """Batches cut to at most ``BLOCK_ROWS`` rows; reader errors become one InputError."""
    try:
        for batch in batches:
            for start in range(0, batch.num_rows, BLOCK_ROWS):
                yield batch.slice(start, BLOCK_ROWS)
    except (pa.ArrowException, OSError):
        if kind is None:
            raise
        raise rep.fail(f"file cannot be read as {kind}") from None


def _table_stream(table: pa.Table, rep: ErrorReporter) -> _Stream:
    return _Stream(list(table.column_names), _sliced(iter(table.to_batches()), None, rep), table.schema)


def _open_binary(path: Path, rep: ErrorReporter) -> _Stream:
    """Parquet row groups or Arrow IPC record batches, one at a time."""
    parquet = path.suffix.lower() in _PARQUET
    kind = "Parquet" if parquet else "Arrow IPC / Feather"
    try:
        if parquet:
            pf = pq.ParquetFile(path)
            schema, batches = pf.schema_arrow, pf.iter_batches(batch_size=BLOCK_ROWS)
        else:
            schema, batches = _open_ipc(path)
    except (pa.ArrowException, OSError):
        raise rep.fail(f"file cannot be read as {kind}") from None
    _check_header(schema.names, rep)
    return _Stream(list(schema.names), _sliced(batches, kind, rep), schema)


def _open_ipc(path: Path) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """IPC file (Feather v2), IPC stream, or as a last resort Feather v1 read whole."""
    try:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
    except pa.ArrowInvalid:
        pass
    try:
        stream = pa.ipc.open_stream(pa.memory_map(str(path)))
        return stream.schema, iter(stream)
    except pa.ArrowInvalid:
        table = feather.read_table(path)
        return table.schema, iter(table.to_batches())


def open_stream(source: Any, rep: ErrorReporter) -> _Stream:
    """Any supported source → a stream of raw record batches. Sets ``rep.row_offset``."""
    if isinstance(source, pd.DataFrame):
        rep.row_offset = 1
        return _table_stream(_frame_to_arrow(source, rep), rep)
    if isinstance(source, pa.Table):
        rep.row_offset = 1
        _check_header(source.column_names, rep)
        return _table_stream(source, rep)
    if isinstance(source, pa.RecordBatch):
        rep.row_offset = 1
        _check_header(source.schema.names, rep)
        return _table_stream(pa.Table.from_batches([source]), rep)
    path = Path(source)
    if not path.is_file():
        raise rep.fail("input file does not exist or is not a file")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        rep.row_offset = 2 if suffix not in _PARQUET + _ARROW else 1
        raise rep.fail("file is empty (no header line)")
    if suffix in _PARQUET or suffix in _ARROW:
        rep.row_offset = 1
        return _open_binary(path, rep)
    rep.row_offset = 2
    return _open_text(path, rep)


def load_table(source: Any, rep: ErrorReporter) -> pa.Table:
    """Any supported source → one in-memory Arrow table of raw values (``ptsynth init``)."""
    stream = open_stream(source, rep)
    batches = list(stream.batches)
    stream.finish()
    if stream.text and sum(b.num_rows for b in batches) == 0:
        raise rep.fail("file has a header but no records", row=2)
    return pa.Table.from_batches(batches, schema=stream.schema)


# --------------------------------------------------------------------------------------------
# Column cleaning and encoding (Arrow compute on the distinct cells of a block)
# --------------------------------------------------------------------------------------------
def _as_strings(col: pa.ChunkedArray | pa.Array, rep: ErrorReporter, name: str) -> pa.Array:
    """Raw column → string / large_string array, without guessing: integral floats print as
    integers."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
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
    return arr


def column_as_strings(col: pa.ChunkedArray | pa.Array, rep: ErrorReporter, name: str) -> pa.Array:
    """Raw column → large_string array, without guessing: integral floats print as integers."""
    return pc.cast(_as_strings(col, rep, name), pa.large_string())


def _distinct(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Distinct cells (null included, as one entry) and each row's index into them."""
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    return enc.dictionary, np.asarray(enc.indices.to_numpy(zero_copy_only=False))


def _typed(values: list[str], like: pa.Array) -> pa.Array:
    return pa.array(values, like.type)


def _map_and_trim(arr: pa.Array, spec: ColumnSpec) -> pa.Array:
    arr = pc.utf8_trim_whitespace(arr)
    if spec.mapping:
        idx = pc.index_in(arr, value_set=_typed(list(spec.mapping), arr))
        arr = pc.if_else(pc.is_valid(idx), pc.take(_typed(list(spec.mapping.values()), arr), idx), arr)
    return arr


def _bools(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _clean(uniq: pa.Array, spec: ColumnSpec) -> tuple[pa.Array, np.ndarray]:
    """Stripped, mapped strings and the missing mask (null, empty or a declared missing token)."""
    arr = _map_and_trim(uniq, spec)
    missing = pc.or_(pc.is_null(arr), pc.is_in(arr, value_set=_typed(list(spec.missing_values), arr)))
    return arr, _bools(pc.fill_null(missing, True))


def _encode_labels(arr: pa.Array, missing: np.ndarray, labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Codes via Arrow ``index_in`` (missing → len(labels)) and the mask of unknown values."""
    idx = pc.index_in(arr, value_set=_typed(list(labels), arr))
    codes = np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
    unknown = (codes < 0) & ~missing
    codes[missing] = len(labels)
    return codes, unknown


def _without_missing(arr: pa.Array, missing: np.ndarray) -> pd.Series:
    return pd.Series(pc.if_else(pa.array(missing), pa.scalar(None, arr.type), arr)
                     .to_numpy(zero_copy_only=False), dtype=object)


def _parse_numbers(arr: pa.Array, missing: np.ndarray) -> np.ndarray:
    strings = _without_missing(arr, missing)
    return pd.to_numeric(strings, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _parse_dates(arr: pa.Array, missing: np.ndarray) -> pd.Series:
    strings = _without_missing(arr, missing)
    try:
        return pd.Series(pd.to_datetime(strings, format="ISO8601", errors="coerce", utc=True))
    except (ValueError, OverflowError):  # one odd value can sink the whole call: retry singly
        out = []
        for s in strings:  # loop over distinct cells of one block (error path only)
            try:
                out.append(pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True))
            except (ValueError, OverflowError):
                out.append(pd.NaT)
        return pd.Series(pd.to_datetime(pd.Series(out, dtype=object), utc=True))


@dataclass
class _Encoded:
    """One column of one block: codes per row, and one mask per check (in check order) over the
    distinct cells ``rows`` points into (over the rows themselves when ``rows`` is None)."""

    codes: np.ndarray
    checks: list[tuple[np.ndarray, str]]
    rows: np.ndarray | None = None

    def row_masks(self) -> Iterator[tuple[np.ndarray, str]]:
        """Row masks of the checks that find something (the rest cost nothing)."""
        for mask, rule in self.checks:
            if mask.any():
                yield (mask if self.rows is None else mask[self.rows]), rule


_FORBID = "value is missing but the column has missing = \"forbid\""


def _bin(x: np.ndarray, missing: np.ndarray, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    edges = np.asarray(spec.bins)
    nbins = len(edges) - 1
    with np.errstate(invalid="ignore"):
        idx = np.searchsorted(edges, x, side="right") - 1
        outside = ~missing & ~((x >= edges[0]) & (x < edges[-1]))
    if spec.out_of_range == "clip":
        idx = np.clip(idx, 0, nbins - 1)
        outside = np.zeros_like(outside)
    idx[missing] = nbins
    return idx, outside


def _encode_numeric(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    outside_rule = "value lies outside the declared bins (set out_of_range = \"clip\" to clamp)"
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(x)
        idx, outside = _bin(x, missing, spec)
        checks = [(np.zeros(len(x), bool), "value is not a number"), (outside, outside_rule)]
        return _Encoded(idx, checks + [(missing, _FORBID)])
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    x = _parse_numbers(arr, missing)
    idx, outside = _bin(x, missing, spec)
    checks = [(np.isnan(x) & ~missing, "value is not a number"), (outside, outside_rule), (missing, _FORBID)]
    return _Encoded(idx[rows], checks, rows)


def _periods(ts: pd.Series, missing: np.ndarray, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray]:
    years = ts.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    months = ts.dt.month.to_numpy(dtype=np.float64, na_value=np.nan)
    lo, hi = spec.period_range
    p = np.full(len(years), lo, dtype=np.int64)
    ok = ~missing & ~np.isnan(years)
    p[ok] = period_ordinal(years[ok].astype(np.int64), months[ok].astype(np.int64), spec.period)
    idx = p - lo
    outside = ok & ((idx < 0) | (idx > hi - lo))
    if spec.out_of_range == "clip":
        idx = np.clip(idx, 0, hi - lo)
        outside = np.zeros_like(outside)
    idx[missing] = hi - lo + 1
    return idx, outside


def _encode_date(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    outside_rule = "date lies outside the declared start..end range (set out_of_range = \"clip\" to clamp)"
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        ts = pd.Series(pd.to_datetime(col.to_pandas(), utc=True))
        missing = ts.isna().to_numpy()
        idx, outside = _periods(ts, missing, spec)
        checks = [(np.zeros(len(idx), bool), "value is not an ISO 8601 date (YYYY-MM-DD)"),
                  (outside, outside_rule), (missing, _FORBID)]
        return _Encoded(idx, checks)
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    ts = _parse_dates(arr, missing)
    unparsed = ts.isna().to_numpy() & ~missing
    idx, outside = _periods(ts, missing | unparsed, spec)
    checks = [(unparsed, "value is not an ISO 8601 date (YYYY-MM-DD)"), (outside, outside_rule),
              (missing, _FORBID)]
    return _Encoded(idx[rows], checks, rows)


def _encode_categorical(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    codes, unknown = _encode_labels(arr, missing, spec.values)
    checks = [(unknown, "value is not one of the declared values"), (missing, _FORBID)]
    return _Encoded(codes[rows], checks, rows)


def _encode_set(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    """(n, m) member codes: 0 = present, 1 = absent. Split / flatten / index_in per distinct
    cell, no row loop."""
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    n, m = len(uniq), len(spec.values)
    lists = pc.split_pattern(uniq, pattern=spec.delimiter)
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    members = _map_and_trim(pc.list_flatten(lists), spec)
    tokens = _typed(list(spec.missing_values) + [""], members)
    absent = _bools(pc.fill_null(pc.is_in(members, value_set=tokens), True))
    codes, unknown = _encode_labels(members, absent, spec.values)
    bad_member = np.zeros(n, dtype=bool)
    bad_member[parents[unknown]] = True
    keep = ~absent & ~unknown
    present = np.zeros((n, m), dtype=bool)
    present[parents[keep], codes[keep]] = True
    count = present.sum(axis=1)
    empty = (count == 0) if spec.missing == "forbid" else np.zeros(n, bool)
    too_many = (count > spec.max_values) if spec.max_values is not None else np.zeros(n, bool)
    checks = [(bad_member, "set member is not one of the declared values"),
              (empty, "cell is empty but the column has missing = \"forbid\""),
              (too_many, "cell has more members than max_values")]
    return _Encoded(np.where(present, 0, 1)[rows], checks, rows)


def _subject_ids(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Cleaned distinct ids of a block (null = missing), each row's index into them, and the
    mask of rows without an id."""
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    ids = pc.if_else(pa.array(missing), pa.scalar(None, arr.type), arr)
    return pc.cast(ids, pa.large_string()), rows, missing[rows]


def _code_dtype(domains: tuple[ColumnDomain, ...]) -> np.dtype:
    """Narrowest unsigned dtype for every domain (one byte per cell for the usual schemas)."""
    top = max(d.size for d in domains)
    return np.dtype(np.uint8 if top <= 256 else np.uint16 if top <= 65536 else np.int32)


class _Encoder:
    """Validates and encodes blocks one after another, keeping only codes and subject ids."""

    def __init__(self, schema: Schema, names: list[str], rep: ErrorReporter) -> None:
        self.schema, self.rep = schema, rep
        self.issues = _Issues(rep)
        self.domains = schema.encoded_domains()
        self.dtype = _code_dtype(self.domains)
        stripped = [str(c).strip() for c in names]
        self.position = {n: i for i, n in enumerate(stripped)}
        self.plan: list[tuple[int, ColumnSpec, slice | None]] = []
        j = 0
        for pos, spec in enumerate(schema.columns):
            width = len(spec.domains())
            self.plan.append((pos, spec, slice(j, j + width) if width else None))
            j += width
        self.blocks: list[np.ndarray] = []
        self.id_values: list[pa.Array] = []  # distinct cleaned ids of each block
        self.id_rows: list[np.ndarray] = []  # each row's index into its block's distinct ids
        self.id_sizes: list[int] = []
        self.n_rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        n, base = batch.num_rows, self.n_rows
        if n == 0:
            return
        codes = np.empty((n, len(self.domains)), dtype=self.dtype)
        for pos, spec, sl in self.plan:
            col = batch.column(self.position[spec.name])
            try:
                if spec.kind == "subject_id":
                    ids, rows, missing = _subject_ids(col, spec, self.rep)
                    self.id_values.append(ids)
                    self.id_sizes.append(len(ids))
                    self.id_rows.append(rows.astype(np.int32, copy=False))
                    if spec.missing == "forbid":
                        self.issues.add((pos, 0), missing, "subject id is missing (set missing = "
                                        "\"allow\" if such rows are distinct people)", spec.name, base)
                    continue
                if spec.kind in ("categorical", "ordinal"):
                    enc = _encode_categorical(col, spec, self.rep)
                elif spec.kind == "numeric":
                    enc = _encode_numeric(col, spec, self.rep)
                elif spec.kind == "date":
                    enc = _encode_date(col, spec, self.rep)
                else:
                    enc = _encode_set(col, spec, self.rep)
            except InputError as exc:  # the column as a whole is unusable
                self.issues.add_error((pos, -1), exc)
                continue
            numbers = {rule: k for k, (_, rule) in enumerate(enc.checks)}
            for bad, rule in enc.row_masks():
                if rule == _FORBID and spec.missing != "forbid":
                    continue
                self.issues.add((pos, numbers[rule]), bad, rule, spec.name, base)
            if self.issues.found:  # the input is refused anyway: only tally further problems
                continue
            assert sl is not None
            codes[:, sl] = enc.codes.reshape(n, -1)
        if not self.issues.found:
            self.blocks.append(codes)
        self.n_rows += n

    def result(self) -> EncodedTable:
        """Raise the first problem, or merge subjects and return the encoded table."""
        self.issues.raise_first()
        err = self.rep.check
        if self.schema.subject_id is not None and self.id_values:
            codes = self._merged(err)
        else:
            codes = self._stacked()
        if codes.shape[0] < MIN_RECORDS:
            raise self.rep.fail(f"input holds fewer than {MIN_RECORDS} records"
                                + (" after merging rows by subject id" if self.schema.subject_id else ""))
        out = EncodedTable(codes, self.domains)
        out.validate()
        return out

    def _stacked(self) -> np.ndarray:
        """Blocks copied into one array, each freed as soon as it is copied (peak ≈ 1× codes)."""
        out = np.empty((self.n_rows, len(self.domains)), dtype=self.dtype)
        start = 0
        while self.blocks:
            block = self.blocks.pop(0)
            out[start:start + len(block)] = block
            start += len(block)
        return out

    def _groups(self) -> np.ndarray:
        """Group number of each row, in order of first appearance (rows without id stand alone).

        The blocks' distinct ids are dictionary-encoded together (one shared dictionary): Arrow
        numbers them in order of first appearance, so only rows without an id need renumbering
        (a running maximum, no sort).
        """
        enc = pc.dictionary_encode(pa.chunked_array(self.id_values, pa.large_string()))
        self.id_values.clear()
        parts = []
        for chunk, rows in zip(enc.chunks, self.id_rows, strict=True):
            gid = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
            parts.append(np.asarray(gid, dtype=np.int32)[rows])
        del enc
        self.id_rows.clear()
        pa.default_memory_pool().release_unused()  # Arrow's hash table for the ids
        g = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        del parts
        lone = g < 0
        if not lone.any():
            return g
        runmax = np.maximum.accumulate(np.where(lone, -1, g))
        first = ~lone & (g > np.concatenate([[-1], runmax[:-1]]))
        del runmax
        rank = np.cumsum(first | lone) - 1
        return np.where(lone, rank, rank[first][np.maximum(g, 0)])

    def _merged(self, err: Callable) -> np.ndarray:
        """One record per subject: agree-or-missing for single-valued columns, union for sets.

        In place: groups are numbered by first appearance, so a subject's slot never lies after
        its rows; single-row subjects move up slice by slice, and only subjects with several rows
        go through the sort / ``reduceat`` path. Peak memory stays about one copy of the codes.
        """
        groups = self._groups()
        n_groups = int(groups.max()) + 1 if groups.size else 0
        out = self._stacked()
        if n_groups == out.shape[0]:
            return out
        multi = np.bincount(groups, minlength=n_groups)[groups] > 1
        rows = np.flatnonzero(multi)  # ascending
        codes = out[rows]
        for start in range(0, out.shape[0], BLOCK_ROWS):
            sl = slice(start, start + BLOCK_ROWS)
            single = ~multi[sl]
            out[groups[sl][single]] = out[sl][single]  # targets ≤ sources: nothing unread is hit
        order = np.argsort(groups[rows], kind="stable")
        gs = groups[rows][order]
        del groups, multi
        starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
        targets = gs[starts]
        first_row = rows[order][starts]  # rows ascend within a group: its first row
        block = np.ascontiguousarray(codes[order].T).astype(np.int64)
        big = np.iinfo(np.int64).max
        for j, dom in enumerate(self.domains):  # loop over columns, not rows
            c = block[j]
            if dom.kind == "set_member":
                out[targets, j] = np.minimum.reduceat(c, starts)
                continue
            if dom.allows_missing:
                mc = dom.missing_code
                hi = np.maximum.reduceat(np.where(c == mc, -1, c), starts)
                lo = np.minimum.reduceat(np.where(c == mc, big, c), starts)
                conflict = (hi >= 0) & (lo != hi)
                out[targets, j] = np.where(hi >= 0, hi, mc)
            else:
                hi = np.maximum.reduceat(c, starts)
                lo = np.minimum.reduceat(c, starts)
                conflict = lo != hi
                out[targets, j] = hi
            err(conflict, "rows of one subject id disagree in this single-valued column "
                          "(ids and values are not shown)", dom.source, first_row)
        for spec in self.schema.data_columns:
            if spec.kind == "set" and spec.max_values is not None:
                idx = [k for k, d in enumerate(self.domains) if d.source == spec.name]
                count = (out[targets][:, idx] == 0).sum(axis=1)
                err(count > spec.max_values, "the merged rows of one subject id have more set "
                                             "members than max_values", spec.name, first_row)
        try:  # drop the tail in place (no second copy of the codes)
            out.resize((n_groups, out.shape[1]), refcheck=True)
        except ValueError:
            out = out[:n_groups].copy()
        return out


def _check_columns(names: list[str], schema: Schema, rep: ErrorReporter) -> None:
    present = {str(c).strip() for c in names}
    for spec in schema.columns:
        if spec.name not in present:
            raise rep.fail("declared column is not in the input", column=spec.name)
    if schema.extra_columns == "error":
        declared = set(schema.names)
        for name in names:
            if str(name).strip() not in declared:
                raise rep.fail("input column is not declared in the schema "
                               "(set [dataset] extra_columns = \"ignore\" to skip it)", column=str(name).strip())


def _encode_stream(stream: _Stream, schema: Schema, rep: ErrorReporter) -> EncodedTable:
    """Validate and encode a stream of raw batches (see the module docstring)."""
    batches = stream.batches
    first: pa.RecordBatch | None = None
    if stream.text:  # a text file's reader problems come before any check of its columns
        for batch in batches:
            if batch.num_rows:
                first = batch
                break
        if first is None:
            stream.finish()
            raise rep.fail("file has a header but no records", row=2)
    try:
        _check_columns(stream.names, schema, rep)
    except InputError:
        for _ in batches:  # drain: problems reading the file (ragged rows) take precedence
            pass
        stream.finish()
        raise
    encoder = _Encoder(schema, stream.names, rep)
    if first is not None:
        encoder.add(first)
        del first
    for batch in batches:
        encoder.add(batch)
    pa.default_memory_pool().release_unused()  # the reader's buffers, before the merge
    stream.finish()
    if encoder.n_rows == 0:
        raise rep.fail("input has no records")
    return encoder.result()


def encode_table(table: pa.Table, schema: Schema, rep: ErrorReporter) -> EncodedTable:
    """Validate and encode a raw in-memory Arrow table against the schema, block by block."""
    return _encode_stream(_table_stream(table, rep), schema, rep)


def _label_for(source: Any, file_label: str | None) -> str | None:
    if file_label is not None:
        return file_label
    if isinstance(source, (str, Path)):
        return str(source)
    return None


def read_records(source: Any, schema: Schema, *, file_label: str | None = None) -> EncodedTable:
    """Read, validate and encode case records. See the module docstring for rules and row numbers.

    Files are streamed block by block (bounded memory: the codes plus the subject ids);
    in-memory tables are encoded block by block as well.

    Args:
        source: path (``.csv``/``.tsv``/other text, ``.parquet``, ``.feather``/``.arrow``),
            a pandas DataFrame or a pyarrow Table.
        schema: the public schema (domains come from it, never from the data).
        file_label: name used in error messages (default: the path; none for in-memory tables).

    Raises:
        InputError: the first violated rule (file, row, column, rule, count of others).
    """
    rep = ErrorReporter(_label_for(source, file_label), 2)
    return _encode_stream(open_stream(source, rep), schema, rep)


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
