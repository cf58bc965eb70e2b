"""Record sources: files, in-memory tables and databases as one stream of raw Arrow batches.

Why one protocol: validation and encoding (:mod:`ptsynth.ingest.encode`) must treat a CSV file, a
Parquet file, a pandas frame and a database query alike, block by block, so that memory stays
bounded and error messages read the same. A source yields :class:`RecordStream`: the column
names and a lazy iterator of record batches with every value still raw (text files: every
column as text, so nothing is silently coerced).

Row numbers: for text files, ``row N`` is the line as a person counts it (header = row 1, so the
first record is row 2); this equals the physical line unless a quoted cell holds a line break.
For tables (Parquet, Arrow, pandas, SQL) the first record is row 1.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from ptsynth.errors import ConfigError, InputError
from ptsynth.ingest.problems import ErrorReporter

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


@dataclass
class RecordStream:
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


def _open_text(path: Path, rep: ErrorReporter) -> RecordStream:
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

    return RecordStream(list(reader.schema.names), batches(), reader.schema, text=True, finish=finish)


def _check_header(names: list[str], rep: ErrorReporter) -> None:
    """Header names are named in errors by position only: a file without a header line has a
    record where its header should be, so a "name" may be a sensitive value."""
    stripped = [str(n).strip() for n in names]
    for i, n in enumerate(stripped):
        if not n:
            raise rep.fail(f"header column {i + 1} has no name")
    seen: dict[str, int] = {}
    for i, n in enumerate(stripped):
        if n in seen:
            raise rep.fail(f"header columns {seen[n] + 1} and {i + 1} have the same name")
        seen[n] = i


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


def _table_stream(table: pa.Table, rep: ErrorReporter) -> RecordStream:
    return RecordStream(list(table.column_names), _sliced(iter(table.to_batches()), None, rep), table.schema)


def _open_binary(path: Path, rep: ErrorReporter) -> RecordStream:
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
    return RecordStream(list(schema.names), _sliced(batches, kind, rep), schema)


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


@runtime_checkable
class RecordSource(Protocol):
    """A source of raw records other than a file or an in-memory table (a database query).

    ``open`` returns a :class:`RecordStream` and sets ``rep.row_offset`` to the number of the
    first record (1 for query results). Errors name the source and the rule, never a value.
    Database sources also offer ``fingerprint()`` (see :class:`QueryFingerprint`), which the
    manifest's keyed HMAC identifies the input by.
    """

    label: str

    def open(self, rep: ErrorReporter) -> RecordStream: ...


# ---------------------------------------------------------------------------------------------
# Database queries: one streaming path for SQLite and PostgreSQL
# ---------------------------------------------------------------------------------------------
class RowsDigest:
    """SHA-256 over the rows of a query result as they stream past, without keeping them.

    Why this shape: the manifest identifies a database input by a keyed HMAC, and re-reading
    the query for it would cost a second pass and could see other rows. The digest is fed
    block by block and must not depend on how a driver or ``block_rows`` cuts the stream, nor
    on whether a driver typed a column as a number or as text: each column is read as text and
    feeds three running hashes (a validity byte per row, a length per row, the text bytes),
    each of which sees one plain concatenation whatever the block boundaries.
    """

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.rows = 0
        self._columns = [(hashlib.sha256(), hashlib.sha256(), hashlib.sha256()) for _ in self.names]

    def update(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for hashes, col in zip(self._columns, batch.columns, strict=True):
            _feed_column(hashes, col)

    def digest(self) -> bytes:
        top = hashlib.sha256(b"ptsynth streamed rows v1\0")
        top.update(f"{self.rows}\0{len(self.names)}\0".encode())
        for name, hashes in zip(self.names, self._columns, strict=True):
            top.update(name.encode("utf-8") + b"\0" + b"".join(h.digest() for h in hashes))
        return top.digest()


def _feed_column(hashes: tuple[Any, Any, Any], col: pa.Array) -> None:
    """One column of one block: validity bytes, lengths and text bytes, each to its own hash."""
    valid_h, length_h, data_h = hashes
    arr = col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    binary = pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type) or \
        pa.types.is_fixed_size_binary(arr.type)
    try:
        text = pc.cast(arr, pa.large_binary() if binary else pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # nested types: rare, slow path
        text = pa.array([None if v is None else repr(v) for v in arr.to_pylist()], pa.large_string())
    valid = np.ones(len(text), dtype=np.uint8)
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset:text.offset + len(text) + 1]
    lengths = np.diff(offsets)
    if text.null_count:
        valid = np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
        if lengths[valid == 0].any():  # a null slot with bytes behind it (rare): drop them
            text = pc.fill_null(text, pa.scalar(b"" if binary else "", text.type))
            offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[
                text.offset:text.offset + len(text) + 1]
            lengths = np.diff(offsets)
    valid_h.update(valid.tobytes())
    length_h.update(lengths.tobytes())
    data = text.buffers()[2]
    if data is not None and len(offsets) and offsets[-1] > offsets[0]:
        data_h.update(memoryview(data)[int(offsets[0]):int(offsets[-1])])


@dataclass
class QueryFingerprint:
    """What identifies a database input: its kind, the SQL text and the digest of the rows that
    the last complete read streamed (``None`` until a read reached the end)."""

    kind: str
    sql: str
    rows_digest: bytes | None = None

    def material(self) -> bytes:
        """Bytes the manifest's HMAC is taken over (no URL, no credentials)."""
        if self.rows_digest is None:
            raise RuntimeError("the source was not read to the end")
        return (b"ptsynth query input v1\0" + self.kind.encode() + b"\0"
                + self.sql.encode("utf-8") + b"\0" + self.rows_digest)


