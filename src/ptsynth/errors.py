"""Exceptions a person can act on.

Why a hierarchy: the CLI maps each family to a distinct exit code and prints only the message.
Messages name the file, row, column and rule that failed, and **never** a value read from a
sensitive record (a trafficker reading a log must learn nothing about a victim).
"""

from __future__ import annotations


class PtsynthError(Exception):
    """Base class: an error the user can fix; the CLI prints its message and exits non-zero."""

    exit_code = 2


class ConfigError(PtsynthError):
    """The release configuration (TOML) is invalid."""


class SchemaError(ConfigError):
    """The declared schema is inconsistent (unknown kind, empty domain, bad bin edges, ...)."""


class InputError(PtsynthError):
    """A record does not satisfy the schema. Names where and which rule, never the value."""

    def __init__(
        self,
        rule: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        more: int = 0,
    ) -> None:
        self.rule, self.file, self.row, self.column, self.more = rule, file, row, column, more
        where = []
        if file:
            where.append(f"file {file}")
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column {column!r}")
        text = (", ".join(where) + ": " if where else "") + rule
        if more:
            text += f" (and {more} more problem{'s' if more > 1 else ''} of this kind)"
        super().__init__(text)


class BudgetExceededError(PtsynthError):
    """A spend would take a release or a dataset over its privacy budget. Raised before data use."""

    exit_code = 1


class LedgerError(PtsynthError):
    """A ledger file is missing, unreadable, of an unknown schema version, or tampered with."""
