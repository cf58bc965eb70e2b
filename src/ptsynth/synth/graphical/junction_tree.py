"""Triangulation and junction trees over the graph of measured column sets.

Why its own module: exact inference on a Markov random field costs the total size of the
junction tree's maximal cliques, so *which* triangulation we pick decides both speed and memory.
The adaptive selector must also ask "how big would the model become if I measured this set?"
for hundreds of candidates every round. We therefore triangulate many graphs at once: the
greedy elimination runs in lock-step on a stack of adjacency matrices (one per hypothetical
model), so the size check of all candidates costs a few batched matrix products per variable.

Variables are column indices ``0 .. d-1``; a clique is a sorted tuple of variable indices.
Everything here is public (it depends only on domain sizes and the chosen column sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

Clique = tuple[int, ...]

#: Candidates triangulated per batch: bounds the (m, d, d, d) containment temporary.
_BATCH_CELLS = 4_000_000


@dataclass(frozen=True)
class JunctionTree:
    """A rooted junction tree of maximal cliques.

    Attributes:
        sizes: domain size of every variable.
        cliques: maximal cliques (sorted variable tuples); ``cliques[root]`` is the root.
        parent: parent clique index of each clique, ``-1`` for the root.
        order: clique indices in breadth-first order from the root (parents before children).
        separators: variables each clique shares with its parent (empty for the root and for
            cliques joining a disconnected component).
    """

    sizes: tuple[int, ...]
    cliques: tuple[Clique, ...]
    parent: tuple[int, ...]
    order: tuple[int, ...]
    separators: tuple[Clique, ...]

    @property
    def root(self) -> int:
        return self.order[0]

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.sizes[v] for v in self.cliques[i])

    def clique_cells(self, i: int) -> int:
        return int(np.prod(self.shape(i), dtype=np.int64))

    @property
    def total_size(self) -> int:
        """Total number of cells over all maximal cliques (the model's memory, in floats)."""
        return sum(self.clique_cells(i) for i in range(len(self.cliques)))

    def children(self) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in self.cliques]
        for c, p in enumerate(self.parent):
            if p >= 0:
                kids[p].append(c)
        return kids

    def containing(self, variables: Iterable[int]) -> int | None:
        """Index of the smallest clique containing ``variables``, or ``None``."""
        want = set(variables)
        best, best_cells = None, None
        for i, c in enumerate(self.cliques):
            if want.issubset(c):
                cells = self.clique_cells(i)
                if best_cells is None or cells < best_cells:
                    best, best_cells = i, cells
        return best


def _adjacency(n_vars: int, cliques: Iterable[Sequence[int]]) -> np.ndarray:
    adj = np.zeros((n_vars, n_vars), dtype=bool)
    for c in cliques:
        idx = np.asarray(list(c), dtype=np.int64)
        if idx.size > 1:
            adj[np.ix_(idx, idx)] = True
    np.fill_diagonal(adj, False)
    return adj


def _eliminate(adj: np.ndarray, log_sizes: np.ndarray, heuristic: str) -> tuple[np.ndarray, np.ndarray]:
    """Greedy elimination on a stack of graphs ``adj`` (m, d, d) in lock-step.

    Returns the elimination cliques (m, d, d) bool (step k: the eliminated variable and its
    remaining neighbours) and the total size of the *maximal* cliques of each triangulation (m,).
    ``heuristic``: "min_fill" (fewest fill-in edges, ties by clique weight) or "min_weight"
    (smallest product of domain sizes of the new clique).
    """
    m, d, _ = adj.shape
    # The graphs shrink in lock-step (each loses one vertex per step), so they are kept
    # compacted to their remaining vertices: ``ids`` maps compact positions to variables, in
    # increasing order, so ties go to the lowest variable as on the full matrices. The cubic
    # step (triangles) then costs sum (d - k)^3, a quarter of d^4.
    a = adj.copy()
    ids = np.tile(np.arange(d), (m, 1))
    logs = np.tile(np.asarray(log_sizes, dtype=np.float64), (m, 1))
    elim = np.zeros((m, d, d), dtype=bool)
    rows = np.arange(m)
    scale = float(log_sizes.sum()) + 1.0
    for k in range(d):
        n = d - k
        af = a.astype(np.float32)  # exact for counts below 2**24; half the matmul cost
        # log cells of the clique eliminating each vertex would form
        logw = np.round(np.matmul(a.astype(np.float64), logs[:, :, None])[:, :, 0] + logs, 9)
        if heuristic == "min_fill":
            deg = af @ np.ones(n, dtype=np.float32)  # faster than count_nonzero here
            tri = np.einsum("mij,mij->mi", af @ af, af)  # diag(A^3): 2 x edges among neighbours
            fill = 0.5 * (deg * deg - deg - tri)
            score = fill + logw / scale
        else:
            score = logw
        v = np.argmin(score, axis=1)
        nb = a[rows, v, :]
        clique = np.zeros((m, d), dtype=bool)
        np.put_along_axis(clique, ids, nb, axis=1)
        clique[rows, ids[rows, v]] = True
        elim[:, k, :] = clique
        a |= nb[:, :, None] & nb[:, None, :]
        keep = np.ones((m, n), dtype=bool)
        keep[rows, v] = False
        a = a[keep].reshape(m, n - 1, n)
        a = a[np.broadcast_to(keep[:, None, :], a.shape)].reshape(m, n - 1, n - 1)
        a &= ~np.eye(n - 1, dtype=bool)
        ids = ids[keep].reshape(m, n - 1)
        logs = logs[keep].reshape(m, n - 1)
    # C_k is maximal unless an earlier elimination clique contains it: on bit sets (one word
    # per clique up to 64 variables), C_k ⊆ C_j iff C_k & ~C_j == 0.
    contained = _contained(elim)  # [m, k, j]: C_k ⊆ C_j
    earlier = np.tril(np.ones((d, d), dtype=bool), k=-1)  # j < k
    maximal = ~np.any(contained & earlier[None, :, :], axis=2)
    cells = np.rint(np.exp(elim.astype(np.float64) @ log_sizes))
    total = np.sum(np.where(maximal, cells, 0.0), axis=1)
    return elim, total


