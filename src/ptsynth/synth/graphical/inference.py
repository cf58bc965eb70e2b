"""Exact sum-product inference on a junction tree, in log space.

Why log space: potentials learnt by mirror descent can span hundreds of nats, and products of
probabilities along a tree underflow in linear space. Every message is a max-shifted
log-sum-exp over the clique axes not in the separator; because clique and separator variables
are both kept sorted, a separator table broadcasts into a clique by a plain reshape (no
transposes), so one calibration is a handful of ``exp``/``sum`` passes over each clique table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ptsynth.synth.graphical.junction_tree import Clique, JunctionTree


def logsumexp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``log(sum(exp(x)))`` over ``axes`` with ``keepdims``; safe for all ``-inf`` slices."""
    if not axes:
        return x
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m


def broadcast_shape(sub: Sequence[int], full: Sequence[int], sizes: Sequence[int]) -> tuple[int, ...]:
    """Shape that broadcasts a table over sorted ``sub`` into one over sorted ``full``."""
    subset = set(sub)
    return tuple(sizes[v] if v in subset else 1 for v in full)


def reduce_axes(full: Sequence[int], keep: Sequence[int]) -> tuple[int, ...]:
    keep_set = set(keep)
    return tuple(i for i, v in enumerate(full) if v not in keep_set)


