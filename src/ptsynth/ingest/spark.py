"""Ingest on Spark: records read, validated, encoded and merged per person where they lie.

Why: past what one machine holds, the records stay in the organisation's cluster (HDFS, S3,
a Databricks / Hive table) and only counts may travel to the driver. This module is the
Spark twin of :mod:`ptsynth.ingest`: the *same* code validates and encodes each partition
(:class:`~ptsynth.ingest.encode.BlockEncoder` inside ``mapInArrow``), so the rules and the error
messages are the local ones: file, row, column and rule, never a value.

* **CSV / TSV** files are read by Spark as lines and each partition's lines are parsed by
  Arrow's CSV reader exactly as the local reader parses a file (every column as text, quoting,
  rows with a different number of fields reported). A quoted cell holding a line break is not
  supported on Spark (partitions split at line breaks): use Parquet for such data.
* **Parquet** files and **tables** (``table:<name>``, a catalog table) are read by Spark's own
  readers and their Arrow batches encoded the same way. A table has no file order, so its
  errors name no row.
* **Row numbers** are those a person counts in the file (CSV: header = row 1): each partition
  reports its problems at partition-local rows, per file split (``_metadata.file_block_start``),
  and the driver adds the rows of the splits before it. Problems are tallied per rule and the
  one a whole-input pass meets first is raised, as locally.
* **Merge per subject id** runs as a Spark aggregation (agree-or-missing for single-valued
  columns, union for sets, conflicts reported with the subject's first row), then each record
  gets its occurrence index among identical records (a window over the codes) for the keyed
  per-record choices of :mod:`ptsynth.counting.prf`.

The result is a :class:`~ptsynth.counting.spark_backend.SparkBackend`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ptsynth.errors import ConfigError, InputError, PtsynthError
from ptsynth.ingest.encode import MIN_RECORDS, BlockEncoder, check_columns
from ptsynth.ingest.problems import ErrorReporter
from ptsynth.ingest.sources import _PARSE_RULE, _RAGGED_RULE, _check_header
from ptsynth.schema import Schema
from ptsynth.table import IngestSummary

_PARQUET = (".parquet", ".pq")
_TAB = (".tsv", ".tab")
_UTF8_RULE = "file is not valid UTF-8 text (save it as UTF-8)"
#: Problem keys that come before any column's: UTF-8 (the local reader checks it first), then
#: ragged rows (reported before cell checks).
_KEY_UTF8 = (-3, 0)
_KEY_RAGGED = (-2, 0)
_KEY_PARSE = (-1, 0)


@dataclass(frozen=True)
class SparkSettings:
    """``[dataset.backend]`` of a release config (``name = "spark"``).

    Attributes:
        master: ``spark.master`` (``local[*]``, ``spark://host:7077``, ``yarn``, ...); ``None``
            uses the session's default (e.g. on Databricks, the attached cluster).
        conf: further Spark settings (``spark.executor.memory`` ...), as strings.
        partitions: partitions of the encoded records (``None``: the session's default
            parallelism); each partition's counts travel to the driver once per counting job.
    """

    master: str | None = "local[*]"
    conf: dict[str, str] = field(default_factory=dict)
    partitions: int | None = None


def spark_session(settings: SparkSettings | None = None) -> Any:
    """A SparkSession (created or reused) with the settings applied."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the extra
        raise ConfigError("the Spark backend needs PySpark: pip install 'ptsynth[spark]'") from None
    settings = settings or SparkSettings()
    builder = SparkSession.builder.appName("ptsynth")
    if settings.master:
        builder = builder.master(settings.master)
    if (settings.master or "").startswith("local") and "spark.pyspark.python" not in settings.conf:
        import os
        import sys  # local mode: the workers run this very interpreter (ptsynth importable)

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.pyspark.python", sys.executable)
    builder = builder.config("spark.sql.execution.arrow.pyspark.enabled", "true")
    builder = builder.config("spark.ui.enabled", "false")
    for key, value in settings.conf.items():
        builder = builder.config(str(key), str(value))
    failed = None
    try:
        return builder.getOrCreate()
    except Exception as exc:  # noqa: BLE001 - Spark's own errors only, re-raised otherwise
        if type(exc).__name__ not in _SPARK_ERRORS:
            raise
        failed = type(exc).__name__
    # No Java, an unreachable master, a bad setting: the message may hold an address or a key.
    raise ConfigError(f"Spark could not start ({failed})", key="[dataset.backend]")


# ---------------------------------------------------------------------------------------------
# executor side: one partition of raw rows → encoded rows, problems and split sizes
# ---------------------------------------------------------------------------------------------
def _out_schema(d: int) -> pa.Schema:
    return pa.schema(
        [("kind", pa.int8()), ("file", pa.string()), ("block", pa.int64()),
         ("local", pa.int64()), ("count", pa.int64()), ("k0", pa.int64()), ("k1", pa.int64()),
         ("rule", pa.string()), ("column", pa.string()), ("sid", pa.string())]
        + [(f"c{j}", pa.int32()) for j in range(d)]
    )


def _spark_out_schema(d: int) -> str:
    cols = ", ".join(f"c{j} int" for j in range(d))
    return ("kind byte, file string, block long, local long, count long, k0 long, k1 long, "
            f"rule string, column string, sid string, {cols}")


_DATA, _PROBLEM, _SPLIT = 0, 1, 2


class _Segment:
    """One file split inside a partition: its encoder and its rows so far."""

    def __init__(self, schema: Schema, names: list[str], file: str, block: int) -> None:
        self.file, self.block = file, block
        self.rep = ErrorReporter(file, 0)
        self.encoder = BlockEncoder(schema, names, self.rep)
        self.extra: dict[tuple[int, int], list[Any]] = {}  # UTF-8, ragged, parse problems
        self.lines = 0

    def problem(self, key: tuple[int, int], local: int, count: int, rule: str) -> None:
        entry = self.extra.get(key)
        if entry is None:
            self.extra[key] = [local, count, rule, None]
        else:
            entry[0] = min(entry[0], local)
            entry[1] += count


def _rows(kind: int, seg: _Segment, d: int, **cols: Any) -> pa.RecordBatch:
    n = len(next(iter(cols.values()))) if cols else 1
    base = {"kind": [kind] * n, "file": [seg.file] * n, "block": [seg.block] * n}
    arrays = []
    schema = _out_schema(d)
    for f in schema:
        if f.name in base:
            arrays.append(pa.array(base[f.name], f.type))
        elif f.name in cols:
            arrays.append(pa.array(cols[f.name], f.type))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _finish(seg: _Segment, d: int) -> Iterator[pa.RecordBatch]:
    enc = seg.encoder
    yield _rows(_SPLIT, seg, d, count=[enc.n_rows + seg.lines * 0])
    problems = {**seg.extra, **{k: v for k, v in enc.issues.found.items()}}
    if problems:
        keys = list(problems)
        vals = [problems[k] for k in keys]
        yield _rows(_PROBLEM, seg, d, k0=[k[0] for k in keys], k1=[k[1] for k in keys],
                    local=[v[0] for v in vals], count=[v[1] for v in vals],
                    rule=[v[2] for v in vals], column=[v[3] for v in vals])
        return
    if not enc.blocks:
        return
    codes = np.concatenate(enc.blocks)
    local = np.arange(codes.shape[0], dtype=np.int64)
    sid: list[Any] | pa.Array
    if enc.id_values:
        parts = [pc.take(vals, pa.array(rows)) for vals, rows in zip(enc.id_values, enc.id_rows,
                                                                       strict=True)]
        sid = pa.concat_arrays([pc.cast(p, pa.string()) for p in parts])
    else:
        sid = pa.nulls(codes.shape[0], pa.string())
    cols = {f"c{j}": codes[:, j].astype(np.int32) for j in range(d)}
    yield _rows(_DATA, seg, d, local=local, sid=sid, **cols)


def encode_partition(batches: Iterator[pa.RecordBatch], schema: Schema, names: list[str],
                     text: dict[str, Any] | None) -> Iterator[pa.RecordBatch]:
    """Executor side of :func:`read_spark` (one call per partition).

    ``batches`` hold the raw columns (or, for text files, one ``value`` column of lines) plus
    ``_file`` and ``_block`` (the file split). ``text``: the CSV settings, or ``None`` for
    typed (Parquet / table) input.
    """
    d = len(schema.encoded_domains())
    seg: _Segment | None = None
    for batch in batches:
        files = batch.column("_file").to_pylist()
        blocks = batch.column("_block").to_pylist()
        start = 0
        while start < batch.num_rows:
            f, b = files[start], blocks[start]
            stop = start
            while stop < batch.num_rows and files[stop] == f and blocks[stop] == b:
                stop += 1
            if seg is None or (seg.file, seg.block) != (f, b):
                if seg is not None:
                    yield from _finish(seg, d)
                seg = _Segment(schema, names, f, b)
            part = batch.slice(start, stop - start)
            if text is None:
                seg.encoder.add(part.drop_columns(["_file", "_block"])
                                if hasattr(part, "drop_columns") else
                                pa.RecordBatch.from_arrays(
                                    [part.column(n) for n in names], names=names))
            else:
                _add_lines(seg, part.column("value"), names, text)
            start = stop
    if seg is not None:
        yield from _finish(seg, d)


def _add_lines(seg: _Segment, lines: pa.Array, names: list[str], text: dict[str, Any]) -> None:
    values = lines.to_pylist()
    first = seg.lines
    skip = 1 if (seg.block == 0 and first == 0) else 0
    bad = [i for i, v in enumerate(values) if v is not None and "\ufffd" in v]
    if bad:
        seg.problem(_KEY_UTF8, first + bad[0], len(bad), _UTF8_RULE)
    seg.lines += len(values)
    body = values[skip:]
    if not body:
        return
    invalid: list[int] = []

    def handler(row: Any) -> str:
        invalid.append(row.number)
        return "skip"

    data = ("\n".join(v or "" for v in body) + "\n").encode("utf-8")
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=text["delimiter"], newlines_in_values=False,
                                             ignore_empty_lines=False,
                                             invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in names}, check_utf8=False,
                strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[]),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        seg.problem(_KEY_PARSE, first + skip, 1, _PARSE_RULE)
        return
    if invalid:
        # Arrow numbers the lines of this chunk from 1; the segment's lines start at `first`.
        seg.problem(_KEY_RAGGED, first + skip + min(invalid) - 1, len(invalid), _RAGGED_RULE)
        return
    for batch in table.to_batches():
        seg.encoder.add(batch)


