"""The encoded table: the one in-memory form every step after ingest works on.

Why a type of its own: ingest turns heterogeneous case records (strings, dates, numbers,
multi-valued cells) into a dense matrix of small integer codes over *public* domains. Counting,
noise, synthesis and evaluation then work on integer arithmetic only, and never need to know
where a code came from. The domains (labels) are public by construction: they come from the
schema, never from the data, so passing them around costs no privacy budget.

Conventions
-----------
* ``codes`` has shape ``(n_records, n_columns)`` and an unsigned/signed integer dtype.
  Column ``j`` takes values in ``0 .. domains[j].size - 1``.
* A column that may be missing reserves its **last** code for "missing"
  (``missing_code == len(labels)``). Missing is a category like any other for counting and
  for graphical models; aggregate (SDS-style) releases treat it as "attribute absent".
* A multi-valued set column (e.g. ``meansOfControl = "debt;threats"``) is expanded into one
  binary member column per public value, named ``"<source>=<value>"``, with labels ``("1",)``
  and the missing code meaning "not present". This is how Synthetic Data Showcase represents
  them, and it keeps every downstream step categorical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Column kinds the schema knows. ``set_member`` is produced by expanding a ``set`` column.
COLUMN_KINDS = ("categorical", "ordinal", "numeric", "date", "set_member")


@dataclass(frozen=True)
class ColumnDomain:
    """Public description of one encoded column.

    Attributes:
        name: encoded column name (``"<source>=<value>"`` for set members).
        labels: public label of each non-missing code, in code order.
        source: the input column it came from (equal to ``name`` except for set members).
        kind: one of :data:`COLUMN_KINDS`.
        allows_missing: whether the last code stands for "missing / absent".
        quasi_identifier: declared by the schema as a quasi-identifier (k-anonymity, risk).
        sensitive: declared as a sensitive attribute (l-diversity, t-closeness, inference).
    """

    name: str
    labels: tuple[str, ...]
    source: str = ""
    kind: str = "categorical"
    allows_missing: bool = True
    quasi_identifier: bool = False
    sensitive: bool = False

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", self.name)
        if self.kind not in COLUMN_KINDS:
            raise ValueError(f"column {self.name!r}: unknown kind {self.kind!r}")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"column {self.name!r}: duplicate labels in domain")

    @property
    def missing_code(self) -> int | None:
        """Code of "missing", or ``None`` when the column never misses."""
        return len(self.labels) if self.allows_missing else None

    @property
    def size(self) -> int:
        """Number of codes, missing included."""
        return len(self.labels) + (1 if self.allows_missing else 0)

    def label(self, code: int) -> str | None:
        """Label of a code; ``None`` for missing."""
        if code == self.missing_code:
            return None
        return self.labels[code]


@dataclass(frozen=True)
class IngestSummary:
    """Private facts about how a table was read (for the steward's terminal and the private
    report only, never a public file): input rows, records after the per-person merge, rows
    that had no subject id (each of which is its own privacy unit), and per column how many rows
    held a value outside the declared domain and what it became (``{"rows", "policy"}``)."""

    input_rows: int
    records: int
    rows_without_id: int
    outside_domain: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def outside_domain_lines(self) -> list[str]:
        """One line per recoded column, for the steward's terminal."""
        return [
            f"column {name!r}: {v['rows']} row(s) held a value outside the declared domain "
            f"({v['policy']})"
            for name, v in self.outside_domain.items()
        ]


@dataclass(frozen=True)
class EncodedTable:
    """Integer-coded records over public domains. See the module docstring."""

    codes: np.ndarray
    domains: tuple[ColumnDomain, ...]
    #: How the records were read (private; set by ingest, dropped by derived tables).
    summary: IngestSummary | None = field(default=None, repr=False, compare=False)
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = np.asarray(self.codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.domains):
            raise ValueError(
                f"codes must have shape (n, {len(self.domains)}), got {codes.shape}"
            )
        if not np.issubdtype(codes.dtype, np.integer):
            raise TypeError("codes must be integers")
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "domains", tuple(self.domains))
        index = {d.name: j for j, d in enumerate(self.domains)}
        if len(index) != len(self.domains):
            raise ValueError("duplicate column names")
        object.__setattr__(self, "_index", index)

    # -- shape and lookup -------------------------------------------------------------------
    @property
    def n_records(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_columns(self) -> int:
        return int(self.codes.shape[1])

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.domains)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Domain size of each column (missing included)."""
        return tuple(d.size for d in self.domains)

    def index_of(self, column: str | int) -> int:
        if isinstance(column, (int, np.integer)):
            return int(column)
        try:
            return self._index[column]
        except KeyError:
            raise KeyError(f"no column named {column!r}") from None

    def indices(self, columns: Sequence[str | int]) -> tuple[int, ...]:
        return tuple(self.index_of(c) for c in columns)

    def domain(self, column: str | int) -> ColumnDomain:
        return self.domains[self.index_of(column)]

    def column(self, column: str | int) -> np.ndarray:
        return self.codes[:, self.index_of(column)]

    # -- derived tables ---------------------------------------------------------------------
    def select(self, columns: Sequence[str | int]) -> EncodedTable:
        idx = list(self.indices(columns))
        return EncodedTable(self.codes[:, idx], tuple(self.domains[j] for j in idx))

    def take(self, rows: np.ndarray) -> EncodedTable:
        return EncodedTable(self.codes[rows], self.domains)

    def with_codes(self, codes: np.ndarray) -> EncodedTable:
        """Same public domains, other records (e.g. synthetic ones)."""
        return EncodedTable(np.asarray(codes), self.domains)

    def validate(self) -> None:
        """Raise if any code lies outside its column's domain (a programming error)."""
        if self.n_records == 0:
            return
        lo = self.codes.min(axis=0)
        hi = self.codes.max(axis=0)
        sizes = np.asarray(self.sizes)
        bad = np.flatnonzero((lo < 0) | (hi >= sizes))
        if bad.size:
            raise ValueError(
                "codes out of domain in columns: " + ", ".join(self.domains[j].name for j in bad)
            )

    def decode(self) -> pd.DataFrame:
        """Labels per encoded column (missing → ``None``); a categorical DataFrame.

        Vectorised: one ``pd.Categorical.from_codes`` per column.
        """
        data = {}
        for j, dom in enumerate(self.domains):
            col = self.codes[:, j].astype(np.int64, copy=True)
            if dom.allows_missing:
                col[col == dom.missing_code] = -1
            data[dom.name] = pd.Categorical.from_codes(col, categories=list(dom.labels))
        return pd.DataFrame(data)
