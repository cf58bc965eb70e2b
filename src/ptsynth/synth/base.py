"""The synthesizer protocol: fit through the accountant, sample from the fitted model.

Why this shape: a synthesizer may only learn from the data through measurements made by an
:class:`~ptsynth.privacy.Accountant` (which checks and records every spend). After ``fit``
it holds post-processed noisy values only, so ``sample`` can be called any number of times
without further privacy cost.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ptsynth.privacy import Accountant, RandomSource
from ptsynth.table import EncodedTable


@runtime_checkable
class Synthesizer(Protocol):
    #: Short name used by ``--synthesizer`` and in the manifest.
    name: str

    def fit(self, table: EncodedTable, accountant: Accountant) -> Synthesizer:
        """Measure ``table`` through ``accountant`` only, and fit the model on those measurements."""
        ...

    def sample(self, n_records: int, rng: RandomSource) -> EncodedTable:
        """Draw ``n_records`` synthetic records (same public domains as the training table)."""
        ...
