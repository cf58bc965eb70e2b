"""The local counting backend: exact counts of an in-memory :class:`EncodedTable` with numpy.

Why numpy: the codes are a dense matrix of small integers, so a count is a mixed-radix cell key
per row (:func:`~ptsynth.counting.keys.cell_key`) and ``np.bincount`` (or sorted keys when the
product domain is large), in row chunks so memory stays bounded. No Python loop per row or cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ptsynth.counting.keys import cell_key, check_cells
from ptsynth.table import ColumnDomain, EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import RandomSource

#: Rows counted per chunk: bounds the temporary cell-key array to a few tens of MB.
CHUNK_ROWS = 1 << 22
#: Above this many cells (and 4 per record) a combination's column set is counted with sorted
#: keys instead of a dense bincount.
_DENSE_CELLS = 1 << 16


def marginal_counts(
    table: EncodedTable, columns: Sequence[str | int], *, weights: np.ndarray | None = None
) -> np.ndarray:
    """Dense count array of shape ``[size(c) for c in columns]`` (int64, or float64 if weighted).

    ``columns`` may be empty: the result is then a 0-d array holding the record count.
    """
    idx = table.indices(columns)
    sizes = tuple(table.domains[j].size for j in idx)
    cells = check_cells(sizes)
    out = np.zeros(cells, dtype=np.float64 if weights is not None else np.int64)
    codes = table.codes
    for start in range(0, table.n_records, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, table.n_records)
        w = None if weights is None else weights[start:stop]
        if not idx:
            out[0] += (stop - start) if w is None else float(np.sum(w))
            continue
        flat = cell_key(codes[start:stop][:, list(idx)], sizes)
        out += np.bincount(flat, weights=w, minlength=cells).astype(out.dtype, copy=False)
    return out.reshape(sizes)


class NumpyBackend:
    """:class:`~ptsynth.counting.backend.CountingBackend` over an in-memory encoded table."""

    name = "numpy"

    def __init__(self, table: EncodedTable) -> None:
        self.table = table
        self.domains = table.domains

    def __repr__(self) -> str:
        return f"NumpyBackend({self.table.n_records} records x {self.table.n_columns} columns)"

    def record_count(self) -> int:
        return self.table.n_records

    def marginals(self, column_sets: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return [marginal_counts(self.table, list(cols)) for cols in column_sets]

    def present_attribute_histogram(self) -> np.ndarray:
        d = self.table.n_columns
        return np.bincount(_present(self.table).sum(axis=1), minlength=d + 1)

    def recoded(
        self, maps: Sequence[np.ndarray], domains: Sequence[ColumnDomain]
    ) -> NumpyBackend:
        codes = self.table.codes
        if len(maps) != codes.shape[1] or len(domains) != codes.shape[1]:
            raise ValueError("one code map and one domain per column")
        mapped = np.stack([np.asarray(maps[j])[codes[:, j]] for j in range(codes.shape[1])], axis=1)
        return NumpyBackend(EncodedTable(mapped, tuple(domains)))

    def combination_counter(
        self, max_attributes: int | None, rng: RandomSource | None
    ) -> NumpyCombinationCounter:
        return NumpyCombinationCounter(self.table, max_attributes, rng)


def _present(table: EncodedTable) -> np.ndarray:
    """Boolean (n, d): the record holds a (non-missing) value in the column."""
    codes = np.asarray(table.codes)
    present = np.ones(codes.shape, dtype=bool)
    for j, dom in enumerate(table.domains):
        if dom.allows_missing:
            present[:, j] = codes[:, j] != dom.missing_code
    return present


class NumpyCombinationCounter:
    """Combination counts over per-column codes in which "absent" is ``len(labels)``.

    Records with more than ``max_attributes`` present attributes keep a uniformly random subset
    of that many (random keys from ``rng``, absent ones sorted last); the others are untouched.
    """

    def __init__(
        self, table: EncodedTable, max_attributes: int | None, rng: RandomSource | None
    ) -> None:
        codes = np.asarray(table.codes)
        n, d = codes.shape
        absent = np.array([len(dom.labels) for dom in table.domains], dtype=np.int64)
        work = codes.astype(np.int64, copy=True)
        if max_attributes is not None and max_attributes < d and n:
            if rng is None:
                raise ValueError("a contribution bound needs a RandomSource")
            present = _present(table)
            over = np.flatnonzero(present.sum(axis=1) > max_attributes)
            if over.size:
                keys = rng.uniform(over.size * d).reshape(over.size, d)
                keys[~present[over]] = 2.0
                drop = np.argsort(keys, axis=1)[:, max_attributes:]
                work[over[:, None], drop] = absent[drop]
        self.columns = [np.ascontiguousarray(work[:, j]) for j in range(d)]
        self.radix = absent + 1

    def combination_counts(self, columns: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """True counts of candidate combinations (rows of columns / codes, shape (N, ℓ)).

        Loops over distinct column sets (never over records or cells): one cell key per record
        per column set, counted with bincount (small product domains) or sorted keys (large
        ones). Column sets sharing a prefix reuse the prefix key.
        """
        cand_cols, cand_codes = np.asarray(columns), np.asarray(codes)
        n_cand, ell = cand_cols.shape
        out = np.zeros(n_cand, dtype=np.int64)
        if n_cand == 0:
            return out, 0
        cols, radix = self.columns, self.radix
        n_rec = cols[0].shape[0] if cols else 0
        d = len(cols)
        set_id = cell_key(cand_cols, [d] * ell)
        order = np.argsort(set_id, kind="stable")
        sid_sorted = set_id[order]
        starts = np.flatnonzero(np.r_[True, sid_sorted[1:] != sid_sorted[:-1]])
        ends = np.r_[starts[1:], n_cand]
        prefix_cache: tuple[tuple[int, ...], np.ndarray] | None = None
        for a, b in zip(starts, ends, strict=True):
            idx = order[a:b]
            cs = tuple(int(c) for c in cand_cols[idx[0]])
            r = radix[list(cs)]
            if prefix_cache is None or prefix_cache[0] != cs[:-1]:
                pkey = cell_key([cols[c] for c in cs[:-1]], radix[list(cs[:-1])],
                                prefix=np.zeros(n_rec, dtype=np.int64))
                prefix_cache = (cs[:-1], pkey)
            pcells = int(np.prod(r[:-1], dtype=np.int64))
            key = cell_key([cols[cs[-1]]], [r[-1]], prefix=prefix_cache[1], prefix_cells=pcells)
            ccell = cell_key(cand_codes[idx], r)
            cells = check_cells(r)
            if cells <= max(_DENSE_CELLS, 4 * n_rec):
                out[idx] = np.bincount(key, minlength=cells)[ccell]
            else:
                skey = np.sort(key)
                out[idx] = np.searchsorted(skey, ccell, "right") - np.searchsorted(skey, ccell, "left")
        return out, len(starts)