def read_fingerprint(source: Any) -> QueryFingerprint:
    """The source's fingerprint, reading the source to the end first if no read has (the rows
    are streamed and dropped: only the digest is kept)."""
    fingerprint: QueryFingerprint = source.fingerprint()
    if fingerprint.rows_digest is None:
        stream = source.open(ErrorReporter(source.label, 1))
        for _ in stream.batches:
            pass
        stream.finish()
    return fingerprint


def query_stream(names: list[str], schema: pa.Schema, batches: Iterator[pa.RecordBatch],
                 rep: ErrorReporter, *, block_rows: int, describe: Callable[[BaseException], str | None],
                 close: Callable[[], None], fingerprint: QueryFingerprint) -> RecordStream:
    """The stream of a query's result, shared by every database source.

    The driver's batches are cut to at most ``block_rows`` rows, fed to a :class:`RowsDigest`
    (stored in ``fingerprint`` once the last row is read), and the connection is closed when
    the stream ends or fails. A driver error while reading becomes one InputError whose rule
    is ``describe(exc)`` (the error's kind, never its message; ``None``: not a database error,
    re-raised). It is raised outside the ``except`` block, so the driver's exception (whose
    text may quote a value or the server's address) is not even chained to it.
    """
    _check_header(names, rep)
    fingerprint.rows_digest = None

    def generate() -> Iterator[pa.RecordBatch]:
        digest = RowsDigest(names)
        it = iter(batches)
        try:
            while True:
                kind: str | None = None
                try:
                    batch = next(it)
                except StopIteration:
                    break
                except Exception as exc:
                    kind = describe(exc)
                    if kind is None:
                        raise
                if kind is not None:
                    raise rep.fail(f"the database failed while the query's rows were read ({kind})")
                digest.update(batch)
                for start in range(0, batch.num_rows, block_rows):
                    yield batch.slice(start, block_rows)
            fingerprint.rows_digest = digest.digest()
        finally:
            close()

    return RecordStream(names, generate(), schema)


@dataclass(frozen=True)
class SQLiteQuery:
    """The rows of a read-only SQL query on a SQLite file (or an open ``sqlite3`` connection),
    streamed ``block_rows`` at a time with ``fetchmany`` through the same path as PostgreSQL
    (:func:`query_stream`); every value arrives as text or a number and is validated like a
    file's cells. Row numbers count the query's result rows from 1. A file is opened
    read-only (``mode=ro``)."""

    database: str | Path | sqlite3.Connection
    query: str
    label: str = "SQL query"
    block_rows: int = BLOCK_ROWS
    _fingerprint: QueryFingerprint = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fingerprint", QueryFingerprint("sqlite", self.query))
        if self.block_rows < 1:
            raise ConfigError("must be at least 1", key="block_rows")

    def fingerprint(self) -> QueryFingerprint:
        """The query text and the digest of the rows of the last complete read."""
        return self._fingerprint

    def open(self, rep: ErrorReporter) -> RecordStream:
        rep.row_offset = 1
        own = not isinstance(self.database, sqlite3.Connection)
        if own:
            target = str(self.database)
            if target.startswith("sqlite:///"):
                target = target[len("sqlite:///"):]
            if not Path(target).is_file():
                raise rep.fail("SQLite database file does not exist")
            conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        else:
            conn = self.database
        kind: str | None = None
        try:
            cursor = conn.execute(self.query)
        except sqlite3.Error as exc:  # the database's message may quote a value: kind only
            kind = type(exc).__name__
        if kind is not None:
            if own:
                conn.close()
            raise rep.fail(f"SQL query failed ({kind})")
        names = [str(c[0]) for c in cursor.description or ()]
        schema = pa.schema([(n, pa.large_string()) for n in names])

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                rows = cursor.fetchmany(self.block_rows)
                if not rows:
                    return
                columns = list(zip(*rows, strict=True))
                yield pa.RecordBatch.from_arrays([_sql_column(c) for c in columns], names=names)

        def describe(exc: BaseException) -> str | None:
            return type(exc).__name__ if isinstance(exc, sqlite3.Error) else None

        try:
            return query_stream(names, schema, batches(), rep, block_rows=self.block_rows,
                                describe=describe, close=conn.close if own else cursor.close,
                                fingerprint=self._fingerprint)
        except InputError:
            if own:
                conn.close()
            raise


def _sql_column(values: tuple[Any, ...]) -> pa.Array:
    """One column of fetched rows: typed where Arrow can infer one type, else as text."""
    try:
        return pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column
        return pa.array([None if v is None else str(v) for v in values], pa.large_string())


def open_stream(source: Any, rep: ErrorReporter) -> RecordStream:
    """Any supported source → a stream of raw record batches. Sets ``rep.row_offset``."""
    if isinstance(source, RecordSource):
        return source.open(rep)
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
