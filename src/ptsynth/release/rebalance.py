"""Last step of k-anonymity enforcement: move QI values back toward the table before
enforcement without breaking k-anonymity.

Why: the recode step (:mod:`ptsynth.release.recode`) fixes rare combinations one record at a
time. Each move is plausible on its own, but summed over thousands of records they shift the
low-order tables that every 3-way table of the release inherits: a column's shares, the QI
pairs, the QI-by-other-column tables. Worse, a common QI pair whose records all sat in rare
triples (a year and a citizenship, spread over many countries) is emptied altogether. Once
the table is k-anonymous, much of this can be moved back at no risk.

Objective: the weighted L1 distance between the table's marginals and the same marginals
before enforcement, over each QI column (weight :data:`W_ONE`), each QI pair (:data:`W_PAIR`),
each larger QI set up to the reporting length (:data:`W_HIGHER`), and each QI with each of up
to :data:`MAX_PARTNERS` other columns (:data:`W_PARTNER`). Two kinds of moves, each kept only
when it lowers the objective:

1. *Group moves* (:func:`_restore_cells`): a combination of 2 or more QI values that now holds
   at least k records fewer than before is refilled by k records that held it before, all
   taking one common QI profile of those records. k records entering one profile give every
   combination of it at least k records; the combinations they leave are checked.
2. *Single-value moves* (:func:`_local_search`): a record changes one QI value ``u -> v``
   when every combination it leaves keeps at least k records (or had only this one) and
   every one it enters already has k or more; evaluated for all records of one column at
   once (numpy), accepted a block at a time (:data:`BLOCK` or more) in order of gain against
   the current counts. No move enters a combination of values that neither the table before
   enforcement nor the table now holds.

Both keep the table k-anonymous at the reporting length, keep a protected category (one with
at least k records before enforcement) at its floor, and never move a record into a
structural zero of the schema; the caller re-checks the result anyway. A single-value move
never creates a blank; a group may take a profile with a blank (one its records had before
enforcement), paid for in the objective like any other value, so blank shares stay at their
level before enforcement.

What it reads: the synthetic table before and after enforcement and the enforcement's own
counts (DP output; post-processing). Measured effect in ``benchmarks/protect.py``
(``benchmarks/README.md``). Candidates: the records enforcement changed (a random
:data:`MAX_CANDIDATES` / 2 of them when more) plus as many others drawn at random. Cost: at
most :data:`MAX_ROUNDS` passes over the QI columns, each ``O(candidates x values x marginals
through the column + cells of those marginals)``; group moves ``O(pool x marginals)`` per try,
at most :data:`MAX_GROUP_TRIES` tries, skipped when the marginals' cells do not fit in
:data:`SPACE_CELLS` (then each marginal costs 16 bytes per cell).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: Objective weights: QI columns, QI pairs, larger QI sets, QI-by-other-column pairs. The 1-way
#: shares weigh most because every triple containing the column inherits their error.
W_ONE = 100.0
W_PAIR = 10.0
W_HIGHER = 1.0
W_PARTNER = 10.0
#: Other (non-QI) columns whose tables with each QI are kept, at most (the most dependent).
MAX_PARTNERS = 8
#: Records considered for moves, at most.
MAX_CANDIDATES = 1 << 19
#: Passes over the QI columns, at most (a pass with no accepted move ends the search).
MAX_ROUNDS = 3
#: Candidate records x values evaluated at a time (bounded memory).
CHUNK_CELLS = 1 << 18
#: Moves accepted against the same counts at a time (see :func:`_accept`), at least; at most
#: :data:`MAX_BLOCKS` blocks per column and pass (larger blocks for many movers).
BLOCK = 256
MAX_BLOCKS = 64
#: Group moves need every marginal's cells in one dense array of at most this many cells
#: (else they are skipped and only single-value moves run).
SPACE_CELLS = 1 << 23
#: Group tries at most, the pool of records a group is chosen from (x k), and the memory for
#: the marginals' records-by-key indexes (8 bytes per candidate each; the least recently used
#: is dropped beyond it): bounded time and memory.
MAX_GROUP_TRIES = 8192
GROUP_POOL = 32
HELD_BYTES = 1 << 28
#: Profiles tried per combination to refill (the most common ones among its records before).
PROFILES_PER_CELL = 2
#: Marginals with at most this many cells are held over every cell (a cell's index is its key,
#: counts by bincount); larger ones over the cells seen before or now (looked up by search).
DENSE_CELLS = 1 << 22


@dataclass
class _Marginal:
    """Counts of one column set, now and before enforcement, over the cells seen in either."""

    cols: tuple[int, ...]
    weight: float
    constrained: bool  # a QI set within the reporting length: k-anonymity applies
    strides: np.ndarray
    keys: np.ndarray  # sorted cell keys
    now: np.ndarray  # counts now (float: partner tables may be scaled samples)
    target: np.ndarray  # counts before enforcement
    cells: int = 0  # size of the product domain

    def __post_init__(self) -> None:
        self.unseen = self.keys.size  # index of the sentinel cell (never entered)
        self.every_cell = self.keys.size == self.cells  # then a cell's index is its key

    def lookup(self, key: np.ndarray) -> np.ndarray:
        """Index of each key's cell; :attr:`unseen` for a cell seen neither before nor now
        (only in a marginal too large to hold every cell)."""
        if self.every_cell:
            return key
        i = np.searchsorted(self.keys, key)
        i = np.minimum(i, self.keys.size - 1)
        return np.where(self.keys[i] == key, i, self.unseen)


def _strides(sizes: Sequence[int]) -> np.ndarray:
    out = np.ones(len(sizes), dtype=np.int64)
    for i in range(len(sizes) - 2, -1, -1):
        out[i] = out[i + 1] * int(sizes[i + 1])
    return out


def _key(codes: np.ndarray, cols: Sequence[int], strides: np.ndarray) -> np.ndarray:
    key = np.zeros(codes.shape[0], dtype=np.int64)
    for c, s in zip(cols, strides, strict=True):
        key += codes[:, c].astype(np.int64) * s
    return key


def _ranks(ids: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries hold the same id (order = priority)."""
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    new_group = np.empty(ids.size, dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_ids[1:], sorted_ids[:-1], out=new_group[1:])
    position = np.arange(ids.size)
    first = np.maximum.accumulate(np.where(new_group, position, 0))
    out = np.empty(ids.size, dtype=np.int64)
    out[order] = position - first
    return out


