"""Validation and encoding: raw Arrow batches → small integer codes over the public domains.

Why strict and vectorised: this is the one place where sensitive records enter. Every cell is
checked against the *public* schema with whole-block Arrow / NumPy operations (no Python loop
per row); the first violated rule raises :class:`~ptsynth.errors.InputError` naming the file,
row, column and rule plus how many other rows break the same rule, and **never** the offending
value. Nothing is returned unless the whole input is valid (no partial output).

Each block is encoded through its *distinct* cells (``dictionary_encode``): cleaning, mapping,
number / date parsing and set splitting run once per distinct value and reach the rows by a
lookup. Memory holds only the codes (one byte per cell for the usual domains) and the subject
ids, never the raw text of the whole input. Problems are tallied per rule across blocks (first
row in input order, number of other rows), and the rule reported is the one a whole-input pass
meets first: declared column order, then within a column the order below; per-subject merging
(:mod:`ptsynth.ingest.merge`) comes last.

Cleaning rules, all public and documented: cells are stripped of surrounding whitespace; a cell
equal to one of the column's ``missing_values`` (default: empty) is missing; the column's ``map``
renames spellings to declared values; set cells are split on the delimiter, members are
stripped, empty members and missing tokens dropped, repeated members counted once.

Checks per column, in order: categorical / ordinal: unknown value, missing in a ``forbid``
column; numeric: not a number, outside the bins, missing; date: not an ISO date, outside the
range, missing; set: unknown member, empty in a ``forbid`` column, more than ``max_values``;
subject id: missing in a ``forbid`` column. Then, per record, the schema's structural zeros
(impossible combinations, :mod:`ptsynth.structure`), again after merging by subject id.

Values outside the declared domain follow the column's policy (``unknown`` for code lists,
``out_of_range`` for bins and dates): an error, or recoded to the declared catch-all value /
missing / the nearest bin. Recoded cells are counted per column into the table's
:class:`~ptsynth.table.IngestSummary` (``outside_domain``), which is **private** (a count read
without noise): it goes to the steward's report and terminal, never into a public file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ptsynth.errors import InputError, SchemaError
from ptsynth.ingest.merge import merge_subjects, subject_groups
from ptsynth.ingest.problems import ErrorReporter, Problems
from ptsynth.ingest.sources import RecordStream
from ptsynth.progress import SILENT, ProgressReporter, Task
from ptsynth.schema import ColumnSpec, Schema, period_ordinal
from ptsynth.table import ColumnDomain, EncodedTable, IngestSummary

#: Fewest records (after merging by subject) a table may hold.
MIN_RECORDS = 2


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


def _policy(spec: ColumnSpec) -> str:
    if spec.kind in ("numeric", "date"):
        return {"clip": "clipped to the nearest bin", "missing": "recorded as missing"}.get(
            spec.out_of_range, spec.out_of_range)
    if spec.unknown == "other":
        return f"recorded as {spec.other!r}" + (" (member)" if spec.kind == "set" else "")
    return "member dropped" if spec.kind == "set" else "recorded as missing"


@dataclass
class _Encoded:
    """One column of one block: codes per row, and one mask per check (in check order) over the
    distinct cells ``rows`` points into (over the rows themselves when ``rows`` is None);
    ``recoded`` masks the cells recoded under the column's outside-domain policy."""

    codes: np.ndarray
    checks: list[tuple[np.ndarray, str]]
    rows: np.ndarray | None = None
    recoded: np.ndarray | None = None

    def row_masks(self) -> Iterator[tuple[np.ndarray, str]]:
        """Row masks of the checks that find something (the rest cost nothing)."""
        for mask, rule in self.checks:
            if mask.any():
                yield (mask if self.rows is None else mask[self.rows]), rule

    def recoded_rows(self) -> int:
        """Rows whose cell was recoded under the outside-domain policy."""
        if self.recoded is None or not self.recoded.any():
            return 0
        if self.rows is None:
            return int(self.recoded.sum())
        per_cell = np.bincount(self.rows, minlength=self.recoded.size)
        return int(per_cell[self.recoded].sum())


_FORBID = "value is missing but the column has missing = \"forbid\""


