"""Attribute combinations: global attribute ids, the Apriori candidate step, a vectorised index.

Why a module of its own: the DP measurement, the release artefact and the aggregate-seeded
synthesizer all speak of combinations the same way. An attribute is a ``(column, code)`` pair
with ``code`` not the column's missing code; its global id is ``offsets[column] + code`` (ids
ascend with columns). A combination of length ℓ is a set of ℓ attributes on distinct columns,
stored as sorted global ids. Everything here is public structure: no counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ptsynth.table import ColumnDomain


def attribute_offsets(domains: Sequence[ColumnDomain]) -> np.ndarray:
    """Global attribute id of (column j, code c) is ``offsets[j] + c``; ids ascend with columns.

    Only non-missing codes are attributes, so column j owns ``len(labels)`` ids.
    """
    sizes = np.array([len(d.labels) for d in domains], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


class CombinationIndex:
    """Vectorised membership / id lookup of combinations given as sorted global attribute ids.

    Why not a dict: the synthesizer looks up millions of (record context + candidate value)
    combinations; doing it with ``searchsorted`` on integer keys keeps it in numpy. The key of a
    length-ℓ combination is ``id(prefix of length ℓ−1) * G + last attribute``, where ``id`` is the
    position of the prefix in the sorted released combinations of length ℓ−1 (a released
    combination's prefix is always released: the release is downward closed). Keys stay below
    ``n_{ℓ−1} · G``, far from int64 overflow.
    """

    def __init__(self, n_attributes: int, rows: dict[int, np.ndarray]) -> None:
        self.n_attributes = int(n_attributes)
        self.keys: dict[int, np.ndarray] = {}
        self.order: dict[int, np.ndarray] = {}
        for ell in sorted(rows):
            g = np.asarray(rows[ell], dtype=np.int64).reshape(-1, ell)
            if ell == 1:
                key = g[:, 0].copy()
            else:
                prefix = self.lookup(g[:, :-1])
                if np.any(prefix < 0):
                    raise ValueError(f"length-{ell} combinations are not downward closed")
                key = prefix * self.n_attributes + g[:, -1]
            order = np.argsort(key, kind="stable")
            self.keys[ell] = key[order]
            self.order[ell] = order
            if key.size > 1 and np.any(np.diff(self.keys[ell]) == 0):
                raise ValueError(f"duplicate length-{ell} combinations")

    def lookup(self, g: np.ndarray) -> np.ndarray:
        """Ids (positions in sorted key order) of the rows of ``g`` (shape (N, ℓ), each row
        ascending); −1 where the combination is not in the index."""
        g = np.asarray(g, dtype=np.int64)
        n, ell = g.shape
        ids = np.full(n, -1, dtype=np.int64)
        if ell == 0:
            return np.zeros(n, dtype=np.int64)
        ok = np.ones(n, dtype=bool)
        key = g[:, 0]
        for i in range(1, ell + 1):
            keys = self.keys.get(i)
            if keys is None or keys.size == 0:
                return np.full(n, -1, dtype=np.int64)
            pos = np.searchsorted(keys, key)
            pos_c = np.minimum(pos, keys.size - 1)
            ok &= (pos < keys.size) & (keys[pos_c] == key)
            ids = np.where(ok, pos_c, -1)
            if i < ell:
                key = np.maximum(ids, 0) * self.n_attributes + g[:, i]
        return ids


def extend(
    prev_rows: np.ndarray, attr_g: np.ndarray, attr_col: np.ndarray, g_col: np.ndarray
) -> np.ndarray:
    """All extensions of each (ℓ−1)-combination by one length-1 attribute of a higher column.

    ``prev_rows`` (n, ℓ−1) global ids in key order; ``attr_g`` the released length-1 attributes
    (ascending). Returns (N, ℓ) rows, in key order (prefix id, then last attribute)."""
    n_prev, ellm1 = prev_rows.shape
    if n_prev == 0 or attr_g.size == 0:
        return np.zeros((0, ellm1 + 1), dtype=np.int64)
    last_col = g_col[prev_rows[:, -1]]
    start = np.searchsorted(attr_col, last_col, side="right")
    n_ext = attr_g.size - start
    total = int(n_ext.sum())
    parent = np.repeat(np.arange(n_prev), n_ext)
    within = np.arange(total) - np.repeat(np.cumsum(n_ext) - n_ext, n_ext)
    ext = attr_g[np.repeat(start, n_ext) + within]
    return np.column_stack([prev_rows[parent], ext])


def candidates(
    ell: int,
    released: dict[int, np.ndarray],
    index: CombinationIndex,
    g_col: np.ndarray,
    n_attr: int,
) -> np.ndarray:
    """Length-ℓ candidates (rows of global ids, key order) from the released shorter ones."""
    if ell == 1:
        return np.arange(n_attr, dtype=np.int64)[:, None]
    prev = released.get(ell - 1, np.zeros((0, ell - 1), dtype=np.int64))
    attr_g = released.get(1, np.zeros((0, 1), dtype=np.int64))[:, 0]
    cand = extend(prev, attr_g, g_col[attr_g], g_col)
    # Apriori: every (ℓ−1)-sub-combination must be released. Dropping the last attribute
    # gives the prefix (released by construction); for ℓ = 2 dropping the first gives a
    # released attribute (also by construction).
    keep = np.ones(cand.shape[0], dtype=bool)
    if ell >= 3:
        for drop in range(ell - 1):
            keep &= index.lookup(np.delete(cand, drop, axis=1)) >= 0
    return cand[keep]