def rebalance(
    full: np.ndarray,
    live: np.ndarray,
    before_q: np.ndarray,
    qi: Sequence[int],
    sizes: Sequence[int],
    missing: Sequence[int],
    *,
    k: int,
    reporting_length: int,
    floors: Sequence[np.ndarray],
    profiles: np.ndarray,
    weight_now: np.ndarray,
    weight_before: np.ndarray,
    partners: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
    zero_values: Callable[[np.ndarray, int], np.ndarray] | None,
    rng_uniform: Callable[[int], np.ndarray],
    impossible: Callable[[np.ndarray], np.ndarray] | None = None,
    fresh: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Move QI values of kept records ``live`` of ``full`` (all columns) back toward the table
    before enforcement, keeping k-anonymity; see the module docstring.

    The counts come from the enforcement's own state, so no pass over all records is needed:
    ``profiles`` (distinct QI vectors, by QI position) with their record counts now and before
    enforcement (``weight_before`` may be shorter: profiles only ever get appended), and
    ``partners[(j, c)] = (now, before)``, the ``sizes[j] x sizes[c]`` tables of QI ``j`` with
    another column ``c``, scaled to the live record count. ``before_q``: QI codes before
    enforcement, per record (to find the records enforcement changed); ``fresh``: records of
    ``full`` redrawn from the model (their ``before_q`` is another record's). Returns the rows of
    ``full`` this step changes and their new codes (all columns); ``full`` is left as it is,
    so that the caller can check the result before keeping it."""
    qi = [int(j) for j in qi]
    q = len(qi)
    n = live.size
    if n == 0 or q == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, full.shape[1]), dtype=full.dtype)
    all_sizes = [int(s) for s in sizes]
    q_sizes = [all_sizes[j] for j in qi]
    miss = np.asarray([int(m) for m in missing], dtype=np.int64)  # per QI position

    # candidate records: those enforcement changed plus as many others drawn at random (all
    # records when that is most of them), at most MAX_CANDIDATES
    changed = np.zeros(n, dtype=bool)
    for start in range(0, n, 1 << 20):
        block = live[start:start + (1 << 20)]
        changed[start:start + block.size] = (full[block][:, qi] != before_q[block]).any(axis=1)
    n_changed = int(changed.sum())
    if 2 * n_changed >= n and n <= MAX_CANDIDATES:
        cand = np.arange(n)
    else:
        ch = np.flatnonzero(changed)
        if ch.size > MAX_CANDIDATES // 2:  # a random half-budget of them (rows may be ordered)
            ch = ch[rng_uniform(ch.size) < (MAX_CANDIDATES // 2) / ch.size]
        others = np.flatnonzero(~changed)
        share = min(ch.size, MAX_CANDIDATES - ch.size) / max(others.size, 1)
        cand = np.sort(np.r_[ch, others[rng_uniform(others.size) < share]])
    del changed
    rows = live[cand]
    X = np.array(full[rows], dtype=np.int32)  # keys are computed in int64

    # marginals: QI sets within the reporting length (from the profiles), QI x partner pairs
    marginals: list[_Marginal] = []
    vec = profiles.astype(np.int64)
    u0 = weight_before.size
    for ell in range(1, min(reporting_length, q) + 1):
        w = W_ONE if ell == 1 else W_PAIR if ell == 2 else W_HIGHER
        for pos in itertools.combinations(range(q), ell):
            cols = tuple(qi[p] for p in pos)
            st = _strides([all_sizes[c] for c in cols])
            keys = _key(vec, pos, st)
            marginals.append(_marginal(cols, w, True, st, int(st[0]) * all_sizes[cols[0]],
                                       keys, weight_now, keys[:u0], weight_before))
    for (j, c), (now_table, before_table) in partners.items():
        cols = (j, c)
        st = _strides([all_sizes[j], all_sizes[c]])
        cells = all_sizes[j] * all_sizes[c]
        flat_now, flat_before = now_table.ravel(), before_table.ravel()
        nz_now, nz_before = np.flatnonzero(flat_now > 0), np.flatnonzero(flat_before > 0)
        marginals.append(_marginal(cols, W_PARTNER, False, st, cells, nz_now, flat_now[nz_now],
                                   nz_before, flat_before[nz_before]))
    through = {j: [m for m in marginals if j in m.cols] for j in qi}
    present = X[:, qi] != miss[None, :]
    moved = np.zeros(X.shape[0], dtype=bool)
    if _CellSpace.fits(marginals):  # group moves first, then single values
        space = _CellSpace(marginals, qi, miss, floors, X.shape[1], all_sizes)
        usable = np.ones(rows.size, dtype=bool) if fresh is None else ~fresh[rows]
        _restore_cells(X, before_q[rows].astype(np.int64), usable, present, qi, miss, k,
                       marginals,
                       space, impossible, rng_uniform, moved)
    _local_search(X, present, moved, qi, q_sizes, miss, through, floors, k, zero_values,
                  rng_uniform)
    return rows[moved], X[moved].astype(full.dtype)


def _local_search(X: np.ndarray, present: np.ndarray, moved: np.ndarray, qi: list[int],
                  q_sizes: list[int], miss: np.ndarray, through: dict[int, list[_Marginal]],
                  floors: Sequence[np.ndarray], k: int,
                  zero_values: Callable[[np.ndarray, int], np.ndarray] | None,
                  rng_uniform: Callable[[int], np.ndarray]) -> None:
    """One-value moves, column by column, at most :data:`MAX_ROUNDS` passes (see the module
    docstring); changes ``X``, ``present``, ``moved`` and the marginals' counts."""
    for _ in range(MAX_ROUNDS):
        accepted_total = 0
        for p, j in enumerate(qi):
            size = q_sizes[p]
            best_v = np.full(X.shape[0], -1, dtype=np.int64)
            best_g = np.zeros(X.shape[0])
            chunk = max(1, CHUNK_CELLS // (size + len(through[j])))  # gains + per-set keys
            tables = [_entry_costs(m, k) for m in through[j]]  # counts change only in _accept
            for s0 in range(0, X.shape[0], chunk):
                sl = slice(s0, s0 + chunk)
                idx, g = _gains(X[sl], present[sl], p, j, size, miss, qi, through[j], tables,
                                floors[p], k)
                if zero_values is not None and idx.size:
                    g[zero_values(X[sl][idx], p)] = np.inf
                v = np.argmin(g, axis=1)
                gv = g[np.arange(v.size), v]
                good = gv < -1e-9
                best_v[s0 + idx[good]] = v[good]
                best_g[s0 + idx[good]] = gv[good]
            movers = np.flatnonzero(best_v >= 0)
            if movers.size == 0:
                continue
            # ties broken at random, then by gain
            movers = movers[np.lexsort((rng_uniform(movers.size), best_g[movers]))]
            acc = _accept(movers, best_v[movers], X, present, p, j, qi, through[j], floors[p], k)
            if acc.size == 0:
                continue
            X[acc, j] = best_v[acc]
            present[acc, p] = True
            moved[acc] = True
            accepted_total += acc.size
        if accepted_total == 0:
            return


def _accept(movers: np.ndarray, values: np.ndarray, X: np.ndarray, present: np.ndarray, p: int,
            j: int, qi: list[int], marginals: list[_Marginal], floor: np.ndarray,
            k: int) -> np.ndarray:
    """Accept moves in priority order, a block at a time against the current counts,
    updating them; returns the records moved. Within a block, a mover's counts are those left
    by the movers before it in the same cells (its rank): limits err on the safe side when
    earlier movers are rejected, and gains ignore one mover's old cell being another's new
    one (which only makes them pessimistic: the objective is convex in each count)."""
    taken = []
    block = max(BLOCK, -(-movers.size // MAX_BLOCKS))
    for b0 in range(0, movers.size, block):
        rows, vals = movers[b0:b0 + block], values[b0:b0 + block]
        gain = np.zeros(rows.size)
        ok = np.ones(rows.size, dtype=bool)
        here = present[rows, p]
        cells = []
        for m in marginals:
            base = np.zeros(rows.size, dtype=np.int64)
            others = np.ones(rows.size, dtype=bool)  # the record's other values here present
            for c, st in zip(m.cols, m.strides, strict=True):
                if c != j:
                    base += X[rows, c] * st
                    if m.constrained:
                        others &= present[rows, qi.index(c)]
            sj = m.strides[m.cols.index(j)]
            o = m.lookup(base + X[rows, j] * sj)
            nw = m.lookup(base + vals * sj)
            cells.append((o, nw))
            ok &= (nw != m.unseen) & ((m.now[nw] > 0) | (m.target[nw] > 0))
            a_o = m.now[o] - _ranks(o)
            a_n = m.now[nw] + _ranks(nw)
            t_o, t_n = m.target[o], m.target[nw]
            gain += m.weight * (np.abs(a_o - 1 - t_o) - np.abs(a_o - t_o)
                                + np.abs(a_n + 1 - t_n) - np.abs(a_n - t_n))
            if m.constrained:
                # rank-adjusted counts are lower bounds (earlier movers may be rejected): a
                # combination may empty only when this record is its only one
                ok &= ~(others & here) | (m.now[o] == 1) | (a_o - 1 >= k)
                ok &= ~others | (m.now[nw] >= k)
            if len(m.cols) == 1:
                fl = floor[np.where(here, X[rows, j], 0)]
                ok &= ~here | (fl == 0) | (a_o > fl)
        ok &= gain < -1e-9
        if not ok.any():
            continue
        for m, (o, nw) in zip(marginals, cells, strict=True):
            np.subtract.at(m.now, o[ok], 1)
            np.add.at(m.now, nw[ok], 1)
        taken.append(rows[ok])
    return np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)


def _marginal(cols: tuple[int, ...], weight: float, constrained: bool, strides: np.ndarray,
              cells: int, now_keys: np.ndarray, now_weights: np.ndarray, before_keys: np.ndarray,
              before_weights: np.ndarray) -> _Marginal:
    """Counts now and before (keys may repeat: weights add): over every cell when the domain
    is small (a bincount, no sort), else over the cells seen in either."""
    if cells <= DENSE_CELLS:
        keys = np.arange(cells, dtype=np.int64)
        now = np.bincount(now_keys, weights=now_weights, minlength=cells + 1).astype(np.float64)
        target = np.bincount(before_keys, weights=before_weights,
                             minlength=cells + 1).astype(np.float64)
        return _Marginal(cols, weight, constrained, strides, keys, now, target, cells)
    keys = np.union1d(now_keys, before_keys)
    now = np.zeros(keys.size + 1)  # + the sentinel cell
    np.add.at(now, np.searchsorted(keys, now_keys), now_weights)
    target = np.zeros(keys.size + 1)
    np.add.at(target, np.searchsorted(keys, before_keys), before_weights)
    return _Marginal(cols, weight, constrained, strides, keys, now, target, cells)


def _entry_costs(m: _Marginal, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of ``m``: the objective change of one more record, where the combination's
    k-anonymity limit applies and where it does not (``inf``: not entered). A cell that held
    no record before enforcement and holds none now is never entered: no move creates a
    combination the table before did not have."""
    a, t = m.now, m.target
    free = m.weight * (np.abs(a + 1 - t) - np.abs(a - t))
    free[m.unseen] = np.inf
    free[(a == 0) & (t == 0)] = np.inf
    if not m.constrained:
        return free, free
    limited = free.copy()
    limited[a < k] = np.inf  # entering a combination below k (or absent)
    return limited, free


def _gains(X: np.ndarray, present: np.ndarray, p: int, j: int, size: int, miss: np.ndarray,
           qi: list[int], marginals: list[_Marginal],
           tables: list[tuple[np.ndarray, np.ndarray]], floor: np.ndarray,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """For the records that may leave their value of QI ``j``: their positions, and the
    objective change of moving each to each value (``inf`` where the move is not allowed;
    shape ``(records, size)``). ``tables``: :func:`_entry_costs` of each marginal, so each
    record costs gathers only."""
    m_rows = X.shape[0]
    out_gain = np.zeros(m_rows)
    can_leave = np.ones(m_rows, dtype=bool)
    bases = []
    for m in marginals:
        sj = m.strides[m.cols.index(j)]
        base = np.zeros(m_rows, dtype=np.int64)
        for c, st in zip(m.cols, m.strides, strict=True):
            if c != j:
                base += X[:, c] * st
        old = m.lookup(base + X[:, j] * sj)
        a, t = m.now[old], m.target[old]
        out_gain += m.weight * (np.abs(a - 1 - t) - np.abs(a - t))
        if m.constrained:
            others = _others_present(present, m, j, qi)
            can_leave &= ~(others & present[:, p]) | (a == 1) | (a - 1 >= k)
        if len(m.cols) == 1:
            v = np.where(present[:, p], X[:, j], 0)
            fl = floor[v]
            can_leave &= ~present[:, p] | (fl == 0) | (a > fl)
        bases.append(base)
    rows = np.flatnonzero(can_leave)
    values = np.arange(size, dtype=np.int64)
    gain = np.repeat(out_gain[rows, None], size, axis=1)
    for m, base, (limited, free) in zip(marginals, bases, tables, strict=True):
        sj = m.strides[m.cols.index(j)]
        new = m.lookup(base[rows, None] + values[None, :] * sj)
        g = limited[new]
        if m.constrained:
            others = _others_present(present[rows], m, j, qi)
            if not others.all():  # no combination through a missing value: no limit there
                g = np.where(others[:, None], g, free[new])
        gain += g
    if miss[p] >= 0:
        gain[:, miss[p]] = np.inf
    gain[np.arange(rows.size), X[rows, j]] = np.inf
    return rows, gain


def _others_present(present: np.ndarray, m: _Marginal, j: int, qi: list[int]) -> np.ndarray:
    out = np.ones(present.shape[0], dtype=bool)
    for c in m.cols:
        if c != j:
            out &= present[:, qi.index(c)]
    return out


class _CellSpace:
    """Every marginal's cells, densely, in one array (each marginal's ``now`` and ``target``
    become views of it), so that a group move touching all marginals is evaluated in a few
    vectorised calls instead of one pass per marginal."""

    def __init__(self, marginals: list[_Marginal], qi: list[int], miss: np.ndarray,
                 floors: Sequence[np.ndarray], n_columns: int, all_sizes: list[int]) -> None:
        pos_of = {c: i for i, c in enumerate(qi)}
        spans = [m.cells + 1 for m in marginals]  # + each marginal's sentinel
        self.offsets = np.r_[0, np.cumsum(spans)[:-1]].astype(np.int64)
        total = int(sum(spans))
        self.now = np.zeros(total)
        self.target = np.zeros(total)
        self.weight = np.zeros(total)
        self.check = np.zeros(total, dtype=bool)  # a combination k-anonymity applies to
        self.floor = np.zeros(total)
        width = max(len(m.cols) for m in marginals)
        self.cols = np.full((len(marginals), width), n_columns, dtype=np.int64)  # pad: zeros
        self.strides = np.zeros((len(marginals), width), dtype=np.int64)
        for i, (m, off) in enumerate(zip(marginals, self.offsets, strict=True)):
            span = slice(int(off), int(off) + m.cells + 1)
            if m.keys.size == m.cells:  # already over every cell
                now, target = m.now, m.target
            else:
                now = np.zeros(m.cells + 1)
                target = np.zeros(m.cells + 1)
                now[m.keys] = m.now[:-1]
                target[m.keys] = m.target[:-1]
            self.now[span], self.target[span], self.weight[span] = now, target, m.weight
            m.keys = np.arange(m.cells, dtype=np.int64)
            m.now, m.target = self.now[span], self.target[span]
            m.__post_init__()
            self.cols[i, : len(m.cols)] = m.cols
            self.strides[i, : len(m.cols)] = m.strides
            if m.constrained:
                cell = np.arange(m.cells, dtype=np.int64)
                ok = np.ones(m.cells, dtype=bool)
                for c, st in zip(m.cols, m.strides, strict=True):
                    ok &= (cell // st) % all_sizes[c] != miss[pos_of[c]]
                self.check[int(off): int(off) + m.cells] = ok
                if len(m.cols) == 1:  # protected categories (never the blank)
                    fl = np.array(floors[pos_of[m.cols[0]]], dtype=np.float64)
                    if miss[pos_of[m.cols[0]]] >= 0:
                        fl[miss[pos_of[m.cols[0]]]] = 0.0
                    self.floor[int(off): int(off) + m.cells] = fl

    @staticmethod
    def fits(marginals: list[_Marginal]) -> bool:
        return sum(m.cells + 1 for m in marginals) <= SPACE_CELLS

    def cells_of(self, codes: np.ndarray) -> np.ndarray:
        """Global cell of each record (rows of all columns) in each marginal: ``(m, M)``."""
        padded = np.concatenate([codes, np.zeros((codes.shape[0], 1), dtype=codes.dtype)], axis=1)
        return (padded[:, self.cols] * self.strides[None]).sum(axis=2) + self.offsets[None, :]


def _restore_cells(X: np.ndarray, B: np.ndarray, usable: np.ndarray, present: np.ndarray,
                   qi: list[int], miss: np.ndarray, k: int, marginals: list[_Marginal],
                   space: _CellSpace, impossible: Callable[[np.ndarray], np.ndarray] | None,
                   rng_uniform: Callable[[int], np.ndarray], moved: np.ndarray) -> int:
    """Group moves: refill combinations of 2 to ``reporting_length`` QI values that now hold at
    least k records fewer than before enforcement (most often: emptied, because every record
    of a common pair sat in a rare triple), largest first. For such a combination, the records
    that held it before enforcement (and do not now) propose their most common QI profiles
    before enforcement, :data:`PROFILES_PER_CELL` at most; for each, the k of them that can
    leave their current combinations and were closest to it all take it (see
    :func:`_try_group`). ``usable``: candidates whose QI values before enforcement are their
    own (not a record redrawn from the model in place of another). At most
    :data:`MAX_GROUP_TRIES` tries, each on a pool of at most :data:`GROUP_POOL` x k records.
    Returns the number of groups moved."""
    pos_of = {c: i for i, c in enumerate(qi)}
    lost = []
    for m in marginals:
        if not m.constrained or len(m.cols) < 2:
            continue
        pos = [pos_of[c] for c in m.cols]
        for cell in np.flatnonzero(m.target[:-1] - m.now[:-1] >= k):
            rest, vals = int(cell), []
            for st in m.strides:
                v, rest = divmod(rest, int(st))
                vals.append(v)
            if all(v != miss[p] for v, p in zip(vals, pos, strict=True)):
                lost.append((float(m.target[cell]), tuple(pos), tuple(vals), m, int(cell)))
    lost.sort(key=lambda t: -t[0])
    done = tries = 0
    # per marginal: candidates sorted by their key before enforcement (int32: keys < SPACE_CELLS
    # and rows < MAX_CANDIDATES), the most recently used within HELD_BYTES
    held: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    max_held = max(4, HELD_BYTES // (8 * max(B.shape[0], 1)))
    for _before, pos, vals, m, cell in lost:
        if tries >= MAX_GROUP_TRIES:
            break
        want = np.asarray(vals)[None, :]
        cols = [qi[p] for p in pos]
        if id(m) in held:
            held[id(m)] = held.pop(id(m))
        else:
            if len(held) >= max_held:
                held.pop(next(iter(held)))
            keys = _key(B, list(pos), m.strides).astype(np.int32)
            order = np.argsort(keys, kind="stable").astype(np.int32)
            held[id(m)] = (keys[order], order)
        sorted_keys, order = held[id(m)]
        key = int(m.keys[cell])
        R = order[np.searchsorted(sorted_keys, key):np.searchsorted(sorted_keys, key, "right")]
        R = R[usable[R] & ~moved[R] & ~(X[R][:, cols] == want).all(axis=1)].astype(np.int64)
        if R.size < k:
            continue
        if R.size > GROUP_POOL * k:  # a random pool: the cost of a try is O(|R| x marginals)
            R = R[np.argsort(rng_uniform(R.size))[: GROUP_POOL * k]]
        R = np.sort(R)
        profiles, counts = np.unique(B[R], axis=0, return_counts=True)
        for choice in np.argsort(-counts, kind="stable")[:PROFILES_PER_CELL]:
            if R.size < k or m.target[cell] - m.now[cell] < k:
                break
            prof = profiles[choice].astype(np.int64)
            tries += 1
            if _try_group(X, B, R, prof, present, qi, miss, k, space, impossible, rng_uniform,
                          moved):
                done += 1
                R = R[~moved[R]]
    return done


def _try_group(X: np.ndarray, B: np.ndarray, R: np.ndarray, prof: np.ndarray,
               present: np.ndarray, qi: list[int], miss: np.ndarray, k: int, space: _CellSpace,
               impossible: Callable[[np.ndarray], np.ndarray] | None,
               rng_uniform: Callable[[int], np.ndarray], moved: np.ndarray) -> bool:
    """Move the k records of ``R`` that best fit profile ``prof`` into it, if that is allowed
    and lowers the objective; returns whether it did. Members are the records that can leave
    all their combinations alone (each keeps at least k records) first, then the others, each
    closest first; the group's leaving is then checked as a whole."""
    cur = space.cells_of(X[R])
    slack = np.where(space.check[cur], space.now[cur] - k - 1, np.inf).min(axis=1)
    dist = (B[R] != prof[None, :]).sum(axis=1) + rng_uniform(R.size) * 0.5
    if int((slack >= 0).sum()) < k:  # some member would take a combination below k: in
        return False  # practice the whole-group check then fails too (measured: same result)
    members = R[np.lexsort((dist, slack < 0))[:k]]
    new_rows = X[members].copy()
    new_rows[:, qi] = prof
    if impossible is not None and impossible(new_rows).any():
        return False
    cells = np.r_[space.cells_of(X[members]).ravel(), space.cells_of(new_rows).ravel()]
    uc, inv = np.unique(cells, return_inverse=True)
    steps = np.repeat([-1.0, 1.0], cells.size // 2)
    d = np.bincount(inv.ravel(), weights=steps, minlength=uc.size)
    now, after, target = space.now[uc], space.now[uc] + d, space.target[uc]
    if (space.check[uc] & (after > 0) & (after < k)).any():
        return False
    fl = space.floor[uc]
    if ((fl > 0) & (after < fl) & (d < 0)).any():
        return False
    gain = float((space.weight[uc] * (np.abs(after - target) - np.abs(now - target))).sum())
    if gain >= 0:
        return False
    space.now[uc] = after
    X[members] = new_rows
    present[members] = (prof != miss)[None, :]
    moved[members] = True
    return True


