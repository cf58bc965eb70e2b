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
        """
        queries = np.asarray(queries, dtype=np.int64)
        n_cols = max(len(self.domains), 1)
        best = np.full(queries.shape[0], np.inf, dtype=np.float64)
        arg = np.zeros(queries.shape[0], dtype=np.int64)
        if self.candidates.shape[0] == 0 or queries.shape[0] == 0:
            return best, arg
        g = self._gather(queries)
        for start in range(0, self.candidates.shape[0], BLOCK_ROWS):
            block = self._onehot(self.candidates[start : start + BLOCK_ROWS])
            d = g @ block.T  # (m, block)
            local = np.argmin(d, axis=1)
            val = np.round(d[np.arange(d.shape[0]), local].astype(np.float64), 4)
            better = val < best
            best[better] = val[better]
            arg[better] = local[better] + start
        return np.round(best / n_cols, 6), arg
