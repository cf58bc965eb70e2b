"""Probability of a selection under a calibrated junction-tree model (evidence propagation).

Why: a count query ("women, labour, country X or Y, 2019") is the model's probability of a
*selection*: per column a weight over its codes (1 for a selected value, 0 otherwise),
multiplied together. ``GraphicalModel.project`` answers it only by materialising the joint
marginal of every column involved, which grows with the product of their domain sizes; Hugin
propagation with the weights as evidence costs a few passes over the clique tables whatever the
number of columns. A two-pass run also gives, for every column at once, the selection's mass
split by that column's codes (a bar chart of every column under a filter).

The same algorithm runs in the showcase page (``ptsynth/showcase/assets/showcase.js``), so the
page and :func:`ptsynth.query.count` give the same numbers.

Everything here is post-processing of a published model: no data is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ptsynth.synth.graphical.inference import broadcast_shape, reduce_axes
from ptsynth.synth.graphical.junction_tree import JunctionTree


class EvidencePropagation:
    """Hugin propagation of per-variable weights on a calibrated tree of clique probabilities.

    ``probs[i]`` is the normalised probability table of ``tree.cliques[i]`` (axes in the
    clique's sorted variable order), as :class:`~ptsynth.synth.graphical.estimation.GraphicalModel`
    holds them. A variable's weight is applied once, in the smallest clique holding it.
    """

    def __init__(self, tree: JunctionTree, probs: Sequence[np.ndarray]) -> None:
        self.tree = tree
        self.probs = [np.asarray(p, dtype=np.float64) for p in probs]
        sizes = tree.sizes
        self.home = [tree.containing((v,)) for v in range(len(sizes))]
        self._sum_axes = [reduce_axes(c, s) for c, s in zip(tree.cliques, tree.separators, strict=True)]
        self._in_parent: list[tuple[int, ...]] = []
        self._parent_axes: list[tuple[int, ...]] = []
        self._in_child: list[tuple[int, ...]] = []
        self._sep_prob: list[np.ndarray] = []
        for c, p in enumerate(tree.parent):
            sep = tree.separators[c]
            cl = tree.cliques[c]
            self._in_child.append(broadcast_shape(sep, cl, sizes))
            if p >= 0:
                self._in_parent.append(broadcast_shape(sep, tree.cliques[p], sizes))
                self._parent_axes.append(reduce_axes(tree.cliques[p], sep))
            else:
                self._in_parent.append(())
                self._parent_axes.append(())
            axes = self._sum_axes[c]
            self._sep_prob.append(self.probs[c].sum(axis=axes, keepdims=True) if axes
                                  else self.probs[c])

    def _weighted(self, evidence: Mapping[int, np.ndarray]) -> list[np.ndarray]:
        tree = self.tree
        psi = [p.copy() for p in self.probs]
        for v, w in evidence.items():
            w = np.asarray(w, dtype=np.float64)
            if w.shape != (tree.sizes[v],):
                raise ValueError(f"weights of variable {v} must have {tree.sizes[v]} entries")
            i = self.home[v]
            psi[i] *= w.reshape(broadcast_shape((v,), tree.cliques[i], tree.sizes))
        return psi

    def run(
        self, evidence: Mapping[int, np.ndarray], targets: Sequence[int] = ()
    ) -> tuple[float, dict[int, np.ndarray]]:
        """``(P(E), {t: P(t = x, E) for every code x})`` with ``E`` the weighted selection.

        The result for a target ``t`` includes ``t``'s own weights, if it has any.
        """
        tree = self.tree
        psi = self._weighted(evidence)
        up: list[np.ndarray | None] = [None] * len(psi)
        for c in reversed(tree.order):  # collect: children before parents
            p = tree.parent[c]
            if p < 0:
                continue
            axes = self._sum_axes[c]
            msg = psi[c].sum(axis=axes, keepdims=True) if axes else psi[c]
            up[c] = msg
            sep = self._sep_prob[c]
            ratio = np.divide(msg, sep, out=np.zeros_like(msg), where=sep > 0)
            psi[p] = psi[p] * ratio.reshape(self._in_parent[c])
        total = float(psi[tree.root].sum())
        if not targets:
            return total, {}
        needed = {self.home[t] for t in targets}
        # distribute only along the paths from the root to the cliques the targets live in
        on_path: set[int] = set()
        for i in needed:
            while i is not None and i >= 0 and i not in on_path:
                on_path.add(i)
                i = tree.parent[i]
        for c in tree.order[1:]:
            if c not in on_path:
                continue
            p = tree.parent[c]
            axes = self._parent_axes[c]
            down = psi[p].sum(axis=axes, keepdims=True) if axes else psi[p]
            down = down.reshape(self._in_child[c])
            u = up[c].reshape(self._in_child[c])  # type: ignore[union-attr]
            psi[c] = psi[c] * np.divide(down, u, out=np.zeros_like(down), where=u > 0)
        out = {}
        for t in targets:
            i = self.home[t]
            cl = tree.cliques[i]
            axes = tuple(a for a, v in enumerate(cl) if v != t)
            out[t] = psi[i].sum(axis=axes) if axes else psi[i].copy()
        return total, out
