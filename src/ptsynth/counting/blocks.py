"""Many marginals in few passes: records as small blocks of columns, counted per block tuple.

Why: a graphical-model fit asks for the marginal of every candidate column set (all 3-way sets
of a 32-column table are 4,960 sets), and the aggregate release for every combination's column
set. Counting each set in its own pass over the records costs ``sets x rows``: at ten million
records that is hours. Instead the columns are grouped, by their *public* domain sizes only,
into blocks of at most :data:`BLOCK_CELLS` joint values (six binary set members, or a 2 x 4 x 7
triple), and each record becomes one small block id per block (a compact encoding of the
records). Every column set lies in a tuple of one to three blocks; the joint counts over a
block tuple are one ``bincount`` pass, and *all* sets inside that tuple are read off the joint
table (a sum over its cells, independent of the number of records). A 32-column table has 11
blocks, so all 3-way marginals take a few hundred passes instead of 4,960.

A cost model chooses per block tuple between the joint table (one pass plus one sum over the
joint cells per set) and counting each set directly (one pass per set), so small tables, sets
with huge joint tables and single sets are counted directly. Both paths give exact int64
counts; which one ran never changes a count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ptsynth.counting.keys import cell_codes, cell_key, check_cells

#: Largest joint domain of one block (public sizes only): ids fit one byte, a 3-block joint
#: table has at most 2**18 cells.
BLOCK_CELLS = 64
#: Largest joint table over a block tuple that is counted densely.
JOINT_CELLS = 1 << 22
#: Rows per chunk: bounds the temporary key arrays (a few MB) and keeps them in cache.
CHUNK_ROWS = 1 << 20


def column_blocks(sizes: Sequence[int], limit: int = BLOCK_CELLS) -> list[tuple[int, ...]]:
    """Adjacent columns grouped while their product domain stays within ``limit`` (public)."""
    blocks: list[tuple[int, ...]] = []
    cur: list[int] = []
    cells = 1
    for j, s in enumerate(int(x) for x in sizes):
        if cur and cells * s <= limit:
            cur.append(j)
            cells *= s
        else:
            if cur:
                blocks.append(tuple(cur))
            cur, cells = [j], s
    if cur:
        blocks.append(tuple(cur))
    return blocks


def _id_dtype(cells: int) -> np.dtype:
    return np.dtype(np.uint8 if cells <= 256 else np.uint16 if cells <= 65536 else np.int32)


def dense_counts(
    columns: Sequence[np.ndarray], sizes: Sequence[int], weights: np.ndarray | None = None,
    *, n: int | None = None,
) -> np.ndarray:
    """Flat int64 counts over the mixed-radix cells of ``columns`` (chunked bincount);
    ``n`` rows (needed only when ``columns`` is empty)."""
    cells = check_cells(sizes)
    if columns:
        n = columns[0].shape[0]
    elif n is None:
        n = 0 if weights is None else weights.shape[0]
    out = np.zeros(cells, dtype=np.int64)
    if not columns:
        out[0] = n if weights is None else int(np.sum(weights))
        return out
    key_dtype = np.int32 if cells < 2**31 else np.int64
    for start in range(0, n, CHUNK_ROWS):
        sl = slice(start, start + CHUNK_ROWS)
        key = columns[0][sl].astype(key_dtype)
        for col, size in zip(columns[1:], sizes[1:], strict=True):
            key *= size
            key += col[sl]
        w = None if weights is None else weights[sl]
        counts = np.bincount(key, weights=w, minlength=cells)
        out += counts if w is None else np.rint(counts).astype(np.int64)
    return out


class BlockCounter:
    """Exact marginals of an ``(n, d)`` code matrix over public ``sizes``, in few passes.

    ``columns`` are the code vectors (any integer dtype); block ids are built lazily, once per
    block, the first time a joint pass needs them.
    """

    def __init__(self, columns: Sequence[np.ndarray], sizes: Sequence[int],
                 weights: np.ndarray | None = None) -> None:
        self.columns = list(columns)
        self.sizes = tuple(int(s) for s in sizes)
        self.weights = weights
        self.n = self.columns[0].shape[0] if self.columns else 0
        self.blocks = column_blocks(self.sizes)
        self.block_of = {}
        for b, cols in enumerate(self.blocks):
            for c in cols:
                self.block_of[c] = b
        self.block_cells = [int(np.prod([self.sizes[c] for c in cols])) for cols in self.blocks]
        self._ids: dict[int, np.ndarray] = {}
        self._decode: dict[int, np.ndarray] = {}

    # -- the compact encoding ---------------------------------------------------------------
    def block_ids(self, b: int) -> np.ndarray:
        ids = self._ids.get(b)
        if ids is None:
            cols = self.blocks[b]
            dtype = _id_dtype(self.block_cells[b])
            ids = np.empty(self.n, dtype=dtype)
            for start in range(0, self.n, CHUNK_ROWS):
                sl = slice(start, start + CHUNK_ROWS)
                ids[sl] = cell_key([self.columns[c][sl] for c in cols],
                                   [self.sizes[c] for c in cols])
            self._ids[b] = ids
        return ids

    def _block_decode(self, b: int) -> np.ndarray:
        table = self._decode.get(b)
        if table is None:
            cols = self.blocks[b]
            table = cell_codes(np.arange(self.block_cells[b]), [self.sizes[c] for c in cols])
            self._decode[b] = table
        return table

    # -- counts -------------------------------------------------------------------------------
    def marginals(self, column_sets: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Dense int64 counts per set, axes in the order given (an empty set: the 0-d total)."""
        sets = [tuple(int(c) for c in s) for s in column_sets]
        out: list[np.ndarray | None] = [None] * len(sets)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, s in enumerate(sets):
            if len(set(s)) != len(s):
                raise ValueError("a column set names a column twice")
            check_cells([self.sizes[c] for c in s])
            groups.setdefault(tuple(sorted({self.block_of[c] for c in s})), []).append(i)
        for tup, members in groups.items():
            joint_cells = int(np.prod([self.block_cells[b] for b in tup], dtype=np.float64))
            direct = len(members) * self.n
            joint = self.n + 3 * len(members) * joint_cells  # a joint cell costs ~3 rows
            if tup and joint_cells <= JOINT_CELLS and joint < direct:
                self._from_joint(tup, [sets[i] for i in members], members, out)
            else:
                for i in members:
                    s = sets[i]
                    shape = [self.sizes[c] for c in s]
                    out[i] = dense_counts([self.columns[c] for c in s], shape, self.weights,
                                          n=self.n).reshape(shape)
        return [np.asarray(x) for x in out]

    def _from_joint(self, tup: tuple[int, ...], sets: list[tuple[int, ...]],
                    members: list[int], out: list[np.ndarray | None]) -> None:
        """One pass over the block tuple's ids, then every set summed out of the joint table."""
        cells = [self.block_cells[b] for b in tup]
        joint = dense_counts([self.block_ids(b) for b in tup], cells, self.weights)
        nz = np.flatnonzero(joint)  # sum over occupied joint cells only
        weights = joint[nz].astype(np.float64)
        joint_codes = cell_codes(nz, cells)  # (occupied, len(tup)) block ids
        for s, i in zip(sets, members, strict=True):
            shape = [self.sizes[c] for c in s]
            stride = np.ones(len(s), dtype=np.int64)
            for k in range(len(s) - 2, -1, -1):
                stride[k] = stride[k + 1] * shape[k + 1]
            idx = np.zeros(nz.size, dtype=np.int64)
            for pos, b in enumerate(tup):
                decode = self._block_decode(b)
                sub = np.zeros(self.block_cells[b], dtype=np.int64)
                for k, c in enumerate(s):
                    if self.block_of[c] == b:
                        sub += decode[:, self.blocks[b].index(c)] * stride[k]
                idx += sub[joint_codes[:, pos]]
            total = int(np.prod(shape, dtype=np.int64))
            counts = np.bincount(idx, weights=weights, minlength=total)
            out[i] = np.rint(counts).astype(np.int64).reshape(shape)