# ---------------------------------------------------------------------------------------------
# driver side
# ---------------------------------------------------------------------------------------------
def _kind(path: str) -> str:
    low = path.lower().rstrip("/")
    if low.startswith("table:"):
        return "table"
    if low.endswith(_PARQUET):
        return "parquet"
    return "csv"


def _raw_frame(spark: Any, source: str, rep: ErrorReporter) -> tuple[Any, list[str], dict | None]:
    """The raw rows as a Spark DataFrame with ``_file`` and ``_block``, the header, and the CSV
    settings (``None`` for typed input)."""
    from pyspark.sql import functions as F

    kind = _kind(source)
    if kind == "table":
        df = spark.table(source[len("table:"):])
        names = list(df.columns)
        _check_header(names, rep)
        df = df.withColumn("_file", F.lit(source)).withColumn("_block", F.lit(0).cast("long"))
        return df, names, None
    try:
        if kind == "parquet":
            df = spark.read.parquet(source)
            names = [c for c in df.columns]
            _check_header(names, rep)
            df = df.select("*", F.col("_metadata.file_path").alias("_file"),
                           F.col("_metadata.file_block_start").alias("_block"))
            return df, names, None
        lines = spark.read.text(source)
        head_row = lines.limit(1).collect()
    except Exception as exc:  # Spark's message may quote a path's contents: kind only
        if type(exc).__name__ in ("AnalysisException", "Py4JJavaError", "IllegalArgumentException"):
            raise rep.fail("input cannot be read by Spark (missing file or unknown format)") from None
        raise
    if not head_row:
        raise rep.fail("file is empty (no header line)")
    first = (head_row[0][0] or "").lstrip("\ufeff")
    if not first.strip():
        raise rep.fail("header line is empty (the first line must name the columns)", row=1)
    import csv

    delim = "\t" if source.lower().endswith(_TAB) or ("\t" in first and "," not in first) else ","
    names = next(csv.reader(io.StringIO(first), delimiter=delim))
    _check_header(names, rep)
    df = lines.select("value", F.col("_metadata.file_path").alias("_file"),
                      F.col("_metadata.file_block_start").alias("_block"))
    return df, [str(n) for n in names], {"delimiter": delim}


