"""Per-person merge: the rows that share a subject id become one record.

Why: the privacy unit is one person and the neighbouring relation adds or removes one person's
record, so a person with several case rows must contribute exactly one record to every count.
Single-valued columns must agree where both rows are present (missing + value → value); set
columns take the union. A disagreement is refused, naming the column and the first row, never
an id or a value.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ptsynth.ingest import sources
from ptsynth.ingest.problems import ErrorReporter
from ptsynth.schema import Schema
from ptsynth.table import ColumnDomain


def subject_groups(id_values: list[pa.Array], id_rows: list[np.ndarray]) -> np.ndarray:
    """Group number of each row, in order of first appearance (rows without id stand alone).

    ``id_values[b]`` holds block b's distinct cleaned ids (null = missing) and ``id_rows[b]``
    each of its rows' index into them; both lists are emptied as they are consumed. The blocks'
    distinct ids are dictionary-encoded together (one shared dictionary): Arrow numbers them in
    order of first appearance, so only rows without an id need renumbering (a running maximum,
    no sort).
    """
    enc = pc.dictionary_encode(pa.chunked_array(id_values, pa.large_string()))
    id_values.clear()
    parts = []
    for chunk, rows in zip(enc.chunks, id_rows, strict=True):
        gid = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
        parts.append(np.asarray(gid, dtype=np.int32)[rows])
    del enc
    id_rows.clear()
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


def merge_subjects(out: np.ndarray, groups: np.ndarray, domains: tuple[ColumnDomain, ...],
                   schema: Schema, rep: ErrorReporter) -> np.ndarray:
    """One record per subject: agree-or-missing for single-valued columns, union for sets.

    In place on ``out`` (the stacked codes, one row per input row): groups are numbered by first
    appearance, so a subject's slot never lies after its rows; single-row subjects move up slice
    by slice, and only subjects with several rows go through the sort / ``reduceat`` path. Peak
    memory stays about one copy of the codes.
    """
    err = rep.check
    n_groups = int(groups.max()) + 1 if groups.size else 0
    if n_groups == out.shape[0]:
        return out
    multi = np.bincount(groups, minlength=n_groups)[groups] > 1
    rows = np.flatnonzero(multi)  # ascending
    codes = out[rows]
    step = sources.BLOCK_ROWS  # one block size for the whole ingest (tests shrink it)
    for start in range(0, out.shape[0], step):
        sl = slice(start, start + step)
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
    for j, dom in enumerate(domains):  # loop over columns, not rows
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
    for spec in schema.data_columns:
        if spec.kind == "set" and spec.max_values is not None:
            idx = [k for k, d in enumerate(domains) if d.source == spec.name]
            count = (out[targets][:, idx] == 0).sum(axis=1)
            err(count > spec.max_values, "the merged rows of one subject id have more set "
                                         "members than max_values", spec.name, first_row)
    try:  # drop the tail in place (no second copy of the codes)
        out.resize((n_groups, out.shape[1]), refcheck=True)
    except ValueError:
        out = out[:n_groups].copy()
    return out
