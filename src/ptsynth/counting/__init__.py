"""The one counting seam: cell keys, the backend protocol and the local numpy backend.

Everything that reads sensitive records for a measurement asks a
:class:`~ptsynth.counting.backend.CountingBackend` for exact counts (see its module docstring);
:func:`as_backend` wraps an in-memory table in the numpy backend.
"""

from __future__ import annotations

from ptsynth.counting.backend import CombinationCounter, CountingBackend, RecordBackend
from ptsynth.counting.keys import cell_codes, cell_key, check_cells, n_cells
from ptsynth.counting.numpy_backend import NumpyBackend, marginal_counts
from ptsynth.table import EncodedTable

__all__ = [
    "CombinationCounter",
    "CountingBackend",
    "NumpyBackend",
    "RecordBackend",
    "as_backend",
    "cell_codes",
    "cell_key",
    "check_cells",
    "marginal_counts",
    "n_cells",
]


def as_backend(data: CountingBackend | EncodedTable) -> CountingBackend:
    """A counting backend for ``data``: an encoded table is counted locally with numpy."""
    if isinstance(data, EncodedTable):
        return NumpyBackend(data)
    if isinstance(data, CountingBackend):
        return data
    raise TypeError("expected an EncodedTable or a CountingBackend")
