"""How ingest reports a bad record: the first violated rule, where, and how many more.

Why a module of its own: every source, encoder and the per-person merge must report problems the
same way: :class:`~ptsynth.errors.InputError` naming the file, row, column and rule plus how many
other rows break the same rule, and **never** the offending value (a trafficker reading a log
must learn nothing about a victim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptsynth.errors import InputError


class ErrorReporter:
    """Raises InputError for the first row of a boolean problem mask (never the value)."""

    def __init__(self, label: str | None, row_offset: int) -> None:
        self.label, self.row_offset = label, row_offset

    def check(self, bad: np.ndarray, rule: str, column: str | None = None,
              rows: np.ndarray | None = None) -> None:
        """``bad``: mask over records; ``rows`` maps mask positions to input row indices."""
        hits = np.flatnonzero(bad)
        if hits.size == 0:
            return
        if rows is not None:  # several problems in one input row count once
            hits = np.unique(rows[hits])
        raise InputError(rule, file=self.label, row=int(hits[0]) + self.row_offset, column=column,
                         more=int(hits.size - 1))

    def fail(self, rule: str, *, column: str | None = None, row: int | None = None) -> InputError:
        return InputError(rule, file=self.label, row=row, column=column)


class Problems:
    """Problems tallied across blocks: per check, the first row (file order) and the row count.

    Keys order the checks as a whole-file pass meets them: ``(column position, check number)``;
    the smallest key with a problem is raised once every block has been seen.
    """

    def __init__(self, rep: ErrorReporter) -> None:
        self.rep = rep
        self.found: dict[tuple[int, int], list[Any]] = {}

    def add(self, key: tuple[int, int], bad: np.ndarray, rule: str, column: str | None,
            base: int) -> None:
        """``bad``: row mask of one block whose first row has 0-based index ``base``."""
        hits = np.flatnonzero(bad)
        if hits.size == 0:
            return
        entry = self.found.get(key)
        if entry is None:
            self.found[key] = [base + int(hits[0]), int(hits.size), rule, column]
        elif entry[0] is not None:
            entry[1] += int(hits.size)

    def add_error(self, key: tuple[int, int], exc: InputError) -> None:
        """A rule about a whole column (e.g. an unsupported type): no row."""
        self.found.setdefault(key, [None, 1, exc.rule, exc.column])

    def raise_first(self) -> None:
        if not self.found:
            return
        row, count, rule, column = self.found[min(self.found)]
        raise InputError(rule, file=self.rep.label, column=column,
                         row=None if row is None else row + self.rep.row_offset,
                         more=count - 1 if row is not None else 0)