def read_spark(source: str, schema: Schema, spark: Any, *, file_label: str | None = None,
               partitions: int | None = None) -> Any:
    """Read, validate, encode and merge records with Spark (see the module docstring).

    Returns a :class:`~ptsynth.counting.spark_backend.SparkBackend`. Raises
    :class:`InputError` with the local rules and wording.
    """
    source = str(source)
    rep = ErrorReporter(file_label or source, 2)
    failed = None
    try:
        return _read_spark(source, schema, spark, rep, partitions)
    except Exception as exc:  # noqa: BLE001 - Spark's own errors only, re-raised otherwise
        if isinstance(exc, PtsynthError) or type(exc).__name__ not in _SPARK_ERRORS:
            raise
        failed = type(exc).__name__
    # Raised outside the handler: Spark's message (and an executor's traceback in it) may
    # quote record content, so only the kind of failure is named.
    raise rep.fail(f"Spark failed ({failed})")


#: Exceptions Spark raises for a missing table, a cluster it cannot reach or a failed job.
_SPARK_ERRORS = frozenset({"AnalysisException", "Py4JJavaError", "Py4JError", "Py4JNetworkError",
                           "PythonException", "IllegalArgumentException",
                           "SparkRuntimeException", "SparkConnectGrpcException",
                           "PySparkRuntimeError"})