def _bin(x: np.ndarray, missing: np.ndarray, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin codes, the mask of values outside the bins left as errors, and the mask recoded."""
    edges = np.asarray(spec.bins)
    nbins = len(edges) - 1
    with np.errstate(invalid="ignore"):
        idx = np.searchsorted(edges, x, side="right") - 1
        outside = ~missing & ~np.isnan(x) & ~((x >= edges[0]) & (x < edges[-1]))
    recoded = np.zeros_like(outside)
    if spec.out_of_range == "clip":
        idx = np.clip(idx, 0, nbins - 1)
        outside, recoded = recoded, outside
    elif spec.out_of_range == "missing":
        idx[outside] = nbins
        outside, recoded = recoded, outside
    idx[missing] = nbins
    return idx, outside, recoded


def _encode_numeric(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    outside_rule = "value lies outside the declared bins (set out_of_range = \"clip\" to clamp)"
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        missing = np.isnan(x)
        idx, outside, recoded = _bin(x, missing, spec)
        checks = [(np.zeros(len(x), bool), "value is not a number"), (outside, outside_rule)]
        return _Encoded(idx, checks + [(missing, _FORBID)], recoded=recoded)
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    x = _parse_numbers(arr, missing)
    idx, outside, recoded = _bin(x, missing, spec)
    checks = [(np.isnan(x) & ~missing, "value is not a number"), (outside, outside_rule), (missing, _FORBID)]
    return _Encoded(idx[rows], checks, rows, recoded)


def _periods(ts: pd.Series, missing: np.ndarray, spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    years = ts.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    months = ts.dt.month.to_numpy(dtype=np.float64, na_value=np.nan)
    lo, hi = spec.period_range
    p = np.full(len(years), lo, dtype=np.int64)
    ok = ~missing & ~np.isnan(years)
    p[ok] = period_ordinal(years[ok].astype(np.int64), months[ok].astype(np.int64), spec.period)
    idx = p - lo
    outside = ok & ((idx < 0) | (idx > hi - lo))
    recoded = np.zeros_like(outside)
    if spec.out_of_range == "clip":
        idx = np.clip(idx, 0, hi - lo)
        outside, recoded = recoded, outside
    elif spec.out_of_range == "missing":
        idx[outside] = hi - lo + 1
        outside, recoded = recoded, outside
    idx[missing] = hi - lo + 1
    return idx, outside, recoded


def _encode_date(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    outside_rule = "date lies outside the declared start..end range (set out_of_range = \"clip\" to clamp)"
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        ts = pd.Series(pd.to_datetime(col.to_pandas(), utc=True))
        missing = ts.isna().to_numpy()
        idx, outside, recoded = _periods(ts, missing, spec)
        checks = [(np.zeros(len(idx), bool), "value is not an ISO 8601 date (YYYY-MM-DD)"),
                  (outside, outside_rule), (missing, _FORBID)]
        return _Encoded(idx, checks, recoded=recoded)
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    ts = _parse_dates(arr, missing)
    unparsed = ts.isna().to_numpy() & ~missing
    idx, outside, recoded = _periods(ts, missing | unparsed, spec)
    checks = [(unparsed, "value is not an ISO 8601 date (YYYY-MM-DD)"), (outside, outside_rule),
              (missing, _FORBID)]
    return _Encoded(idx[rows], checks, rows, recoded)


def _encode_categorical(col: pa.Array, spec: ColumnSpec, rep: ErrorReporter) -> _Encoded:
    uniq, rows = _distinct(_as_strings(col, rep, spec.name))
    arr, missing = _clean(uniq, spec)
    codes, unknown = _encode_labels(arr, missing, spec.values)
    recoded = None
    if spec.unknown != "error" and unknown.any():
        codes[unknown] = spec.values.index(spec.other) if spec.unknown == "other" else len(spec.values)
        unknown, recoded = np.zeros_like(unknown), unknown
    checks = [(unknown, "value is not one of the declared values (set unknown = \"other\" or "
                        "\"missing\" to recode such values)"), (missing, _FORBID)]
    return _Encoded(codes[rows], checks, rows, recoded)


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
    recoded = None
    if spec.unknown != "error":
        if spec.unknown == "other":
            codes[unknown] = spec.values.index(spec.other)
        else:
            absent = absent | unknown
        unknown = np.zeros_like(unknown)
        bad_member, recoded = np.zeros(n, dtype=bool), bad_member
    keep = ~absent & ~unknown
    present = np.zeros((n, m), dtype=bool)
    present[parents[keep], codes[keep]] = True
    count = present.sum(axis=1)
    empty = (count == 0) if spec.missing == "forbid" else np.zeros(n, bool)
    too_many = (count > spec.max_values) if spec.max_values is not None else np.zeros(n, bool)
    checks = [(bad_member, "set member is not one of the declared values"),
              (empty, "cell is empty but the column has missing = \"forbid\""),
              (too_many, "cell has more members than max_values")]
    return _Encoded(np.where(present, 0, 1)[rows], checks, rows, recoded)


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


class BlockEncoder:
    """Validates and encodes blocks one after another, keeping only codes and subject ids."""

    def __init__(self, schema: Schema, names: list[str], rep: ErrorReporter) -> None:
        unresolved = schema.dp_bin_columns
        if unresolved:
            raise SchemaError("has bins = \"dp-quantiles\": its edges must be measured before "
                              "records are encoded (ptsynth release does this first)",
                              file=schema.source, column=unresolved[0].name)
        self.schema, self.rep = schema, rep
        #: column → {"rows", "policy"}: values outside the declared domain (private counts)
        self.outside_domain: dict[str, dict[str, Any]] = {}
        self.issues = Problems(rep)
        self.domains = schema.encoded_domains()
        self.names = [d.name for d in self.domains]
        self.zeros = schema.structural_zeros
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
        self.rows_without_id = 0

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
                    self.rows_without_id += int(missing.sum())
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
            recoded = enc.recoded_rows()
            if recoded:
                entry = self.outside_domain.setdefault(spec.name, {"rows": 0, "policy": _policy(spec)})
                entry["rows"] += recoded
            if self.issues.found:  # the input is refused anyway: only tally further problems
                continue
            assert sl is not None
            codes[:, sl] = enc.codes.reshape(n, -1)
        if not self.issues.found:
            self._check_zeros(codes, base)
        if not self.issues.found:
            self.blocks.append(codes)
        self.n_rows += n

    def _check_zeros(self, codes: np.ndarray, base: int) -> None:
        """Records holding a combination the schema declares impossible (after all columns)."""
        for i, z in enumerate(self.zeros):
            bad = z.contains(codes, self.names)
            if bad.any():
                self.issues.add((len(self.plan) + i, 0), bad, _zero_rule(z), _zero_columns(z), base)

    def result(self) -> EncodedTable:
        """Raise the first problem, or merge subjects and return the encoded table."""
        self.issues.raise_first()
        if self.schema.subject_id is not None and self.id_values:
            groups = subject_groups(self.id_values, self.id_rows)
            codes = merge_subjects(self._stacked(), groups, self.domains, self.schema, self.rep)
            if self.zeros:  # a union of set members across rows can form a new combination
                for z in self.zeros:
                    if z.contains(codes, self.names).any():
                        raise self.rep.fail(_zero_rule(z) + " once the rows of one subject id "
                                            "are merged", column=_zero_columns(z))
        else:
            codes = self._stacked()
        if codes.shape[0] < MIN_RECORDS:
            raise self.rep.fail(f"input holds fewer than {MIN_RECORDS} records"
                                + (" after merging rows by subject id" if self.schema.subject_id else ""))
        out = EncodedTable(codes, self.domains, summary=IngestSummary(
            input_rows=self.n_rows, records=int(codes.shape[0]),
            rows_without_id=self.rows_without_id if self.schema.subject_id else self.n_rows,
            outside_domain=self.outside_domain,
        ))
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


def _zero_rule(z: Any) -> str:
    return (f"record holds a combination the schema declares impossible ({z.origin}); correct "
            "the record or the declared structure")


def _zero_columns(z: Any) -> str:
    return ", ".join(z.columns)


def check_columns(names: list[str], schema: Schema, rep: ErrorReporter) -> None:
    present = {str(c).strip() for c in names}
    for spec in schema.columns:
        if spec.name not in present:
            raise rep.fail("declared column is not in the input", column=spec.name)
    if schema.extra_columns == "error":
        declared = set(schema.names)
        for i, name in enumerate(names):
            if str(name).strip() not in declared:  # named by position: it may be a value
                raise rep.fail(f"input column {i + 1} of the header is not declared in the schema "
                               "(set [dataset] extra_columns = \"ignore\" to skip it; a file "
                               "without a header line also gives this)")


def encode_stream(stream: RecordStream, schema: Schema, rep: ErrorReporter,
                  progress: ProgressReporter = SILENT) -> EncodedTable:
    """Validate and encode a stream of raw batches (see the module docstring)."""
    with progress.task("read", "reading and validating records", unit="rows") as task:
        return _encode_batches(stream, schema, rep, task)


def _encode_batches(stream: RecordStream, schema: Schema, rep: ErrorReporter, task: Task) -> EncodedTable:
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
        check_columns(stream.names, schema, rep)
    except InputError:
        for _ in batches:  # drain: problems reading the file (ragged rows) take precedence
            pass
        stream.finish()
        raise
    encoder = BlockEncoder(schema, stream.names, rep)
    if first is not None:
        encoder.add(first)
        task.advance(first.num_rows)
        del first
    for batch in batches:
        encoder.add(batch)
        task.advance(batch.num_rows)
    pa.default_memory_pool().release_unused()  # the reader's buffers, before the merge
    stream.finish()
    if encoder.n_rows == 0:
        raise rep.fail("input has no records")
    return encoder.result()
