"""Synthesizer options: frozen, keyword-only dataclasses validated in one place.

Why: a synthesizer's knobs arrive from a TOML table (``[release.pgm]``), from Python keywords
(``PGMSynthesizer(max_model_size=2e5)``) or from an SDV-style ``**options``. Each synthesizer
declares them once as a frozen, keyword-only dataclass whose ``__post_init__`` checks every rule
with :func:`require`; :func:`build_options` turns a mapping into that dataclass and reports an
unknown key (a typo such as ``max_model_sise``) or a broken rule as a
:class:`~ptsynth.errors.ConfigError` naming the key and the rule, so the CLI exits 2 with one
line instead of a traceback. The effective options (defaults included) are what the manifest
records.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from ptsynth.errors import ConfigError

T = TypeVar("T")


class OptionError(ConfigError):
    """An option breaks its rule; ``key`` names it (``where`` is added by :func:`build_options`)."""


def require(ok: bool, key: str, rule: str) -> None:
    """Raise :class:`OptionError` for ``key`` unless ``ok``."""
    if not ok:
        raise OptionError(rule, key=key)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def option_names(options_type: type) -> tuple[str, ...]:
    """Names of an options dataclass's fields, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(options_type))


def _frozen(value: Any) -> Any:
    """TOML lists become tuples (hashable, immutable) all the way down."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def build_options(options_type: type[T], values: Mapping[str, Any] | None, *, where: str) -> T:
    """An ``options_type`` instance from ``values``; unknown keys and broken rules are
    :class:`~ptsynth.errors.ConfigError` s naming ``where`` (e.g. ``[release.pgm]``) and the key."""
    values = dict(values or {})
    allowed = option_names(options_type)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(allowed: {', '.join(allowed)})",
            key=where,
        )
    try:
        return options_type(**{key: _frozen(v) for key, v in values.items()})
    except OptionError as exc:
        raise ConfigError(exc.rule, key=f"{where} {exc.key}") from None


def options_dict(options: Any) -> dict[str, Any]:
    """The effective options as plain JSON-ready values (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        return v

    return {f.name: plain(getattr(options, f.name)) for f in dataclasses.fields(options)}
