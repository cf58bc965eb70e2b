"""Graphical-model building blocks for :mod:`ptsynth.synth.pgm` (no data access here).

* :mod:`.junction_tree`: batched min-fill / min-weight triangulation, junction trees, model size.
* :mod:`.inference`: log-space belief propagation, marginals of arbitrary column sets.
* :mod:`.estimation`: noisy measurements and the mirror-descent estimator (private-pgm).
* :mod:`.selection`: AIM candidate sets, workload weights and scores.
* :mod:`.sampling`: generation conditioned on the junction tree's maximal cliques.
* :mod:`.compression`: MST-style merging of rare values.
"""
