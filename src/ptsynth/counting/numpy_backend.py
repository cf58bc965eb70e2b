"""The local counting backend: exact counts of an in-memory :class:`EncodedTable` with numpy.

Why numpy: the codes are a dense matrix of small integers, so a count is a mixed-radix cell key
per row (:func:`~ptsynth.counting.keys.cell_key`) and ``np.bincount`` (or sorted keys when the
product domain is large), in row chunks so memory stays bounded. No Python loop per row or cell.
Many column sets asked at once are counted in few passes through the block encoding of
:mod:`ptsynth.counting.blocks`. This backend is the reference every other backend (Spark) must
match count for count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ptsynth.counting import prf
from ptsynth.counting.blocks import BlockCounter, dense_counts
from ptsynth.counting.keys import cell_key, check_cells
from ptsynth.table import ColumnDomain, EncodedTable

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import RandomSource

#: Rows counted per chunk: bounds the temporary cell-key array to a few tens of MB.
CHUNK_ROWS = 1 << 22
#: Above this many cells (and 4 per record) a combination's column set is counted with sorted
#: keys instead of a dense bincount.
_DENSE_CELLS = 1 << 16
#: Dense marginals of combination column sets are computed in batches of at most this many cells.
_BATCH_CELLS = 1 << 24


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


def narrow_dtype(sizes: Sequence[int]) -> np.dtype:
    """Smallest unsigned dtype holding every code of these domain sizes."""
    top = max((int(s) for s in sizes), default=1)
    return np.dtype(np.uint8 if top <= 256 else np.uint16 if top <= 65536 else np.int32)


class NumpyBackend:
    """:class:`~ptsynth.counting.backend.CountingBackend` over an in-memory encoded table.

    ``occurrence``: each record's index among the identical records of the table it was first
    read into (see :mod:`ptsynth.counting.prf`); computed on first use when not given, and
    carried along by :meth:`split` so the keyed choices of a subset match its parent's.
    """

    name = "numpy"

    def __init__(self, table: EncodedTable, *, occurrence: np.ndarray | None = None) -> None:
        self.table = table
        self.domains = table.domains
        self._occurrence = occurrence
        self._counter: BlockCounter | None = None

    def __repr__(self) -> str:
        return f"NumpyBackend({self.table.n_records} records x {self.table.n_columns} columns)"

    # -- counts -----------------------------------------------------------------------------
    def record_count(self) -> int:
        return self.table.n_records

    def _blocks(self) -> BlockCounter:
        if self._counter is None:
            codes = self.table.codes
            self._counter = BlockCounter(
                [codes[:, j] for j in range(codes.shape[1])], self.table.sizes
            )
        return self._counter

    def marginals(self, column_sets: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return self._blocks().marginals(column_sets)

    def present_attribute_histogram(self) -> np.ndarray:
        d = self.table.n_columns
        return present_histogram(self.table.codes, self.domains, d)

    def recoded(
        self, maps: Sequence[np.ndarray], domains: Sequence[ColumnDomain]
    ) -> NumpyBackend:
        codes = self.table.codes
        if len(maps) != codes.shape[1] or len(domains) != codes.shape[1]:
            raise ValueError("one code map and one domain per column")
        return NumpyBackend(EncodedTable(recode(codes, maps, domains), tuple(domains)))

    def combination_counter(
        self, max_attributes: int | None, rng: RandomSource | None
    ) -> NumpyCombinationCounter:
        key = None
        if max_attributes is not None and max_attributes < self.table.n_columns:
            if rng is None:
                raise ValueError("a contribution bound needs a RandomSource")
            key = prf.draw_key(rng)
        return NumpyCombinationCounter(
            self.table, max_attributes, key, self.occurrence if key is not None else None
        )

    # -- keyed subsets (holdout, evaluation sample) -------------------------------------------
    @property
    def occurrence(self) -> np.ndarray:
        if self._occurrence is None:
            words = prf.content_words(self.table.codes, self.table.sizes)
            self._occurrence = prf.occurrence_index(words)
        return self._occurrence

    def record_hashes(self, key: tuple[int, int], purpose: int) -> np.ndarray:
        """The keyed PRF value of every record (see :mod:`ptsynth.counting.prf`)."""
        return prf.record_hash(key, self.table.codes, self.table.sizes, self.occurrence, purpose)

    def split(
        self, fraction: float, key: tuple[int, int]
    ) -> tuple[NumpyBackend, NumpyBackend | None]:
        """``(kept, holdout)``: each record goes to the holdout iff its keyed PRF value is below
        ``fraction`` (Bernoulli, order-independent; see :mod:`ptsynth.counting.prf`)."""
        if fraction <= 0:
            return self, None
        u = prf.to_unit(self.record_hashes(key, prf.PURPOSE_HOLDOUT))
        hold = u < fraction
        occ = self.occurrence
        keep = np.flatnonzero(~hold)
        out = np.flatnonzero(hold)
        return (
            NumpyBackend(self.table.take(keep), occurrence=occ[keep]),
            NumpyBackend(self.table.take(out), occurrence=occ[out]),
        )

    def sample_table(self, max_records: int, key: tuple[int, int]) -> EncodedTable:
        """At most ``max_records`` records chosen uniformly without replacement by their keyed
        PRF values (the smallest), in table order; the whole table when it is small enough."""
        n = self.table.n_records
        if n <= max_records:
            return self.table
        h = self.record_hashes(key, prf.PURPOSE_EVALUATION)
        pick = np.sort(smallest_hashes(h, max_records))
        return self.table.take(pick)


def smallest_hashes(h: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest hashes (ties by index): any order."""
    if k >= h.size:
        return np.arange(h.size)
    order = np.lexsort((np.arange(h.size), h))
    return order[:k]


