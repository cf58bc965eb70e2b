"""The synthesizer registry: name → class, its options dataclass and its planner.

Why one table: the config (``[release.<name>]``), ``--synthesizer``, ``--plan``, the manifest and
``--help`` all ask this registry, so adding a synthesizer touches its own module and one line
below, and a misspelt name is refused in one place with the list of names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ptsynth.errors import ConfigError
from ptsynth.synth.aggregate_seeded import AggregateSeededSynthesizer
from ptsynth.synth.base import Synthesizer
from ptsynth.synth.options import build_options, options_dict
from ptsynth.synth.pgm import PGMSynthesizer

#: Registered synthesizer classes by name; the first is the default.
SYNTHESIZERS: dict[str, type[Synthesizer]] = {
    cls.name: cls for cls in (PGMSynthesizer, AggregateSeededSynthesizer)
}
DEFAULT = next(iter(SYNTHESIZERS))


def names() -> tuple[str, ...]:
    """Registered names, the default first."""
    return tuple(SYNTHESIZERS)


def get(name: str) -> type[Synthesizer]:
    """The class registered as ``name``, or a :class:`ConfigError` listing the names."""
    try:
        return SYNTHESIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown synthesizer {name!r}; choose one of {', '.join(SYNTHESIZERS)}",
            key="synthesizer",
        ) from None


def parse_options(name: str, values: Mapping[str, Any] | None) -> Any:
    """``[release.<name>]`` → the synthesizer's options dataclass (errors name the key)."""
    return build_options(get(name).Options, values, where=f"[release.{name}]")


def help_text() -> str:
    """One line per synthesizer, for ``--help``."""
    return "; ".join(f"{n}: {cls.summary}" for n, cls in SYNTHESIZERS.items())


__all__ = ["DEFAULT", "SYNTHESIZERS", "get", "help_text", "names", "options_dict", "parse_options"]
