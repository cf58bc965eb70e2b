"""Ingest: case records from CSV / TSV / Parquet / Arrow / pandas / SQLite / PostgreSQL → codes.

The one place where sensitive records enter, in three steps, one module each:
:mod:`~ptsynth.ingest.sources` (every input as one stream of raw Arrow batches; databases
through :mod:`~ptsynth.ingest.postgres` and ``SQLiteQuery``),
:mod:`~ptsynth.ingest.encode` (validation against the public schema and integer encoding, block
by block) and :mod:`~ptsynth.ingest.merge` (one record per person). Problems are reported by
:mod:`~ptsynth.ingest.problems`: file, row, column and rule, never a value. ``ptsynth init``'s
starter config is proposed by :mod:`~ptsynth.ingest.propose`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa

from ptsynth.errors import ConfigError
from ptsynth.ingest.encode import MIN_RECORDS, column_as_strings, encode_stream
from ptsynth.ingest.postgres import PostgresQuery, database_source, is_database_url
from ptsynth.ingest.problems import ErrorReporter
from ptsynth.ingest.sources import (
    BLOCK_BYTES,
    BLOCK_ROWS,
    QueryFingerprint,
    RecordSource,
    RecordStream,
    SQLiteQuery,
    load_table,
    open_stream,
)
from ptsynth.progress import ProgressCallback, ProgressReporter, reporter
from ptsynth.schema import Schema
from ptsynth.table import EncodedTable

__all__ = [
    "BLOCK_BYTES",
    "BLOCK_ROWS",
    "MIN_RECORDS",
    "ErrorReporter",
    "PostgresQuery",
    "QueryFingerprint",
    "RecordSource",
    "RecordStream",
    "SQLiteQuery",
    "column_as_strings",
    "database_source",
    "encode_table",
    "is_database_url",
    "load_table",
    "open_stream",
    "read_records",
    "read_records_sql",
]


def _label_for(source: Any, file_label: str | None) -> str | None:
    if file_label is not None:
        return file_label
    if isinstance(source, RecordSource):
        return source.label
    if isinstance(source, (str, Path)):
        return str(source)
    return None


def read_records(source: Any, schema: Schema, *, file_label: str | None = None,
                 progress: ProgressReporter | ProgressCallback | None = None) -> EncodedTable:
    """Read, validate and encode case records (rules and row numbers: see the submodules).

    Files are streamed block by block (bounded memory: the codes plus the subject ids);
    in-memory tables and database queries are encoded block by block as well.

    Args:
        source: path (``.csv``/``.tsv``/other text, ``.parquet``, ``.feather``/``.arrow``),
            a pandas DataFrame, a pyarrow Table or a :class:`RecordSource` (e.g.
            :class:`SQLiteQuery`, :class:`PostgresQuery`; :func:`database_source` builds one
            from a ``postgresql://`` or ``sqlite:///`` URL).
        schema: the public schema (domains come from it, never from the data).
        file_label: name used in error messages (default: the path or the source's label;
            none for in-memory tables).
        progress: receives a ``"read"`` task with the rows read so far (see
            :mod:`ptsynth.progress`).

    Raises:
        InputError: the first violated rule (file, row, column, rule, count of others).
    """
    if isinstance(source, (str, Path)) and is_database_url(source):
        # Not a file name: say how to read it, and never echo it (it may hold a password).
        raise ConfigError("a database URL is read through database_source(url, table=... or "
                          "query=...)", key="data")
    rep = ErrorReporter(_label_for(source, file_label), 2)
    return encode_stream(open_stream(source, rep), schema, rep, reporter(progress))


def encode_table(table: pa.Table, schema: Schema, rep: ErrorReporter) -> EncodedTable:
    """Validate and encode a raw in-memory Arrow table against the schema, block by block."""
    return encode_stream(open_stream(table, rep), schema, rep)


def read_records_sql(query: str, connection: sqlite3.Connection | str | Path, schema: Schema, *,
                     file_label: str | None = None) -> EncodedTable:
    """Records from a read-only SQL query on SQLite (a connection, or a path / ``sqlite:///``
    URL to a file), streamed. Row numbers in errors count the query's result rows from 1."""
    return read_records(SQLiteQuery(connection, query, file_label or "SQL query"), schema)
