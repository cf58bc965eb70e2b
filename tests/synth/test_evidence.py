"""Evidence propagation on a fitted junction tree equals brute-force sums of the joint."""

from __future__ import annotations

import numpy as np
import pytest

from ptsynth.privacy import Accountant, seeded_random
from ptsynth.synth.graphical.evidence import EvidencePropagation
from ptsynth.synth.pgm import PGMSynthesizer
from synthetic_tables import make_table


@pytest.fixture(scope="module")
def model():
    table = make_table(3000, 7, seed=1)
    synth = PGMSynthesizer(rounds=5, iters=20, final_iters=40)
    synth.fit(table, Accountant(1.0, 1e-6, rng=seeded_random(0)))
    assert len(synth.model_.tree.cliques) > 1  # a tree, not one clique
    return synth.model_


def _weighted_joint(model, variables, weights):
    joint = model.marginals.marginal(variables)
    for axis, v in enumerate(variables):
        if v in weights:
            shape = [1] * len(variables)
            shape[axis] = -1
            joint = joint * weights[v].reshape(shape)
    return joint


def test_selection_mass_and_every_columns_split_match_the_joint(model) -> None:
    d = len(model.tree.sizes)
    engine = EvidencePropagation(model.tree, model.probs)
    rng = np.random.default_rng(0)
    for _ in range(25):
        chosen = sorted(rng.choice(d, size=int(rng.integers(1, 5)), replace=False).tolist())
        weights = {v: rng.random(model.tree.sizes[v]) * (rng.random(model.tree.sizes[v]) < 0.7)
                   for v in chosen}
        total, split = engine.run(weights, targets=list(range(d)))
        assert total == pytest.approx(_weighted_joint(model, chosen, weights).sum(), abs=1e-12)
        for t in range(d):
            variables = sorted(set(chosen) | {t})
            joint = _weighted_joint(model, variables, weights)
            axes = tuple(a for a, v in enumerate(variables) if v != t)
            np.testing.assert_allclose(split[t], joint.sum(axis=axes), atol=1e-12)


def test_no_evidence_gives_probability_one(model) -> None:
    total, split = EvidencePropagation(model.tree, model.probs).run({}, targets=[0])
    assert total == pytest.approx(1.0)
    np.testing.assert_allclose(split[0], model.marginals.marginal([0]), atol=1e-12)


def test_weights_of_the_wrong_length_are_refused(model) -> None:
    with pytest.raises(ValueError, match="entries"):
        EvidencePropagation(model.tree, model.probs).run({0: np.ones(99)})