def _read_spark(source: str, schema: Schema, spark: Any, rep: ErrorReporter,
                partitions: int | None) -> Any:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ptsynth.counting.spark_backend import SparkBackend

    label = str(rep.label)
    raw, names, text = _raw_frame(spark, source, rep)
    stripped = [str(n).strip() for n in names]
    check_columns(stripped, schema, rep)
    domains = schema.encoded_domains()
    d = len(domains)
    if text is None:
        raw = raw.select(*[F.col(f"`{n}`") for n in names], "_file", "_block")
    sch, nm, tx = schema, list(names), text

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return encode_partition(batches, sch, nm, tx)

    encoded = raw.mapInArrow(run, _spark_out_schema(d)).persist()
    meta = encoded.filter(F.col("kind") != _DATA).select(
        "kind", "file", "block", "local", "count", "k0", "k1", "rule", "column").collect()
    # Rows of each file split → offset of the split's first row within its file.
    splits: dict[tuple[str, int], int] = {}
    for r in meta:
        if r["kind"] == _SPLIT:
            splits[(r["file"], r["block"])] = splits.get((r["file"], r["block"]), 0) + r["count"]
    files = sorted({f for f, _ in splits})
    offset: dict[tuple[str, int], int] = {}
    file_base: dict[str, int] = {}
    total = 0
    for f in files:
        file_base[f] = total
        run_rows = 0
        for (ff, b) in sorted(k for k in splits if k[0] == f):
            offset[(ff, b)] = run_rows
            run_rows += splits[(ff, b)]
        total += run_rows
    is_table = text is None and _kind(source) == "table"
    row_offset = 2 if text is not None else 1
    problems: dict[tuple[int, int], list[Any]] = {}
    for r in meta:
        if r["kind"] != _PROBLEM:
            continue
        key = (r["k0"], r["k1"])
        local = r["local"]
        if text is not None and key in (_KEY_UTF8, _KEY_RAGGED, _KEY_PARSE):
            row = None if local is None else local  # lines, header included
            glob = (file_base[r["file"]], row)
        else:
            glob = (file_base[r["file"]],
                    None if local is None else offset[(r["file"], r["block"])] + local)
        entry = problems.get(key)
        cand = [glob, r["count"], r["rule"], r["column"], r["file"]]
        if entry is None or (glob[1] is not None and (entry[0][1] is None or glob < entry[0])):
            if entry is not None:
                cand[1] += entry[1]
            problems[key] = cand
        else:
            entry[1] += r["count"]
    if problems:
        encoded.unpersist()
        (base, row), count, rule, column, file = problems[min(problems)]
        del base
        key = min(problems)
        if key in (_KEY_UTF8, _KEY_RAGGED, _KEY_PARSE):
            shown = None if row is None else row + 1  # 0-based line → 1-based
        else:
            shown = None if (row is None or is_table) else row + row_offset
        raise InputError(rule, file=file if len(files) > 1 else label, row=shown, column=column,
                         more=count - 1 if row is not None else 0)
    if total == 0:
        encoded.unpersist()
        raise rep.fail("input has no records")

    # global row index (file order), then the per-person merge
    off_rows = [(f, b, file_base[f] + o) for (f, b), o in offset.items()]
    offsets = spark.createDataFrame(off_rows, "file string, block long, base long")
    data = (encoded.filter(F.col("kind") == _DATA)
            .join(F.broadcast(offsets), ["file", "block"])
            .withColumn("row", F.col("base") + F.col("local"))
            .select("sid", "row", *[f"c{j}" for j in range(d)]))
    without_id = total
    if schema.subject_id is not None:
        without_id = data.filter(F.col("sid").isNull()).count()
        records = _merge(data, domains, schema, spark, label, files, file_base, row_offset,
                         is_table)
    else:
        records = data.select("row", *[f"c{j}" for j in range(d)])
    window = Window.partitionBy(*[f"c{j}" for j in range(d)]).orderBy("row")
    records = records.withColumn("occ", F.row_number().over(window) - 1)
    backend = SparkBackend.from_frame(spark, records, domains, partitions=partitions)
    backend.summary = IngestSummary(input_rows=total, records=backend.record_count(),
                                    rows_without_id=int(without_id))
    encoded.unpersist()
    if backend.record_count() < MIN_RECORDS:
        raise rep.fail(f"input holds fewer than {MIN_RECORDS} records"
                       + (" after merging rows by subject id" if schema.subject_id else ""))
    return backend


