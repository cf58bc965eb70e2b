"""Small encoded tables with known dependency structure, shared by the tests (no real data)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ptsynth.table import ColumnDomain, EncodedTable


def make_table(n: int, d: int, seed: int, *, strength: float = 3.0, max_size: int = 6) -> EncodedTable:
    """Random table with chained dependencies; every third column forbids missing."""
    g = np.random.default_rng(seed)
    sizes = g.integers(2, max_size, size=d)
    doms, cols = [], []
    for j in range(d):
        allow = j % 3 != 0
        doms.append(
            ColumnDomain(
                f"c{j}", tuple(f"v{i}" for i in range(int(sizes[j]))), allows_missing=allow
            )
        )
        size = doms[-1].size
        if j == 0:
            col = g.choice(size, n, p=g.dirichlet(np.ones(size)))
        else:
            par = cols[int(g.integers(0, j))]
            cond = g.dirichlet(np.ones(size) / strength, size=int(par.max()) + 1)
            u = g.random(n)
            col = np.minimum((cond.cumsum(1)[par] < u[:, None]).sum(1), size - 1)
        cols.append(col)
    return EncodedTable(np.column_stack(cols).astype(np.int16), tuple(doms))


def chain_table(n: int, sizes: Sequence[int], seed: int) -> EncodedTable:
    """Each column copies its predecessor (+1 mod size) with probability 0.7; last code = missing."""
    g = np.random.default_rng(seed)
    cols = [g.integers(0, sizes[0], n)]
    for s in sizes[1:]:
        copy = g.random(n) < 0.7
        cols.append(np.where(copy, (cols[-1] + 1) % s, g.integers(0, s, n)))
    doms = tuple(
        ColumnDomain(f"c{j}", tuple(str(i) for i in range(s - 1)), allows_missing=True)
        for j, s in enumerate(sizes)
    )
    return EncodedTable(np.stack(cols, axis=1), doms)
