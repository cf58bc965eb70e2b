"""Exact nearest-neighbour search for the record distance used by DCR and the attacks.

Why not a k-d tree: the distance is a sum of per-column terms over small finite domains, so
for each column it is a lookup table ``D_j[a, b]``. Then the distance between query ``q`` and
candidate ``r`` is ``Σ_j D_j[q_j, r_j] = G(q) · onehot(r)`` where ``G(q)`` concatenates the rows
``D_j[q_j, :]``. A block of candidates one-hot encoded times the gathered query matrix is one
dense matrix product (BLAS), exact up to float32 rounding, with no Python loop per row.

Per-column distance (DCR definition): categorical and set members 0 if equal else 1; ordinal,
numeric and date ``|a − b| / (L − 1)`` on codes (``L`` non-missing labels); for any kind, a
missing value is at distance 1 from every present value and 0 from another missing value.
Row distance = mean over the columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ptsynth.evaluate.stats import ORDERED_KINDS
from ptsynth.table import ColumnDomain

#: Candidate rows one-hot encoded per block (bounds memory to block × Σ domain sizes floats).
BLOCK_ROWS = 8192


def column_distance_matrix(dom: ColumnDomain) -> np.ndarray:
    """``D[a, b]`` for one column (see the module docstring)."""
    m = dom.size
    if dom.kind in ORDERED_KINDS:
        n_labels = len(dom.labels)
        codes = np.arange(m, dtype=np.float64)
        d = np.abs(codes[:, None] - codes[None, :]) / max(n_labels - 1, 1)
        if dom.allows_missing:
            d[-1, :] = 1.0
            d[:, -1] = 1.0
            d[-1, -1] = 0.0
        return d
    return 1.0 - np.eye(m)


class CodeNeighbours:
    """Nearest candidates (min mean per-column distance) over a subset of columns.

    Args:
        candidates: code matrix ``(n, len(columns))`` to search in.
        domains: the domains of those columns.
    """

    def __init__(self, candidates: np.ndarray, domains: Sequence[ColumnDomain]) -> None:
        self.domains = tuple(domains)
        self.sizes = np.array([d.size for d in self.domains], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.width = int(self.sizes.sum())
        self.tables = [column_distance_matrix(d).astype(np.float32) for d in self.domains]
        self.candidates = np.asarray(candidates, dtype=np.int64)
        self._cand_sorted: tuple | None = None

    def _gather(self, queries: np.ndarray) -> np.ndarray:
        """``G(q)``: per query, the rows ``D_j[q_j, :]`` side by side, shape (m, width)."""
        out = np.empty((queries.shape[0], self.width), dtype=np.float32)
        for j, tab in enumerate(self.tables):
            o = self.offsets[j]
            out[:, o : o + tab.shape[1]] = tab[queries[:, j]]
        return out

    def _onehot(self, rows: np.ndarray) -> np.ndarray:
        block = np.zeros((rows.shape[0], self.width), dtype=np.float32)
        flat = rows + self.offsets[None, :]
        np.put_along_axis(block, flat, 1.0, axis=1)
        return block

    def nearest(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance to, and index of, the nearest candidate of each query (lowest index on ties).

        Distances are the mean over columns (so in [0, 1]); rounded to 1e-6 to remove float32
        noise, so that exact matches read exactly 0.

        Why it is fast on many queries: identical queries are searched once, and a query equal
        to a candidate is answered by a sorted-key lookup (distance 0 is the minimum, and
        distinct rows are at a positive distance, so the match — its lowest index among equal
        candidates — *is* the answer). Only the remaining distinct queries pay the dense scan.
        """
        queries = np.asarray(queries, dtype=np.int64)
        n_q = queries.shape[0]
        best = np.full(n_q, np.inf, dtype=np.float64)
        arg = np.zeros(n_q, dtype=np.int64)
        if self.candidates.shape[0] == 0 or n_q == 0:
            return best, arg
        if not self.domains:
            return np.zeros(n_q), arg
        uq, inv = row_keys_unique(queries, self.sizes)
        q_rows = queries[uq]
        d_u = np.full(uq.size, np.inf, dtype=np.float64)
        a_u = np.zeros(uq.size, dtype=np.int64)
        hit, where = self._exact(q_rows)
        d_u[hit] = 0.0
        a_u[hit] = where[hit]
        rest = np.flatnonzero(~hit)
        if rest.size:
            d_u[rest], a_u[rest] = self._scan(q_rows[rest])
        return d_u[inv], a_u[inv]

    def _keys(self, rows: np.ndarray) -> np.ndarray | None:
        """Mixed-radix int64 keys of code rows, or None when the product domain is too large."""
        if float(np.prod(self.sizes.astype(np.float64))) >= 2.0**62:
            return None
        key = np.zeros(rows.shape[0], dtype=np.int64)
        for j, s in enumerate(self.sizes):
            key *= int(s)
            key += rows[:, j]
        return key

    def _exact(self, q_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query: is it equal to a candidate, and the lowest index of such a candidate."""
        if self._cand_sorted is None:
            ck = self._keys(self.candidates)
            if ck is None:
                self._cand_sorted = (None, None)
            else:
                uniq, first = np.unique(ck, return_index=True)
                self._cand_sorted = (uniq, first)
        uniq, first = self._cand_sorted
        qk = None if uniq is None else self._keys(q_rows)
        if qk is None or uniq.size == 0:
            return np.zeros(q_rows.shape[0], dtype=bool), np.zeros(q_rows.shape[0], np.int64)
        pos = np.minimum(np.searchsorted(uniq, qk), uniq.size - 1)
        hit = uniq[pos] == qk
        return hit, first[pos]

    def _scan(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense exact scan: one matrix product per candidate block (see the module docstring)."""
        n_cols = max(len(self.domains), 1)
        best = np.full(queries.shape[0], np.inf, dtype=np.float64)
        arg = np.zeros(queries.shape[0], dtype=np.int64)
        g = self._gather(queries)
        rows = np.arange(queries.shape[0])
        for start in range(0, self.candidates.shape[0], BLOCK_ROWS):
            block = self._onehot(self.candidates[start : start + BLOCK_ROWS])
            d = g @ block.T  # (m, block)
            local = np.argmin(d, axis=1)
            val = np.round(d[rows, local].astype(np.float64), 4)
            better = val < best
            best[better] = val[better]
            arg[better] = local[better] + start
        return np.round(best / n_cols, 6), arg


def row_keys_unique(rows: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the first occurrence of each distinct row, and each row's distinct-row number."""
    if rows.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if float(np.prod(np.asarray(sizes, dtype=np.float64))) < 2.0**62:
        key = np.zeros(rows.shape[0], dtype=np.int64)
        for j, s in enumerate(sizes):
            key *= int(s)
            key += rows[:, j]
    else:
        c = np.ascontiguousarray(rows)
        key = c.view(np.dtype((np.void, c.dtype.itemsize * c.shape[1]))).ravel()
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    return first, inv.ravel()