def _merge(data: Any, domains: tuple, schema: Schema, spark: Any, label: str,
           files: list[str], file_base: dict[str, int], row_offset: int, is_table: bool) -> Any:
    """One record per subject id (rows without an id stand alone), as :func:`merge_subjects`."""
    from pyspark.sql import functions as F

    d = len(domains)
    with_id = data.filter(F.col("sid").isNotNull())
    lone = data.filter(F.col("sid").isNull()).select("row", *[f"c{j}" for j in range(d)])
    aggs = [F.min("row").alias("row")]
    merged_cols = []
    checks = []
    for j, dom in enumerate(domains):
        c = F.col(f"c{j}")
        if dom.kind == "set_member":
            aggs.append(F.min(c).alias(f"c{j}"))
            merged_cols.append(F.col(f"c{j}"))
            continue
        if dom.allows_missing:
            mc = dom.missing_code
            aggs += [F.max(F.when(c != mc, c)).alias(f"hi{j}"),
                     F.min(F.when(c != mc, c)).alias(f"lo{j}")]
            merged_cols.append(F.coalesce(F.col(f"hi{j}"), F.lit(mc)).cast("int").alias(f"c{j}"))
            checks.append((j, F.col(f"hi{j}").isNotNull() & (F.col(f"hi{j}") != F.col(f"lo{j}"))))
        else:
            aggs += [F.max(c).alias(f"hi{j}"), F.min(c).alias(f"lo{j}")]
            merged_cols.append(F.col(f"hi{j}").alias(f"c{j}"))
            checks.append((j, F.col(f"hi{j}") != F.col(f"lo{j}")))
    grouped = with_id.groupBy("sid").agg(*aggs).persist()
    set_checks = []
    for spec in schema.data_columns:
        if spec.kind == "set" and spec.max_values is not None:
            idx = [k for k, dm in enumerate(domains) if dm.source == spec.name]
            present = sum((F.col(f"c{k}") == 0).cast("int") for k in idx)
            set_checks.append((spec.name, present > spec.max_values))
    merged = grouped.select("row", *merged_cols)
    conflict_aggs = []
    for j, cond in checks:
        conflict_aggs += [F.sum(cond.cast("long")).alias(f"n{j}"),
                          F.min(F.when(cond, F.col("row"))).alias(f"r{j}")]
    stats = grouped.agg(*conflict_aggs).collect()[0] if conflict_aggs else None
    for j, _ in checks:
        if stats is not None and stats[f"n{j}"]:
            grouped.unpersist()
            _raise_at(stats[f"r{j}"], stats[f"n{j}"],
                      "rows of one subject id disagree in this single-valued column "
                      "(ids and values are not shown)", domains[j].source, label, files,
                      file_base, row_offset, is_table)
    if set_checks:
        sc = merged.agg(*[F.sum(cond.cast("long")).alias(f"n{i}") for i, (_, cond)
                          in enumerate(set_checks)],
                        *[F.min(F.when(cond, F.col("row"))).alias(f"r{i}") for i, (_, cond)
                          in enumerate(set_checks)]).collect()[0]
        for i, (name, _) in enumerate(set_checks):
            if sc[f"n{i}"]:
                grouped.unpersist()
                _raise_at(sc[f"r{i}"], sc[f"n{i}"], "the merged rows of one subject id have "
                          "more set members than max_values", name, label, files, file_base,
                          row_offset, is_table)
    return merged.unionByName(lone)


def _raise_at(row: int, count: int, rule: str, column: str, label: str, files: list[str],
              file_base: dict[str, int], row_offset: int, is_table: bool) -> None:
    file = label
    local = row
    if len(files) > 1:
        for f in files:
            if file_base[f] <= row:
                file, local = f, row - file_base[f]
    raise InputError(rule, file=file, row=None if is_table else int(local) + row_offset,
                     column=column, more=int(count) - 1)