class BeliefPropagation:
    """Calibrates a fixed junction tree; precomputes every axis list and reshape once."""

    def __init__(self, tree: JunctionTree) -> None:
        self.tree = tree
        self.children = tree.children()
        sizes = tree.sizes
        self._sum_axes: list[tuple[int, ...]] = []  # child axes summed in the up message
        self._in_parent: list[tuple[int, ...]] = []  # separator shape inside the parent
        self._in_child: list[tuple[int, ...]] = []  # separator shape inside the child
        self._parent_axes: list[tuple[int, ...]] = []  # parent axes summed in the down message
        for c, p in enumerate(tree.parent):
            sep = tree.separators[c]
            cl = tree.cliques[c]
            self._sum_axes.append(reduce_axes(cl, sep))
            self._in_child.append(broadcast_shape(sep, cl, sizes))
            if p >= 0:
                pc = tree.cliques[p]
                self._in_parent.append(broadcast_shape(sep, pc, sizes))
                self._parent_axes.append(reduce_axes(pc, sep))
            else:
                self._in_parent.append(())
                self._parent_axes.append(())

    def probabilities(self, log_potentials: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Normalised probability table of every maximal clique.

        Runs in linear space on max-shifted potentials (one ``exp`` per clique; every message
        rescaled to max 1, and each belief normalised on its own, so the scale of a message
        never matters). Falls back to the log-space :meth:`calibrate` if a table underflows.
        """
        tree = self.tree
        acc = []
        for p in log_potentials:
            top = np.max(p)
            acc.append(np.exp(p - top) if np.isfinite(top) else np.zeros_like(p))
        up: list[np.ndarray | None] = [None] * len(acc)
        for c in reversed(tree.order):
            p = tree.parent[c]
            if p < 0:
                continue
            axes = self._sum_axes[c]
            msg = acc[c].sum(axis=axes, keepdims=True) if axes else acc[c]
            top = msg.max()
            if not top > 0 or not np.isfinite(top):
                return [np.exp(b) for b in self.calibrate(log_potentials)]
            msg = msg / top
            up[c] = msg
            acc[p] = acc[p] * msg.reshape(self._in_parent[c])
        beliefs: list[np.ndarray] = [np.empty(0)] * len(acc)
        root = tree.root
        beliefs[root] = acc[root]
        for c in tree.order[1:]:
            p = tree.parent[c]
            msg_up = up[c].reshape(self._in_parent[c])  # type: ignore[union-attr]
            ratio = np.divide(beliefs[p], msg_up, out=np.zeros_like(beliefs[p]), where=msg_up > 0)
            axes = self._parent_axes[c]
            down = ratio.sum(axis=axes, keepdims=True) if axes else ratio
            top = down.max()
            if not top > 0 or not np.isfinite(top):
                return [np.exp(b) for b in self.calibrate(log_potentials)]
            beliefs[c] = acc[c] * (down / top).reshape(self._in_child[c])
        out = []
        for b in beliefs:
            total = b.sum()
            if not total > 0 or not np.isfinite(total):
                return [np.exp(x) for x in self.calibrate(log_potentials)]
            out.append(b / total)
        return out

    def calibrate(self, log_potentials: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Normalised log-marginals of every maximal clique (each ``logsumexp`` is 0)."""
        tree = self.tree
        acc = [np.array(p, dtype=np.float64, copy=True) for p in log_potentials]
        up: list[np.ndarray | None] = [None] * len(acc)
        for c in reversed(tree.order):
            p = tree.parent[c]
            if p < 0:
                continue
            msg = logsumexp(acc[c], self._sum_axes[c])
            up[c] = msg
            acc[p] = acc[p] + msg.reshape(self._in_parent[c])
        beliefs: list[np.ndarray] = [np.empty(0)] * len(acc)
        root = tree.root
        beliefs[root] = acc[root]
        for c in tree.order[1:]:
            p = tree.parent[c]
            with np.errstate(invalid="ignore"):  # -inf - -inf: a known-zero separator cell
                ratio = beliefs[p] - up[c].reshape(self._in_parent[c])  # type: ignore[union-attr]
            ratio[np.isnan(ratio)] = -np.inf
            down = logsumexp(ratio, self._parent_axes[c])
            beliefs[c] = acc[c] + down.reshape(self._in_child[c])
        log_z = float(logsumexp(beliefs[root], tuple(range(beliefs[root].ndim))).reshape(()))
        return [b - log_z for b in beliefs]


def project_table(table: np.ndarray, full: Clique, keep: Sequence[int]) -> np.ndarray:
    """Sum a table over sorted ``full`` down to sorted ``keep`` (a subset)."""
    axes = reduce_axes(full, keep)
    return table.sum(axis=axes) if axes else table


class CliqueMarginals:
    """Probability tables of a calibrated tree, with marginals of arbitrary column sets.

    A set inside one maximal clique is a plain sum. A set spread over several cliques is
    computed exactly by variable elimination on the smallest subtree that covers it, using the
    junction-tree factorisation p = p(top) * prod_c p(C_c | S_c).
    """

    def __init__(self, tree: JunctionTree, probs: Sequence[np.ndarray]) -> None:
        self.tree = tree
        self.probs = list(probs)
        self._cond: list[np.ndarray | None] = [None] * len(self.probs)
        self._depth = [0] * len(self.probs)
        for c in tree.order[1:]:
            self._depth[c] = self._depth[tree.parent[c]] + 1
        self._home: dict[int, int] = {}
        for v in range(len(tree.sizes)):
            self._home[v] = tree.containing((v,))  # type: ignore[assignment]
        self._cache: dict[Clique, np.ndarray] = {}
        self._reduced: dict[tuple[int, bool, Clique], np.ndarray] = {}

    def conditional(self, c: int) -> np.ndarray:
        """p(C_c \\ S_c | S_c) as a table over the clique (rows with zero mass → uniform)."""
        cond = self._cond[c]
        if cond is None:
            tree = self.tree
            sep = tree.separators[c]
            prob = self.probs[c]
            axes = reduce_axes(tree.cliques[c], sep)
            denom = prob.sum(axis=axes, keepdims=True)
            n_new = int(np.prod([prob.shape[a] for a in axes], dtype=np.int64))
            with np.errstate(invalid="ignore", divide="ignore"):
                cond = np.where(denom > 0, prob / np.where(denom > 0, denom, 1.0), 1.0 / n_new)
            self._cond[c] = cond
        return cond

    def marginal(self, variables: Sequence[int]) -> np.ndarray:
        """Probability table over ``variables`` (axes in the given order)."""
        key = tuple(sorted(set(variables)))
        if key not in self._cache:
            self._cache[key] = self._marginal_sorted(key)
        table = self._cache[key]
        order = [key.index(v) for v in variables]
        return np.transpose(table, order) if order != sorted(order) else table

    def _marginal_sorted(self, key: Clique) -> np.ndarray:
        tree = self.tree
        c = tree.containing(key)
        if c is not None:
            return project_table(self.probs[c], tree.cliques[c], key)
        # Steiner subtree: union of the paths from each variable's home clique to their meet.
        nodes: set[int] = set()
        homes = [self._home[v] for v in key]
        top = homes[0]
        for h in homes[1:]:
            a, b = top, h
            while a != b:
                if self._depth[a] >= self._depth[b]:
                    nodes.add(a)
                    a = tree.parent[a]
                else:
                    nodes.add(b)
                    b = tree.parent[b]
            top = a
        for h in homes:
            a = h
            while a != top:
                nodes.add(a)
                a = tree.parent[a]
        nodes.add(top)
        want = set(key)
        kids_of: dict[int, list[int]] = {}
        for x in nodes:
            if x != top:
                kids_of.setdefault(tree.parent[x], []).append(x)
        # Eliminate bottom-up: each node passes up a factor over (separator ∪ wanted vars seen).
        msgs: dict[int, tuple[Clique, np.ndarray]] = {}
        depth = self._depth
        for n in sorted(nodes, key=lambda x: -depth[x]):
            table = self.probs[n] if n == top else self.conditional(n)
            vars_n: Clique = tree.cliques[n]
            keep = want if n == top else want.union(tree.separators[n])
            kids = kids_of.get(n, ())
            # Sum the clique table down to what the children's messages and the parent need
            # *before* multiplying: the product then stays small.
            needed = set(keep)
            for ch in kids:
                needed.update(msgs[ch][0])
            union = needed.intersection(vars_n)
            if len(union) < len(vars_n):
                drop = tuple(i for i, v in enumerate(vars_n) if v not in needed)
                ckey = (n, n == top, tuple(sorted(needed)))
                reduced = self._reduced.get(ckey)
                if reduced is None:
                    reduced = self._reduced[ckey] = table.sum(axis=drop)
                table = reduced
                vars_n = tuple(v for v in vars_n if v in needed)
            operands: list[tuple[Clique, np.ndarray]] = [(vars_n, table)]
            for ch in kids:
                msg = msgs.pop(ch)
                operands.append(msg)
                union.update(msg[0])
            kept = tuple(sorted(union & keep))
            msgs[n] = (kept, _contract(operands, kept))
        vars_t, table = msgs[top]
        order = [vars_t.index(v) for v in key]
        return np.transpose(table, order)


def _contract(operands: list[tuple[Clique, np.ndarray]], out: Clique) -> np.ndarray:
    """Sum of the product of tables over all variables not in ``out``.

    Pairwise, in a greedy order (:func:`_greedy_path`), each pair as one batched matrix
    product (BLAS), so a sum over a separator never materialises the separator-by-output
    product table. The plan (path, axis permutations, reshapes) depends only on the public
    structure (variable indices and table shapes) and recurs across candidates and rounds, so
    it is built once and memoised: executing it is a handful of numpy calls, where ``einsum``
    re-plans (parses and validates the path) on every call.
    """
    if len(operands) == 1 and operands[0][0] == out:
        return operands[0][1]
    # Plans are positional (axes, permutations, reshapes), so they are keyed on the variables
    # relabelled in order of appearance: candidates of the same shape share one plan. The
    # structure as given is looked up first (it recurs across rounds; relabelling costs more).
    shapes = tuple(t.shape for _, t in operands)
    raw = (tuple(v for v, _ in operands), shapes, out)
    plan = _RAW_PLANS.get(raw)
    if plan is None:
        label: dict[int, int] = {}
        canon = tuple(tuple(label.setdefault(v, len(label)) for v in vs) for vs, _ in operands)
        canon_out = tuple(label[v] for v in out)
        key = (canon, shapes, canon_out)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _plan([(c, t) for c, (_, t) in zip(canon, operands, strict=True)], canon_out)
            if len(_PLANS) < _MAX_PLANS:
                _PLANS[key] = plan
        if len(_RAW_PLANS) < _MAX_PLANS:
            _RAW_PLANS[raw] = plan
    tables = [t for _, t in operands]
    for step in plan.steps:
        taken = [tables[k] for k in step.positions]
        tables = [t for k, t in enumerate(tables) if k not in step.positions]
        tables.append(step.run(taken))
    result = tables[0]
    if plan.final_sum:
        result = result.sum(axis=plan.final_sum)
    return np.transpose(result, plan.final_order) if plan.final_order is not None else result


class _PairStep:
    """Contract two tables: sum axes only one side holds, then one batched matmul."""

    def __init__(self, va: Clique, vb: Clique, keep: set[int], sizes: dict[int, int]) -> None:
        sa, sb = set(va), set(vb)
        self.drop_a = tuple(i for i, v in enumerate(va) if v not in sb and v not in keep)
        self.drop_b = tuple(i for i, v in enumerate(vb) if v not in sa and v not in keep)
        a = [v for v in va if v in sb or v in keep]
        b = [v for v in vb if v in sa or v in keep]
        batch = [v for v in a if v in sb and v in keep]
        contract = [v for v in a if v in sb and v not in keep]
        only_a = [v for v in a if v not in sb]
        only_b = [v for v in b if v not in sa]
        pos_a = {v: i for i, v in enumerate(a)}
        pos_b = {v: i for i, v in enumerate(b)}
        self.perm_a = tuple(pos_a[v] for v in batch + only_a + contract)
        self.perm_b = tuple(pos_b[v] for v in batch + contract + only_b)

        def size(vs: list[int]) -> int:
            return math.prod(sizes[v] for v in vs)

        self.shape_a = (size(batch), size(only_a), size(contract))
        self.shape_b = (size(batch), size(contract), size(only_b))
        self.out_vars: Clique = tuple(batch + only_a + only_b)
        self.out_shape = tuple(sizes[v] for v in self.out_vars)

    def run(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.drop_a:
            a = a.sum(axis=self.drop_a)
        if self.drop_b:
            b = b.sum(axis=self.drop_b)
        a = np.transpose(a, self.perm_a).reshape(self.shape_a)
        b = np.transpose(b, self.perm_b).reshape(self.shape_b)
        return np.matmul(a, b).reshape(self.out_shape)


class _Step:
    """One contraction of numpy's path: its tables (folded pairwise), or a sum of one table."""

    def __init__(self, positions: tuple[int, ...], fold: list[_PairStep], vars_: Clique,
                 keep: set[int]) -> None:
        self.positions, self.fold = positions, fold
        self.out_vars: Clique = tuple(v for v in vars_ if v in keep) if not fold else vars_
        self.sum_axes = tuple(i for i, v in enumerate(vars_) if v not in keep) if not fold else ()

    def run(self, tables: list[np.ndarray]) -> np.ndarray:
        if not self.fold:
            return tables[0].sum(axis=self.sum_axes) if self.sum_axes else tables[0]
        out = tables[0]
        for step, other in zip(self.fold, tables[1:], strict=True):
            out = step.run(out, other)
        return out


class _Plan:
    def __init__(self, steps: list[_PairStep], final_sum: tuple[int, ...],
                 final_order: tuple[int, ...] | None) -> None:
        self.steps, self.final_sum, self.final_order = steps, final_sum, final_order


def _plan(operands: list[tuple[Clique, np.ndarray]], out: Clique) -> _Plan:
    sizes: dict[int, int] = {}
    for v, t in operands:
        sizes.update(zip(v, t.shape, strict=True))
    steps: list[_Step] = []
    vars_list = [tuple(v) for v, _ in operands]
    if len(operands) > 1:
        path = _greedy_path(vars_list, sizes, out)
        for contraction in path:
            idx = sorted(contraction)
            taken = [vars_list[k] for k in idx]
            rest = [vars_list[k] for k in range(len(vars_list)) if k not in idx]
            keep = set(out).union(*[set(v) for v in rest])
            fold: list[_PairStep] = []
            current = taken[0]
            for k, other in enumerate(taken[1:], start=1):
                later = set().union(*[set(v) for v in taken[k + 1:]])
                step = _PairStep(current, other, keep | later, sizes)
                fold.append(step)
                current = step.out_vars
            steps.append(_Step(tuple(idx), fold, current, keep))
            vars_list = rest + [steps[-1].out_vars]
    final = vars_list[0]
    final_sum = tuple(i for i, v in enumerate(final) if v not in out)
    kept = [v for v in final if v in out]
    order = tuple(kept.index(v) for v in out)
    return _Plan(steps, final_sum, order if order != tuple(range(len(order))) else None)


def _greedy_path(vars_list: list[Clique], sizes: dict[int, int], out: Clique
                 ) -> list[tuple[int, int]]:
    """Pairwise contraction order: always the pair whose result (the variables still needed
    by the output or another table) has the fewest cells; ties by position. What numpy's
    ``optimize="greedy"`` does for the few tables of a junction-tree message, without its
    per-call parsing, which cost more than the contractions themselves."""
    tables = [set(v) for v in vars_list]
    path: list[tuple[int, int]] = []
    while len(tables) > 1:
        best: tuple[int, int, int] | None = None
        for i in range(len(tables)):
            for j in range(i + 1, len(tables)):
                needed = set(out).union(*(t for k, t in enumerate(tables) if k != i and k != j))
                cells = math.prod(sizes[v] for v in (tables[i] | tables[j]) & needed)
                if best is None or cells < best[0]:
                    best = (cells, i, j)
        assert best is not None
        _, i, j = best
        path.append((i, j))
        merged = tables[i] | tables[j]
        tables = [t for k, t in enumerate(tables) if k not in (i, j)] + [merged]
    return path


_PLANS: dict[tuple, _Plan] = {}
_RAW_PLANS: dict[tuple, _Plan] = {}
_MAX_PLANS = 200_000
