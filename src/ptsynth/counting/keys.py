"""Cell keys: the one mixed-radix encoding of a combination of codes as one integer.

Why one implementation: every count in ptsynth (marginals, combination counts, k-anonymity,
evaluation, sampling groups) turns a row's codes on a few columns into one integer cell key and
counts keys. Doing that in one place means one overflow guard: a product domain of 2**63 cells
or more cannot be keyed in int64, and silently wrapping around would merge unrelated cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: Product domains at or above this many cells cannot be keyed in int64.
MAX_CELLS = 2**62


def n_cells(sizes: Sequence[int]) -> int:
    """Number of cells of the product domain (exact Python integer)."""
    return math.prod(int(s) for s in sizes)


def check_cells(sizes: Sequence[int]) -> int:
    """The product domain's cell count, or :class:`OverflowError` when int64 keys cannot hold it."""
    cells = n_cells(sizes)
    if cells >= MAX_CELLS:
        raise OverflowError(
            f"product domain of {len(sizes)} columns has {cells:.3g} cells: too large for an "
            "int64 cell key"
        )
    return cells


def cell_key(
    columns: np.ndarray | Sequence[np.ndarray],
    sizes: Sequence[int],
    *,
    prefix: np.ndarray | None = None,
    prefix_cells: int = 1,
) -> np.ndarray:
    """Mixed-radix (C order) int64 key of each row's codes.

    ``columns`` is a 2-d code array of shape ``(n, k)`` or a sequence of k code vectors. The
    key equals ``np.ravel_multi_index(codes.T, sizes)`` without its bounds checks or copies.
    ``prefix`` (keys over ``prefix_cells`` cells of earlier columns) is extended instead of
    starting from zero, so column sets sharing a prefix reuse its key.
    """
    sizes = [int(s) for s in sizes]
    check_cells([prefix_cells, *sizes])
    if isinstance(columns, np.ndarray) and columns.ndim == 2:
        cols: Sequence[np.ndarray] = [columns[:, j] for j in range(columns.shape[1])]
        n = columns.shape[0]
    else:
        cols = list(columns)
        n = cols[0].shape[0] if cols else (0 if prefix is None else prefix.shape[0])
    if len(cols) != len(sizes):
        raise ValueError(f"{len(cols)} code columns but {len(sizes)} sizes")
    if prefix is not None:
        key = np.array(prefix, dtype=np.int64, copy=True)
    elif cols:
        key = cols[0].astype(np.int64)  # a copy: the loop below works in place
        cols, sizes = cols[1:], sizes[1:]
    else:
        return np.zeros(n, dtype=np.int64)
    for col, size in zip(cols, sizes, strict=True):
        key *= size
        key += col
    return key


def cell_codes(cells: np.ndarray, sizes: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`cell_key`: codes of each cell, shape ``(len(cells), len(sizes))``."""
    if not len(sizes):
        return np.zeros((np.asarray(cells).size, 0), dtype=np.int64)
    return np.stack(np.unravel_index(cells, tuple(int(s) for s in sizes)), axis=1)


def packed_words(columns: Sequence[np.ndarray], sizes: Sequence[int]) -> list[np.ndarray]:
    """Rows' codes packed into as few uint64 words as fit (mixed radix, each word < 2**62),
    most significant first: sorting by the words (lexicographically) sorts by the columns."""
    words: list[np.ndarray] = []
    word: np.ndarray | None = None
    cells = 1
    for col, size in zip(columns, (int(s) for s in sizes), strict=True):
        if word is None or cells * size >= MAX_CELLS:
            if word is not None:
                words.append(word)
            word, cells = np.asarray(col).astype(np.uint64), size
        else:
            word *= np.uint64(size)
            word += np.asarray(col).astype(np.uint64)
            cells *= size
    if word is not None:
        words.append(word)
    return words


def stable_order(columns: Sequence[np.ndarray], sizes: Sequence[int]) -> np.ndarray:
    """The stable lexicographic order of the rows by ``columns`` (first = most significant),
    ties in input order: ``np.lexsort(columns[::-1])`` with the columns packed into words."""
    words = packed_words(columns, sizes)
    if not words:
        return np.arange(0)
    if len(words) == 1:
        return np.argsort(words[0], kind="stable")
    return np.lexsort(words[::-1])
