"""PostgreSQL as a record source: a table or a read-only query, streamed as Arrow batches.

Why ADBC and not a psycopg server-side cursor: both stream in bounded memory, but the ADBC
PostgreSQL driver moves the result with ``COPY … TO STDOUT (FORMAT binary)`` straight into Arrow
columns, without a Python object per cell; on 1M rows it read in a third of the time and CPU of a
named psycopg cursor (figures: ``benchmarks/README.md``). Every value keeps its database type
(integers, dates, timestamps, text); the few types Arrow has no plain form for (uuid, numeric,
json, intervals, enums of extensions, …) are cast to text by the server, so they validate like a
file's cells. Arrays stay arrays and are refused if a declared column holds one (join them with
``array_to_string(col, ';')`` for a set column).

Privacy and safety rules, all enforced here:

* **Read-only.** The query runs in a ``REPEATABLE READ, READ ONLY`` transaction (one snapshot for
  the whole read); the driver wraps it in ``COPY (…)``, which accepts a single query only.
* **Credentials never pass through ptsynth.** libpq finds them itself: ``PGPASSWORD``,
  ``~/.pgpass`` (``PGPASSFILE``), a service file (``PGSERVICE`` or ``?service=`` in the URL,
  ``PGSERVICEFILE``). A URL may name host, port, database and user; a password in it is refused
  (and the URL is never echoed), so no password can reach a config, a manifest, a ledger, a
  log, a progress event or an error.
* **Errors name the kind, never the server's text.** A database error becomes an
  :class:`~ptsynth.errors.InputError` naming the source (database or service name only) and the
  error's kind (SQLSTATE code and condition name, or a fixed phrase for connection problems):
  the server's message may quote a value (``invalid input syntax for type integer: "…"``), the
  query or the host, so it is read for classification only and never shown. Row numbers count
  the query's rows from 1, as for every other table source.
* The manifest identifies the input by a keyed HMAC over the query text and a digest of the rows
  fed while streaming (:class:`~ptsynth.ingest.sources.RowsDigest`), never the URL.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa

from ptsynth.errors import ConfigError
from ptsynth.ingest.problems import ErrorReporter
from ptsynth.ingest.sources import (
    BLOCK_ROWS,
    QueryFingerprint,
    RecordStream,
    SQLiteQuery,
    _check_header,
    query_stream,
)

#: URL schemes understood as a database (CLI argument, ``[dataset.source] url``).
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE_SCHEME = "sqlite:///"
_INSTALL = "PostgreSQL support is not installed: pip install 'ptsynth[postgres]'"
_NO_PASSWORD = ("the database URL holds a password: never write one into a URL or a config; "
                "give it through PGPASSWORD, ~/.pgpass or a libpq service file (PGSERVICE or "
                "?service= in the URL)")
#: A table name: ``name`` or ``schema.name`` of plain identifiers (folded to lower case by the
#: server, as in any SQL); anything else must be written as ``query``.
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_SQLSTATE = re.compile(r"SQLSTATE[:\s]+([0-9A-Z]{5})\b")

#: Condition names of the SQLSTATE codes a steward is likely to meet (PostgreSQL manual,
#: appendix A); other codes are named by their class.
_CODES = {
    "42601": "syntax error", "42P01": "undefined table", "42703": "undefined column",
    "42883": "undefined function or operator (a type mismatch?)", "42804": "datatype mismatch",
    "42846": "cannot coerce (a type mismatch)", "42P18": "indeterminate datatype",
    "42501": "insufficient privilege", "42702": "ambiguous column", "42P10": "invalid column reference",
    "42803": "grouping error", "3F000": "invalid schema name",
    "25006": "the query tries to write, and ptsynth reads in a READ ONLY transaction",
    "22P02": "invalid text representation (a type mismatch)", "22012": "division by zero",
    "22003": "numeric value out of range", "22007": "invalid datetime format",
    "22008": "datetime field overflow", "22001": "string data right truncation",
    "57P01": "the server ended the connection (administrator command)",
    "57P02": "the server crashed", "57P03": "the server cannot accept connections now",
    "57014": "the query was cancelled (statement_timeout?)", "53100": "the server's disk is full",
    "53200": "the server is out of memory", "3D000": "the database does not exist",
    "28P01": "authentication failed", "28000": "the server refuses this role (pg_hba.conf)",
    "0A000": "feature not supported", "40001": "serialization failure (retry)",
    "40P01": "deadlock detected",
}
_CLASSES = {
    "08": "connection exception", "0A": "feature not supported", "22": "data exception",
    "23": "integrity constraint violation", "25": "invalid transaction state",
    "28": "invalid authorization", "3D": "invalid catalog name", "3F": "invalid schema name",
    "40": "transaction rollback", "42": "syntax error or access rule violation",
    "53": "insufficient resources", "54": "program limit exceeded", "55": "object not in prerequisite state",
    "57": "operator intervention", "58": "system error", "XX": "internal error of the server",
    "P0": "PL/pgSQL error",
}
#: Fixed phrases for errors that carry no SQLSTATE (connecting, a lost connection), chosen by
#: words of the driver's message, which itself is never shown.
_PHRASES = (
    ("password authentication failed", "authentication failed: check the password in "
     "PGPASSWORD, ~/.pgpass or the service file"),
    ("no password supplied", "the server asks for a password and none was found: set "
     "PGPASSWORD, a ~/.pgpass entry or a service file"),
    ("pg_hba.conf", "the server refuses this host, user or database (pg_hba.conf)"),
    ("definition of service", "the libpq service is not defined (check PGSERVICEFILE or "
     "~/.pg_service.conf)"),
    ("service file", "the libpq service file cannot be read"),
    ("does not exist", "the database or the role does not exist"),
    ("terminating connection", "the server ended the connection"),
    ("server closed the connection", "the server ended the connection"),
    ("connection to server was lost", "the connection to the server was lost"),
    ("no connection to the server", "the connection to the server was lost"),
    ("could not receive data", "the connection to the server was lost"),
    ("ssl", "the SSL connection failed (check sslmode and the server's certificate)"),
    ("could not translate host name", "the server cannot be reached (unknown host)"),
    ("connection refused", "the server cannot be reached (connection refused)"),
    ("timeout", "the server cannot be reached (timeout)"),
    ("could not connect", "the server cannot be reached"),
    ("network is unreachable", "the server cannot be reached (network unreachable)"),
    ("no route to host", "the server cannot be reached (no route to host)"),
    ("invalid connection option", "the URL holds an unknown connection option"),
    ("invalid uri", "the URL is not a valid PostgreSQL connection URI"),
    ("missing \"=\"", "the URL is not a valid PostgreSQL connection URI"),
)


def describe_sqlstate(code: str) -> str:
    """A SQLSTATE code in words: its condition where known, else its class."""
    return _CODES.get(code) or _CLASSES.get(code[:2], "database error")


def error_kind(exc: BaseException) -> str:
    """What kind of database error ``exc`` is, in words safe to show: the SQLSTATE and its
    condition name, or a fixed phrase, or the exception's type; never the message's text."""
    text = str(exc)
    code = getattr(exc, "sqlstate", None)
    if not (isinstance(code, str) and re.fullmatch(r"[0-9A-Z]{5}", code)):
        found = _SQLSTATE.search(text)
        code = found.group(1) if found else None
    if code is not None:
        return f"{describe_sqlstate(code)}; SQLSTATE {code}"
    lower = text.lower()
    for words, phrase in _PHRASES:
        if words in lower:
            return phrase
    return type(exc).__name__


# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------
def is_database_url(value: str | Path) -> bool:
    """Whether a command-line argument names a database rather than a file."""
    text = str(value)
    return text.startswith(POSTGRES_SCHEMES) or text.startswith(SQLITE_SCHEME)


def check_postgres_url(url: str) -> dict[str, str]:
    """The URL's database and service names (for labels); refuses a password anywhere in it.

    Raises :class:`ConfigError` without echoing the URL.
    """
    if not isinstance(url, str) or not url.startswith(POSTGRES_SCHEMES):
        raise ConfigError("must be a postgresql:// URL", key="url")
    try:
        parts = urlsplit(url)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
    except ValueError:
        raise ConfigError("is not a valid PostgreSQL connection URI", key="url") from None
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if ":" in userinfo or any("password" in k.lower() for k in params):  # also sslpassword
        raise ConfigError(_NO_PASSWORD, key="url")
    return {"dbname": params.get("dbname") or parts.path.lstrip("/"),
            "service": params.get("service", "")}


def table_query(table: str) -> str:
    """``SELECT * FROM table`` for a plain (optionally schema-qualified) table name."""
    if not isinstance(table, str) or not _TABLE_NAME.match(table):
        raise ConfigError("must be a table name such as victims or casework.victims (letters, "
                          "digits, _ and $); for any other name write a query", key="table")
    return f"SELECT * FROM {table}"


def _query_text(query: str | None, table: str | None) -> str:
    if (query is None) == (table is None):
        raise ConfigError("give exactly one of a table and a query", key="query")
    if table is not None:
        return table_query(table)
    assert query is not None
    text = query.strip().rstrip(";").strip()
    if not text:
        raise ConfigError("the query is empty", key="query")
    return text


# ---------------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------------
def _driver() -> Any:
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError:
        raise ConfigError(_INSTALL) from None
    return dbapi


def _plain(f: pa.Field) -> bool:
    """Arrow types ingest reads as they are; any other column is cast to text by the server.
    Binary stays binary only for ``bytea`` (older drivers hand unknown types over as bytes)."""
    t = f.type
    if isinstance(t, pa.BaseExtensionType):
        return False
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return (f.metadata or {}).get(b"POSTGRESQL:type", b"bytea") == b"bytea"
    return (pa.types.is_null(t) or pa.types.is_boolean(t) or pa.types.is_integer(t)
            or pa.types.is_floating(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_list(t)
            or pa.types.is_large_list(t))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _with_text_casts(sql: str, schema: pa.Schema) -> str:
    """The query, its columns of types without a plain Arrow form cast to text."""
    if all(_plain(f) for f in schema):
        return sql
    cols = ", ".join(f"q.{_quote(f.name)}" if _plain(f) else f"q.{_quote(f.name)}::text AS {_quote(f.name)}"
                     for f in schema)
    return f"SELECT {cols} FROM ({sql}) AS q"


class PostgresQuery:
    """The rows of a PostgreSQL table or read-only query, streamed in blocks.

    Args:
        url: ``postgresql://[user@][host][:port][/database][?param=…]`` (libpq URI; also
            ``?service=name``, ``?sslmode=…``). A password inside is refused: libpq reads it
            from ``PGPASSWORD``, ``~/.pgpass`` or a service file.
        query: a read-only SQL query (joins welcome); or
        table: a table name (``victims`` or ``schema.victims``).
        label: how errors name the source (default: the database or service name, never the
            host or the user).
        block_rows: rows per streamed block.

    Use::

        src = PostgresQuery("postgresql://steward@db.example.org/casework", table="victims")
        table = ptsynth.read_records(src, cfg.schema)
        ptsynth.release(src, cfg, "bundle/")
    """

    def __init__(self, url: str, *, query: str | None = None, table: str | None = None,
                 label: str | None = None, block_rows: int = BLOCK_ROWS) -> None:
        names = check_postgres_url(url)
        self.sql = _query_text(query, table)
        if block_rows < 1:
            raise ConfigError("must be at least 1", key="block_rows")
        self._url, self.block_rows = url, int(block_rows)
        where = (f"database {names['dbname']}" if names["dbname"]
                 else f"service {names['service']}" if names["service"] else "the default database")
        what = f"table {table}" if table is not None else "query"
        self.label = label or f"PostgreSQL {what} on {where}"
        self._fingerprint = QueryFingerprint("postgresql", self.sql)

    def __repr__(self) -> str:  # never the URL
        return f"PostgresQuery({self.label!r})"

    def fingerprint(self) -> QueryFingerprint:
        """The query text and the digest of the rows of the last complete read."""
        return self._fingerprint

    def open(self, rep: ErrorReporter) -> RecordStream:
        rep.row_offset = 1
        dbapi = _driver()
        kind: str | None = None
        try:
            conn = dbapi.connect(self._url)
        except Exception as exc:  # the driver's text may name the host, the user or the service
            kind = error_kind(exc)
        if kind is not None:
            raise rep.fail(f"cannot connect to the PostgreSQL server ({kind})")
        try:
            return self._stream(conn, rep)
        except BaseException:
            with contextlib.suppress(Exception):
                conn.close()
            raise

    def _stream(self, conn: Any, rep: ErrorReporter) -> RecordStream:
        kind: str | None = None
        try:
            cursor = conn.cursor()
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            schema = cursor.adbc_execute_schema(self.sql)
        except Exception as exc:  # never the server's text: it may quote a value
            kind = error_kind(exc)
        if kind is not None:
            raise rep.fail(f"SQL query failed ({kind})")
        _check_header(list(schema.names), rep)  # before the names are used in a wrapping query
        try:
            sql = _with_text_casts(self.sql, schema)
            hint = max(1 << 10, min(1 << 24, self.block_rows * 128))
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(hint)})
            cursor.execute(sql)
            reader = _reader(cursor)
        except Exception as exc:  # never the server's text: it may quote a value
            kind = error_kind(exc)
        if kind is not None:
            raise rep.fail(f"SQL query failed ({kind})")

        def batches() -> Iterator[pa.RecordBatch]:
            while True:
                try:
                    yield reader.read_next_batch()
                except StopIteration:
                    return

        def close() -> None:
            for thing in (reader, cursor, conn):
                with contextlib.suppress(Exception):
                    thing.close()

        def describe(exc: BaseException) -> str | None:
            if isinstance(exc, (OSError, pa.ArrowException)) or type(exc).__module__.startswith("adbc"):
                return error_kind(exc)
            return None

        return query_stream(list(reader.schema.names), reader.schema, batches(), rep,
                            block_rows=self.block_rows, describe=describe, close=close,
                            fingerprint=self._fingerprint)


def _reader(cursor: Any) -> Any:
    """The result's batch reader. The DB-API cursor's own reader turns an error met while
    streaming into a driver error carrying its SQLSTATE (``fetch_record_batch`` hands out the
    bare pyarrow reader, whose errors carry only the server's text); fall back to that one if a
    driver version lays its cursor out differently."""
    results = getattr(cursor, "_results", None)
    try:
        reader = results.reader  # type: ignore[union-attr]
    except AttributeError:
        return cursor.fetch_record_batch()
    return reader if callable(getattr(reader, "read_next_batch", None)) else cursor.fetch_record_batch()


def database_source(url: str, *, table: str | None = None, query: str | None = None,
                    base: Path | None = None, block_rows: int = BLOCK_ROWS) -> PostgresQuery | SQLiteQuery:
    """A record source for a database URL: ``postgresql://…`` or ``sqlite:///path`` (a
    relative path is taken relative to ``base``, e.g. the config's folder)."""
    if url.startswith(POSTGRES_SCHEMES):
        return PostgresQuery(url, query=query, table=table, block_rows=block_rows)
    if url.startswith(SQLITE_SCHEME):
        sql = _query_text(query, table)
        path = Path(url[len(SQLITE_SCHEME):])
        if not path.is_absolute() and base is not None:
            path = base / path
        what = f"table {table}" if table is not None else "query"
        return SQLiteQuery(path, sql, label=f"SQLite {what} on {path.name}", block_rows=block_rows)
    raise ConfigError("must start with postgresql://, postgres:// or sqlite:///", key="url")
