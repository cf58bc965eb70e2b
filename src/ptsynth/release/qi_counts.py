"""Counts of quasi-identifier combinations, kept over distinct QI profiles, for k-anonymity.

Why profiles: k-anonymity looks at every combination of up to ``L`` present QI values on
distinct columns, i.e. at ``sum_{l<=L} C(q, l)`` column subsets. Counting each subset over every
record costs ``O(n)`` per subset and per enforcement round, and holding one cell key per
record and subset (the earlier design) needs ``8 n`` bytes per subset. Records with the same
QI values (a *profile*) always fall in the same cells, so every count is a weighted count over
the distinct profiles, of which there are far fewer than records once tables grow (the cells of
a few categorical QIs are bounded, the records are not). A profile index is built once in
``O(n)`` (a hash of one packed key per record), after which a scan of all subsets costs
``O(u * subsets)`` for ``u`` profiles, and changing ``m`` records costs ``O(m * subsets)``.

Memory: the QI codes, one profile id per record, the profile table, and one count array per
column subset (dense below :data:`DENSE_CELLS` cells, else a sorted sparse table): no
per-record, per-subset array is ever held.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ptsynth.counting import cell_key, check_cells, n_cells
from ptsynth.counting.keys import MAX_CELLS

#: A column subset's counts are a dense array up to this many cells, a sorted table beyond.
DENSE_CELLS = 1 << 22


def qi_subsets(q: int, reporting_length: int) -> list[tuple[int, ...]]:
    """Every subset of ``q`` QI positions with 1..``reporting_length`` members, shortest first."""
    return [
        s for ell in range(1, min(reporting_length, q) + 1)
        for s in itertools.combinations(range(q), ell)
    ]


class ProfileIndex:
    """The distinct QI vectors (profiles) seen so far, and a hash lookup from vector to id.

    Profiles are only ever appended (an id stays valid); their multiplicities live in the
    caller. Vectors are packed into one int64 mixed-radix key when the product domain fits,
    else looked up through a pandas ``MultiIndex`` (still a hash, still vectorised). New
    profiles go to a small second hash, merged into the main one once it holds an eighth as
    many, so adding a few profiles never rehashes all of them.
    """

    def __init__(self, vectors: np.ndarray, sizes: Sequence[int]) -> None:
        self.sizes = [int(s) for s in sizes]
        self._packed = n_cells(self.sizes) < MAX_CELLS
        self.vectors = np.zeros((0, len(self.sizes)), dtype=vectors.dtype)
        self._main = self._make_index(self.vectors)
        self._main_size = 0
        self._recent = self._make_index(self.vectors)

    def _keys(self, vectors: np.ndarray) -> np.ndarray | pd.MultiIndex:
        if self._packed:
            return cell_key(vectors, self.sizes) if self.sizes else np.zeros(len(vectors), np.int64)
        return pd.MultiIndex.from_arrays([vectors[:, j] for j in range(vectors.shape[1])])

    def _make_index(self, vectors: np.ndarray) -> pd.Index:
        keys = self._keys(vectors)
        return keys if isinstance(keys, pd.MultiIndex) else pd.Index(keys)

    def ids(self, vectors: np.ndarray) -> np.ndarray:
        """The id of each vector (shape ``(m, q)``), adding the ones not seen yet."""
        if vectors.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        codes, uniques = pd.factorize(self._keys(vectors))
        codes = np.asarray(codes, dtype=np.int64)
        first = np.zeros(len(uniques), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        uvec = vectors[first]
        wanted = uniques if isinstance(uniques, pd.MultiIndex) else pd.Index(uniques)
        found = np.asarray(self._main.get_indexer(wanted), dtype=np.int64)
        rest = np.flatnonzero(found < 0)
        if rest.size and len(self._recent):
            hit = np.asarray(self._recent.get_indexer(wanted[rest]), dtype=np.int64)
            found[rest[hit >= 0]] = self._main_size + hit[hit >= 0]
            rest = rest[hit < 0]
        if rest.size:
            found[rest] = self.vectors.shape[0] + np.arange(rest.size)
            self.vectors = np.concatenate([self.vectors, uvec[rest].astype(self.vectors.dtype)])
            if self.vectors.shape[0] - self._main_size > max(1024, self._main_size // 8):
                self._main = self._make_index(self.vectors)
                self._main_size = self.vectors.shape[0]
                self._recent = self._make_index(self.vectors[:0])
            else:
                self._recent = self._make_index(self.vectors[self._main_size:])
        return found[codes]

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])


class SubsetCounts:
    """Counts of the cells of one column subset, and which cells are *eliminated*.

    Dense (one slot per cell) when the product domain is small, else a sorted table of the
    cells that occur. Only cells that already occur can be looked up in the sparse form; a
    cell added later is merged in (:meth:`add`), which is rare (new profiles only).
    """

    def __init__(self, sizes: Sequence[int], keys: np.ndarray, weights: np.ndarray,
                 limit: int) -> None:
        self.sizes = [int(s) for s in sizes]
        cells = check_cells(self.sizes)
        self.dense = cells <= max(DENSE_CELLS, limit)
        if self.dense:
            self.counts = np.bincount(keys, weights=weights, minlength=cells).astype(np.int64)
            self.keys = None
        else:
            uk, inv = np.unique(keys, return_inverse=True)
            self.keys = uk
            self.counts = np.bincount(inv.ravel(), weights=weights, minlength=uk.size).astype(np.int64)
        self.elim = np.zeros(self.counts.size, dtype=bool)

    def slots(self, keys: np.ndarray) -> np.ndarray:
        """Slot of each cell key; ``-1`` for a cell that never occurred (sparse form)."""
        if self.dense:
            return keys
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, max(self.keys.size - 1, 0))
        hit = self.keys.size > 0
        ok = (self.keys[pos] == keys) if hit else np.zeros(keys.shape, dtype=bool)
        return np.where(ok, pos, -1)

    def count(self, keys: np.ndarray) -> np.ndarray:
        s = self.slots(keys)
        if self.dense:
            return self.counts[s]
        return np.where(s >= 0, self.counts[np.maximum(s, 0)], 0)

    def eliminated(self, keys: np.ndarray) -> np.ndarray:
        s = self.slots(keys)
        if self.dense:
            return self.elim[s]
        return np.where(s >= 0, self.elim[np.maximum(s, 0)], False)

    def allowed(self, keys: np.ndarray) -> np.ndarray:
        """Cells a record may move into: they occur and are not eliminated."""
        s = self.slots(keys)
        if self.dense:
            return (self.counts[s] > 0) & ~self.elim[s]
        safe = np.maximum(s, 0)
        return (s >= 0) & (self.counts[safe] > 0) & ~self.elim[safe]

    def add(self, keys: np.ndarray, delta: int) -> None:
        if keys.size == 0:
            return
        if not self.dense:
            s = self.slots(keys)
            missing = np.unique(keys[s < 0])
            if missing.size:
                merged = np.concatenate([self.keys, missing])
                order = np.argsort(merged, kind="stable")
                self.keys = merged[order]
                self.counts = np.concatenate([self.counts, np.zeros(missing.size, np.int64)])[order]
                self.elim = np.concatenate([self.elim, np.zeros(missing.size, bool)])[order]
            keys = self.slots(keys)
        np.add.at(self.counts, keys, delta)


class QICounts:
    """Every subset's cell counts over a table's QI codes, maintained as records change, and
    for every profile how many *eliminated* cells it holds (per QI column).

    ``codes`` is the ``(n, q)`` QI code matrix; ``missing`` holds each column's missing code or
    ``-1``. Why the per-profile degrees are kept rather than recomputed: cells are only ever
    eliminated or restored in a few subsets at a time, so a round rescans only those subsets
    (and profiles seen for the first time) instead of all of them.
    """

    def __init__(self, codes: np.ndarray, sizes: Sequence[int], missing: Sequence[int],
                 reporting_length: int) -> None:
        self.sizes = [int(s) for s in sizes]
        self.q = len(self.sizes)
        self.missing = np.asarray(missing, dtype=np.int64)
        self.subsets = qi_subsets(self.q, reporting_length)
        self._bits_ok = self.q < 63
        self.subset_bits = [sum(1 << j for j in s) for s in self.subsets]
        self.index = ProfileIndex(codes, self.sizes)
        ids = self.index.ids(codes)
        self.weight = np.bincount(ids, minlength=self.index.size).astype(np.int64)
        # one profile id per record (-1: dropped); int32 while ids fit (half the memory)
        self.profile = ids.astype(np.int32) if len(ids) < 2**31 - 1 else ids
        del ids
        # (q, profiles): one contiguous row per column, updated by index
        self.degree = np.zeros((self.q, self.index.size), dtype=np.int32)
        self.n_bad = np.zeros(self.index.size, dtype=np.int32)
        vec = self.index.vectors
        limit = 4 * max(self.index.size, 1)
        self.cells: list[SubsetCounts] = []
        for s, (keys, present) in zip(self.subsets, self.scan(vec), strict=True):
            self.cells.append(SubsetCounts([self.sizes[j] for j in s], keys[present],
                                           self.weight[present], limit))

    # -- keys ------------------------------------------------------------------------------
    def present_bits(self, vectors: np.ndarray) -> np.ndarray:
        bits = np.zeros(vectors.shape[0], dtype=np.int64)
        for j in range(self.q):
            if self.missing[j] >= 0:
                bits |= (vectors[:, j] != self.missing[j]).astype(np.int64) << j
            else:
                bits |= np.int64(1) << j
        return bits

    def present(self, vectors: np.ndarray, subset: Sequence[int]) -> np.ndarray:
        ok = np.ones(vectors.shape[0], dtype=bool)
        for j in subset:
            if self.missing[j] >= 0:
                ok &= vectors[:, j] != self.missing[j]
        return ok

    def keys(self, vectors: np.ndarray, subset: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Cell key of each vector on ``subset`` and whether all its values are present."""
        cols = [vectors[:, j] for j in subset]
        return cell_key(cols, [self.sizes[j] for j in subset]), self.present(vectors, subset)

    def scan(self, vectors: np.ndarray, only: Sequence[int] | None = None):
        """``(keys, present)`` of ``vectors`` for each subset (or the subsets numbered in
        ``only``), in order; a subset's key extends its prefix's key when that was just
        computed (subsets come in lexicographic order)."""
        wanted = range(len(self.subsets)) if only is None else only
        bits = self.present_bits(vectors) if self._bits_ok else None
        prefix_key: tuple[tuple[int, ...], np.ndarray | None] = ((), None)
        for i in wanted:
            s = self.subsets[i]
            if len(s) == 1:
                keys = vectors[:, s[0]].astype(np.int64)
            else:
                prefix = s[:-1]
                if prefix_key[0] != prefix:
                    prefix_key = (prefix, cell_key([vectors[:, j] for j in prefix],
                                                   [self.sizes[j] for j in prefix]))
                keys = prefix_key[1] * self.sizes[s[-1]]
                keys += vectors[:, s[-1]]
            if bits is not None:
                present = (bits & self.subset_bits[i]) == self.subset_bits[i]
            else:
                present = self.present(vectors, s)
            yield keys, present

    def strides(self, subset: Sequence[int]) -> list[int]:
        sizes = [self.sizes[j] for j in subset]
        return [int(np.prod(sizes[i + 1:], dtype=np.int64)) for i in range(len(sizes))]

    # -- elimination state -------------------------------------------------------------------
    def live(self) -> np.ndarray:
        return np.flatnonzero(self.weight > 0)

    def violating_profiles(self) -> tuple[np.ndarray, np.ndarray]:
        """Live profiles holding an eliminated cell, and per profile how many such cells each
        QI column takes part in (shape ``(m, q)``)."""
        bad = np.flatnonzero((self.weight > 0) & (self.n_bad > 0))
        return bad, self.degree[:, bad].T

    def safe_profiles(self) -> np.ndarray:
        """Live profiles holding no eliminated cell."""
        return np.flatnonzero((self.weight > 0) & (self.n_bad == 0))

    def _mark(self, changed: dict[int, np.ndarray], sign: int) -> None:
        """Profiles in the cells flagged in ``changed[subset]`` (by slot) gain (or lose) one
        eliminated cell per flagged subset."""
        if not changed:
            return
        vec = self.index.vectors
        order = sorted(changed)
        for i, (keys, present) in zip(order, self.scan(vec, order), strict=True):
            slots = self.cells[i].slots(keys)
            idx = np.flatnonzero(present & (slots >= 0))
            idx = idx[changed[i][slots[idx]]]
            if idx.size:
                for j in self.subsets[i]:
                    self.degree[j, idx] += sign
                self.n_bad[idx] += sign

    def eliminate_upto(self, t: int) -> int:
        """Eliminate every occurring cell with at most ``t`` records; returns how many."""
        changed = {}
        for i, cells in enumerate(self.cells):
            new = (cells.counts > 0) & (cells.counts <= t) & ~cells.elim
            if new.any():
                cells.elim |= new
                changed[i] = new
        self._mark(changed, +1)
        return int(sum(int(v.sum()) for v in changed.values()))

    def restore(self, vectors: np.ndarray) -> None:
        """Un-eliminate every cell of these vectors (each now holds at least k records)."""
        changed = {}
        for i, (keys, present) in enumerate(self.scan(vectors)):
            cells = self.cells[i]
            slots = cells.slots(keys[present])
            slots = slots[slots >= 0]
            back = np.zeros(cells.elim.size, dtype=bool)
            back[slots] = cells.elim[slots]
            if back.any():
                cells.elim[back] = False
                changed[i] = back
        self._mark(changed, -1)

    def smallest_violations(self, k: int) -> np.ndarray:
        """Live profiles holding a cell with fewer than ``k`` records (no elimination state)."""
        live = self.live()
        vec = self.index.vectors[live]
        bad = np.zeros(live.size, dtype=bool)
        for cells, (keys, present) in zip(self.cells, self.scan(vec), strict=True):
            bad |= present & (cells.count(keys) < k)
        return live[bad]

    # -- updates ---------------------------------------------------------------------------
    def _apply(self, vectors: np.ndarray, delta: int) -> None:
        for cells, (keys, present) in zip(self.cells, self.scan(vectors), strict=True):
            cells.add(keys[present], delta)

    def _grow(self) -> None:
        """Size the per-profile arrays to the index; new profiles get their degrees."""
        old = self.weight.size
        new = self.index.size - old
        if new <= 0:
            return
        self.weight = np.concatenate([self.weight, np.zeros(new, np.int64)])
        vec = self.index.vectors[old:]
        degree = np.zeros((self.q, new), dtype=np.int32)
        n_bad = np.zeros(new, dtype=np.int32)
        for i, (keys, present) in enumerate(self.scan(vec)):
            hit = present & self.cells[i].eliminated(keys)
            if hit.any():
                for j in self.subsets[i]:
                    degree[j] += hit
                n_bad += hit
        self.degree = np.concatenate([self.degree, degree], axis=1)
        self.n_bad = np.concatenate([self.n_bad, n_bad])

    def move(self, rows: np.ndarray, old: np.ndarray, new: np.ndarray | None) -> None:
        """Records ``rows`` change from QI vectors ``old`` to ``new`` (``None``: removed)."""
        if rows.size == 0:
            return
        np.subtract.at(self.weight, self.profile[rows], 1)
        self._apply(old, -1)
        if new is None:
            self.profile[rows] = -1
            return
        self._apply(new, +1)
        ids = self.index.ids(new)
        self._grow()
        np.add.at(self.weight, ids, 1)
        self.profile[rows] = ids