def _contained(elim: np.ndarray) -> np.ndarray:
    """``[m, k, j]``: elimination clique k of graph m is a subset of clique j."""
    m, d, _ = elim.shape
    words = (d + 63) // 64
    padded = np.zeros((m, d, words * 64), dtype=bool)
    padded[:, :, :d] = elim
    bits = np.packbits(padded, axis=2, bitorder="little").view(np.uint64)  # (m, d, words)
    out = np.ones((m, d, d), dtype=bool)
    for w in range(words):
        b = bits[:, :, w]
        out &= (b[:, :, None] & ~b[:, None, :]) == 0
    return out


def _maximal_cliques(elim: np.ndarray) -> list[Clique]:
    d = elim.shape[0]
    sets = [frozenset(np.flatnonzero(elim[k]).tolist()) for k in range(d)]
    out: list[Clique] = []
    for k, s in enumerate(sets):
        if not any(s <= sets[j] for j in range(k)):
            out.append(tuple(sorted(s)))
    return out


def triangulated_sizes(
    sizes: Sequence[int], base: Sequence[Sequence[int]], extra: Sequence[Sequence[int]],
    *, limit: float | None = None,
) -> np.ndarray:
    """Total junction-tree size of ``base + [e]`` for every ``e`` in ``extra`` (float64, (m,)).

    Uses the better of the min-fill and min-weight triangulations, exactly as
    :func:`build_junction_tree` does, so the size predicted here is the size built there.
    With ``limit``, only whether a size is ``<= limit`` is exact: graphs whose min-fill size is
    already within it skip the min-weight triangulation (their value is the min-fill size).
    """
    d = len(sizes)
    log_sizes = np.log(np.asarray(sizes, dtype=np.float64))
    base_adj = _adjacency(d, base)
    out = np.empty(len(extra), dtype=np.float64)
    batch = max(1, _BATCH_CELLS // max(1, d * d * d))
    for start in range(0, len(extra), batch):
        chunk = extra[start : start + batch]
        adj = np.repeat(base_adj[None, :, :], len(chunk), axis=0)
        for i, e in enumerate(chunk):
            idx = np.asarray(list(e), dtype=np.int64)
            adj[i][np.ix_(idx, idx)] = True
        adj &= ~np.eye(d, dtype=bool)[None]
        _, t1 = _eliminate(adj, log_sizes, "min_fill")
        todo = np.flatnonzero(t1 > limit) if limit is not None else np.arange(len(chunk))
        if todo.size:
            _, t2 = _eliminate(adj[todo], log_sizes, "min_weight")
            t1[todo] = np.minimum(t1[todo], t2)
        out[start : start + len(chunk)] = t1
    return out


def maximal_cliques(sizes: Sequence[int], cliques: Sequence[Sequence[int]]) -> list[Clique]:
    """Maximal cliques of the smaller of the min-fill / min-weight triangulations."""
    d = len(sizes)
    log_sizes = np.log(np.asarray(sizes, dtype=np.float64))
    adj = _adjacency(d, list(cliques) + [(v,) for v in range(d)])[None]
    e1, t1 = _eliminate(adj, log_sizes, "min_fill")
    e2, t2 = _eliminate(adj, log_sizes, "min_weight")
    return _maximal_cliques(e1[0] if t1[0] <= t2[0] else e2[0])


def build_junction_tree(sizes: Sequence[int], cliques: Sequence[Sequence[int]]) -> JunctionTree:
    """Junction tree whose maximal cliques cover every clique in ``cliques`` and every variable.

    The tree is a maximum-weight spanning tree of the clique graph with weights
    ``|C_i ∩ C_j|`` (Prim's algorithm; for the cliques of a chordal graph this has the running
    intersection property). Disconnected components are joined by empty separators. The root
    is the largest clique, so generation starts from the richest joint table.
    """
    sizes = tuple(int(s) for s in sizes)
    maxc = maximal_cliques(sizes, cliques)
    k = len(maxc)
    member = np.zeros((k, len(sizes)), dtype=np.int64)
    for i, c in enumerate(maxc):
        member[i, list(c)] = 1
    weight = member @ member.T
    cells = [int(np.prod([sizes[v] for v in c], dtype=np.int64)) for c in maxc]
    root = int(np.argmax(cells))
    parent = [-1] * k
    in_tree = np.zeros(k, dtype=bool)
    in_tree[root] = True
    best = weight[root].astype(np.float64).copy()
    best_from = np.full(k, root)
    order = [root]
    for _ in range(k - 1):
        cand = np.where(in_tree, -np.inf, best)
        j = int(np.argmax(cand))
        parent[j] = int(best_from[j])
        in_tree[j] = True
        order.append(j)
        better = (weight[j] > best) & ~in_tree
        best[better] = weight[j][better]
        best_from[better] = j
    # Breadth-first order so every parent precedes its children.
    kids: list[list[int]] = [[] for _ in range(k)]
    for c, p in enumerate(parent):
        if p >= 0:
            kids[p].append(c)
    bfs = [root]
    for i in bfs:
        bfs.extend(kids[i])
    seps = tuple(
        tuple(sorted(set(maxc[c]) & set(maxc[parent[c]]))) if parent[c] >= 0 else ()
        for c in range(k)
    )
    return JunctionTree(sizes, tuple(maxc), tuple(parent), tuple(bfs), seps)