def recode(codes: np.ndarray, maps: Sequence[np.ndarray], domains: Sequence[ColumnDomain]
           ) -> np.ndarray:
    """Column j's codes through ``maps[j]``, in the narrowest dtype of the new domains."""
    dtype = narrow_dtype([d.size for d in domains])
    out = np.empty(codes.shape, dtype=dtype)
    for j in range(codes.shape[1]):
        out[:, j] = np.asarray(maps[j]).astype(dtype)[codes[:, j]]
    return out


def present_mask(codes: np.ndarray, domains: Sequence[ColumnDomain]) -> np.ndarray:
    """Boolean (n, d): the record holds a (non-missing) value in the column."""
    codes = np.asarray(codes)
    present = np.ones(codes.shape, dtype=bool)
    for j, dom in enumerate(domains):
        if dom.allows_missing:
            present[:, j] = codes[:, j] != dom.missing_code
    return present


def present_histogram(codes: np.ndarray, domains: Sequence[ColumnDomain], d: int) -> np.ndarray:
    """``h[a]`` = records holding exactly ``a`` present attributes (chunked)."""
    out = np.zeros(d + 1, dtype=np.int64)
    for start in range(0, codes.shape[0], CHUNK_ROWS):
        held = present_mask(codes[start:start + CHUNK_ROWS], domains).sum(axis=1)
        out += np.bincount(held, minlength=d + 1)
    return out


def bounded_codes(
    codes: np.ndarray, domains: Sequence[ColumnDomain], max_attributes: int | None,
    key: tuple[int, int] | None, occurrence: np.ndarray | None,
) -> np.ndarray:
    """Codes with "absent" = ``len(labels)`` for every column and each record cut to at most
    ``max_attributes`` present attributes.

    A record holding more keeps the ``max_attributes`` present attributes with the smallest
    keyed uniforms ``attribute_uniforms(SipHash_key(content ‖ occurrence ‖ bound))``: a
    uniformly random subset, a deterministic function of the record (see
    :mod:`ptsynth.counting.prf` for why this keeps the sensitivity and is order-independent).
    """
    n, d = codes.shape
    absent = np.array([len(dom.labels) for dom in domains], dtype=np.int64)
    dtype = narrow_dtype(absent + 1)
    work = codes.astype(dtype)  # a missing code is len(labels): already "absent"
    if max_attributes is None or max_attributes >= d or n == 0:
        return work
    if key is None or occurrence is None:
        raise ValueError("a contribution bound needs a PRF key and occurrence indices")
    sizes = [dom.size for dom in domains]
    for start in range(0, n, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, n)
        present = present_mask(codes[start:stop], domains)
        over = np.flatnonzero(present.sum(axis=1) > max_attributes)
        if not over.size:
            continue
        h = prf.record_hash(key, codes[start:stop][over], sizes,
                            occurrence[start:stop][over], prf.PURPOSE_BOUND)
        keys = prf.attribute_uniforms(h, d)
        keys[~present[over]] = 2.0
        drop = np.argsort(keys, axis=1, kind="stable")[:, max_attributes:]
        rows = (start + over)[:, None]
        work[rows, drop] = absent[drop].astype(dtype)
    return work


