"""Exact contingency tables (marginals) of an encoded table.

Why its own module: every private computation in ptsynth reduces to "count the records in each
cell of the product domain of a few columns". Doing that one way, vectorised (mixed-radix cell
index + ``np.bincount``, in row chunks so memory stays bounded), makes it fast and gives one seam
where a distributed backend (Spark, DuckDB) could produce the same counts at scale.

These counts are **private**: nothing here adds noise. Callers hand them straight to a
mechanism of :mod:`ptsynth.privacy` (or to private-side evaluation).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ptsynth.table import EncodedTable

#: Rows counted per chunk: bounds the temporary cell-index array to a few tens of MB.
CHUNK_ROWS = 1 << 22


def cell_index(codes: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Mixed-radix (C order) flat cell index of each row of ``codes`` (shape ``(n, k)``).

    Equal to ``np.ravel_multi_index(codes.T, sizes)`` without its bounds checks or copies.
    """
    sizes = tuple(int(s) for s in sizes)
    n = codes.shape[0]
    if not sizes:
        return np.zeros(n, dtype=np.int64)
    if int(np.prod(sizes, dtype=np.float64)) >= 2**62:
        raise OverflowError("product domain too large for a dense cell index")
    flat = codes[:, 0].astype(np.int64)
    for j in range(1, len(sizes)):
        flat *= sizes[j]
        flat += codes[:, j]
    return flat


def marginal_counts(
    table: EncodedTable, columns: Sequence[str | int], *, weights: np.ndarray | None = None
) -> np.ndarray:
    """Dense count array of shape ``[size(c) for c in columns]`` (int64, or float64 if weighted).

    ``columns`` may be empty: the result is then a 0-d array holding the record count.
    """
    idx = table.indices(columns)
    sizes = tuple(table.domains[j].size for j in idx)
    n_cells = int(np.prod(sizes, dtype=np.int64)) if sizes else 1
    out = np.zeros(n_cells, dtype=np.float64 if weights is not None else np.int64)
    codes = table.codes
    for start in range(0, table.n_records, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, table.n_records)
        flat = cell_index(codes[start:stop][:, list(idx)], sizes) if idx else None
        w = None if weights is None else weights[start:stop]
        if flat is None:
            out[0] += (stop - start) if w is None else float(np.sum(w))
        else:
            out += np.bincount(flat, weights=w, minlength=n_cells).astype(out.dtype, copy=False)
    return out.reshape(sizes)


def many_marginals(
    table: EncodedTable, column_sets: Iterable[Sequence[str | int]]
) -> dict[tuple[str, ...], np.ndarray]:
    """Marginals for several column sets, keyed by column names (in the given order)."""
    result: dict[tuple[str, ...], np.ndarray] = {}
    for cols in column_sets:
        key = tuple(table.domains[j].name for j in table.indices(cols))
        result[key] = marginal_counts(table, cols)
    return result


def project(
    counts: np.ndarray, columns: Sequence[str], keep: Sequence[str]
) -> np.ndarray:
    """Sum a dense marginal over ``columns`` down to ``keep`` (result axes in ``keep`` order)."""
    columns = list(columns)
    axes = tuple(i for i, c in enumerate(columns) if c not in keep)
    reduced = counts.sum(axis=axes) if axes else counts
    remaining = [c for c in columns if c in keep]
    order = [remaining.index(c) for c in keep]
    return np.transpose(reduced, order) if order != list(range(len(order))) else reduced
