"""The block encoding counts exactly what one pass per column set counts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ptsynth.counting import blocks as blocks_mod
from ptsynth.counting.blocks import BlockCounter, column_blocks
from ptsynth.counting.numpy_backend import NumpyBackend, marginal_counts
from ptsynth.table import ColumnDomain, EncodedTable


def _table(rng: np.random.Generator, sizes: list[int], n: int) -> EncodedTable:
    codes = np.stack([rng.integers(0, s, n) for s in sizes], axis=1).astype(np.uint8)
    codes[:, 1] = np.where(codes[:, 0] == 0, 0, codes[:, 1] % sizes[1])  # some dependence
    domains = tuple(
        ColumnDomain(f"c{j}", tuple(str(i) for i in range(s - 1)), allows_missing=True)
        for j, s in enumerate(sizes)
    )
    return EncodedTable(codes, domains)


def test_blocks_follow_public_sizes_only() -> None:
    assert column_blocks([2] * 7 + [89, 3, 4]) == [(0, 1, 2, 3, 4, 5), (6,), (7,), (8, 9)]
    assert column_blocks([100]) == [(0,)]


@pytest.mark.parametrize("n", [0, 1, 37, 5000])
def test_every_set_matches_direct_counts(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(n)
    sizes = [2, 2, 3, 2, 2, 2, 2, 7, 11, 2, 2, 90]
    table = _table(rng, sizes, n)
    sets = [s for k in (1, 2, 3) for s in itertools.combinations(range(len(sizes)), k)]
    sets += [(3, 0), (11, 2, 5), ()]  # any column order, and the empty set
    monkeypatch.setattr(blocks_mod, "CHUNK_ROWS", 1000)  # several chunks
    got = NumpyBackend(table).marginals(sets)
    for s, g in zip(sets, got, strict=True):
        want = marginal_counts(table, list(s))
        assert g.dtype == np.int64 and g.shape == want.shape
        np.testing.assert_array_equal(g, want)


def test_joint_and_direct_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    sizes = [2] * 12 + [5, 9]
    t = _table(rng, sizes, 3000)
    cols = [t.codes[:, j] for j in range(t.n_columns)]
    sets = list(itertools.combinations(range(len(sizes)), 3))
    joint = BlockCounter(cols, t.sizes).marginals(sets)
    monkeypatch.setattr(blocks_mod, "JOINT_CELLS", 0)  # force one pass per set
    direct = BlockCounter(cols, t.sizes).marginals(sets)
    for a, b in zip(joint, direct, strict=True):
        np.testing.assert_array_equal(a, b)
