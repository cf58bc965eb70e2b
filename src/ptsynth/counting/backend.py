"""The counting seam: the only way measurements read sensitive records.

Why a protocol: a synthesizer or the aggregate release needs a handful of *kinds* of exact
counts, never the records themselves: marginals of column sets, counts of attribute
combinations (with a per-person contribution bound), the record count and how many attributes
each record holds. Asking a backend for exactly these lets the same measurement code run on an
in-memory table (:class:`~ptsynth.counting.numpy_backend.NumpyBackend`) or where the data lie
(a Spark cluster), with only counts travelling back and noise drawn once, through the
:class:`~ptsynth.privacy.Accountant`.

Every count a backend returns is **private**: callers hand it straight to a mechanism (or to the
private evaluation), never to an output.

Conventions shared by every backend (and checked by its tests):

* ``marginals`` returns dense int64 arrays of shape ``[domains[c].size for c in set]`` (missing
  is the last code of a column that allows it), column axes in the order given.
* A combination is a tuple of ``(column, code)`` attributes on distinct columns with ``code``
  not the column's missing code ("absent", as in Synthetic Data Showcase); a record holds it
  when it has every one of those values.
* ``recoded`` maps each column's codes through a public array (e.g. a graphical model's merged
  rare values) and counts in the new codes; the maps must be data-independent or DP outputs.
* ``combination_counter(m, rng)`` bounds each record's contribution: a record holding more than
  ``m`` present attributes keeps ``m`` of them chosen at random, so the vector of all length-ℓ
  combination counts has L2 sensitivity ``sqrt(C(m, ℓ))`` under add/remove of one record.
  "At random" is a keyed PRF of the record's content and occurrence index, the key drawn
  from ``rng`` (:mod:`ptsynth.counting.prf`): the choice is a deterministic transformation
  of each record, so the sensitivity holds for every key, and every backend makes the same
  choice whatever order it holds the records in.
* ``marginals`` may be asked for thousands of column sets at once: a backend counts them in
  as few passes as it can (the numpy backend through
  :class:`~ptsynth.counting.blocks.BlockCounter`, Spark in one job).
* :class:`RecordBackend` adds ``split(fraction, key)`` and ``sample_table(max_records, key)``,
  which choose records by the same
  keyed PRF (the holdout of the private evaluation; the evaluation sample of a very large
  table). ``sample_table`` is the only call that returns records: it serves the private
  evaluation, never a measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.privacy import RandomSource
    from ptsynth.table import ColumnDomain, EncodedTable


@runtime_checkable
class CombinationCounter(Protocol):
    """Exact counts of attribute combinations, each record's contribution already bounded."""

    def combination_counts(self, columns: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """Counts of the combinations whose ``(N, ℓ)`` column indices (ascending per row) and
        codes are given, and the number of distinct column sets among them."""
        ...


@runtime_checkable
class CountingBackend(Protocol):
    """Exact counts over the encoded records of one dataset (see the module docstring)."""

    #: Short name, e.g. ``"numpy"`` or ``"spark"``.
    name: str
    #: Public domains of the encoded columns, in column order.
    domains: tuple[ColumnDomain, ...]

    def record_count(self) -> int:
        """Number of records (persons)."""
        ...

    def marginals(self, column_sets: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Dense count arrays, one per column set (an empty set gives the record count, 0-d)."""
        ...

    def present_attribute_histogram(self) -> np.ndarray:
        """``h[a]`` = number of records holding exactly ``a`` present attributes, a = 0..d."""
        ...

    def recoded(
        self, maps: Sequence[np.ndarray], domains: Sequence[ColumnDomain]
    ) -> CountingBackend:
        """The same records with column j's codes mapped through ``maps[j]`` into ``domains[j]``."""
        ...

    def combination_counter(
        self, max_attributes: int | None, rng: RandomSource | None
    ) -> CombinationCounter:
        """Combination counts with each record cut to at most ``max_attributes`` present
        attributes (``None``: no cut, and ``rng`` may be ``None``)."""
        ...


@runtime_checkable
class RecordBackend(CountingBackend, Protocol):
    """A counting backend that also holds the records of a release (the pipeline's view): it
    can hold some out and hand a sample to the private evaluation. Synthesizers only ever see
    the :class:`CountingBackend` part."""

    def split(
        self, fraction: float, key: tuple[int, int]
    ) -> tuple[RecordBackend, RecordBackend | None]:
        """``(kept, holdout)``: a record is held out iff its keyed PRF value is below
        ``fraction``."""
        ...

    def sample_table(self, max_records: int, key: tuple[int, int]) -> EncodedTable:
        """At most ``max_records`` records (the smallest keyed PRF values), for the private
        evaluation only."""
        ...
