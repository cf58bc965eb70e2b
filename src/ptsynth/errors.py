"""Exceptions a person can act on: one contract for the library and the command line.

Why a hierarchy: the CLI maps each family to a distinct exit code (2 for bad input, config or
bundle; 1 for a privacy budget that would be or was exceeded) and prints only the one-line
message, never a traceback. Every error names where (file, row, column or config key) and the
rule that failed, and **never** a value read from a sensitive record (a trafficker reading a log
must learn nothing about a victim). A failure that is not a :class:`PtsynthError` is a bug.
"""

from __future__ import annotations


class PtsynthError(Exception):
    """Base class: an error the user can fix; the CLI prints its message and exits non-zero.

    Args:
        rule: what is wrong, in words (never a sensitive value).
        file: the file (or source) concerned.
        row: the row number as a person counts it (see :mod:`ptsynth.ingest.sources`).
        column: the column concerned.
        key: the config key or option concerned (e.g. ``[release.pgm] max_model_size``).
        more: how many further rows break the same rule.
    """

    exit_code = 2

    def __init__(
        self,
        rule: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        key: str | None = None,
        more: int = 0,
    ) -> None:
        self.rule, self.file, self.row, self.column, self.key, self.more = (
            rule, file, row, column, key, more,
        )
        where = []
        if file:
            where.append(f"file {file}")
        if key:
            where.append(key)
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column {column!r}")
        text = (", ".join(where) + ": " if where else "") + rule
        if more:
            text += f" (and {more} more problem{'s' if more > 1 else ''} of this kind)"
        super().__init__(text)


class ConfigError(PtsynthError):
    """The release configuration (TOML) or an option is invalid."""


class SchemaError(ConfigError):
    """The declared schema is inconsistent (unknown kind, empty domain, bad bin edges, ...)."""


class InputError(PtsynthError):
    """A record does not satisfy the schema, or an input cannot be read. Never the value."""


class BundleError(PtsynthError):
    """A release bundle is missing, incomplete, of an unknown version, or tampered with."""


class LedgerError(PtsynthError):
    """A ledger file is missing, unreadable, of an unknown schema version, or tampered with."""


class SynthesisError(PtsynthError):
    """A synthesizer cannot produce records under its guarantee with this release's noisy
    measurements (e.g. too little budget for the table); raise ε or simplify the schema."""


class NotFittedError(PtsynthError, AttributeError):
    """A synthesizer was asked to sample (or describe its model) before ``fit``.

    Also an ``AttributeError`` (as scikit-learn's): a fitted attribute does not exist yet, so
    ``hasattr`` and protocol checks answer False instead of raising."""


class BudgetExceededError(PtsynthError):
    """A spend would take a release or a dataset over its privacy budget. Raised before data use."""

    exit_code = 1


class Terminated(BaseException):
    """The process received SIGTERM (what CI runners and ``timeout`` send) during a release.

    A ``BaseException``, like ``KeyboardInterrupt``: not an error to handle, a stop to clean up
    after (staging folder removed, reservation settled)."""