class NumpyCombinationCounter:
    """Combination counts over per-column codes in which "absent" is ``len(labels)``.

    Records with more than ``max_attributes`` present attributes keep a uniformly random subset
    of that many, chosen by a keyed PRF of the record (:func:`bounded_codes`); the others are
    untouched.
    """

    def __init__(
        self, table: EncodedTable, max_attributes: int | None, key: tuple[int, int] | None,
        occurrence: np.ndarray | None,
    ) -> None:
        work = bounded_codes(table.codes, table.domains, max_attributes, key, occurrence)
        self.columns = [np.ascontiguousarray(work[:, j]) for j in range(work.shape[1])]
        self.radix = np.array([len(dom.labels) + 1 for dom in table.domains], dtype=np.int64)
        self._blocks = BlockCounter(self.columns, self.radix)

    def combination_counts(self, columns: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """True counts of candidate combinations (rows of columns / codes, shape (N, ℓ)).

        Column sets with small product domains are counted together, through the block
        encoding (:class:`~ptsynth.counting.blocks.BlockCounter`); large ones one by one with
        sorted cell keys. Never a loop over records or cells.
        """
        return combination_counts(self._blocks, self.columns, self.radix, columns, codes)


def combination_counts(
    blocks: BlockCounter, cols: Sequence[np.ndarray], radix: np.ndarray, columns: np.ndarray,
    codes: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Counts of the candidate combinations: the shared implementation of every backend's
    per-partition work (see :class:`NumpyCombinationCounter`)."""
    cand_cols, cand_codes = np.asarray(columns), np.asarray(codes)
    n_cand, ell = cand_cols.shape
    out = np.zeros(n_cand, dtype=np.int64)
    if n_cand == 0:
        return out, 0
    n_rec = cols[0].shape[0] if cols else 0
    d = len(cols)
    set_id = cell_key(cand_cols, [d] * ell)
    order = np.argsort(set_id, kind="stable")
    sid_sorted = set_id[order]
    starts = np.flatnonzero(np.r_[True, sid_sorted[1:] != sid_sorted[:-1]])
    ends = np.r_[starts[1:], n_cand]
    dense: list[tuple[tuple[int, ...], np.ndarray]] = []
    for a, b in zip(starts, ends, strict=True):
        idx = order[a:b]
        cs = tuple(int(c) for c in cand_cols[idx[0]])
        r = radix[list(cs)]
        cells = check_cells(r)
        if cells <= max(_DENSE_CELLS, 4 * n_rec):
            dense.append((cs, idx))
            continue
        key = cell_key([cols[c] for c in cs], r)
        ccell = cell_key(cand_codes[idx], r)
        skey = np.sort(key)
        out[idx] = np.searchsorted(skey, ccell, "right") - np.searchsorted(skey, ccell, "left")
    # dense column sets: many per pass, in batches that bound the memory of the tables
    batch: list[tuple[tuple[int, ...], np.ndarray]] = []
    cells_in_batch = 0

    def flush() -> None:
        tables = blocks.marginals([cs for cs, _ in batch])
        for (cs, idx), table in zip(batch, tables, strict=True):
            out[idx] = table.ravel()[cell_key(cand_codes[idx], radix[list(cs)])]
        batch.clear()

    for cs, idx in dense:
        cells = int(np.prod(radix[list(cs)]))
        if batch and cells_in_batch + cells > _BATCH_CELLS:
            flush()
            cells_in_batch = 0
        batch.append((cs, idx))
        cells_in_batch += cells
    if batch:
        flush()
    return out, len(starts)


__all__ = [
    "NumpyBackend",
    "NumpyCombinationCounter",
    "bounded_codes",
    "dense_counts",
    "marginal_counts",
]
