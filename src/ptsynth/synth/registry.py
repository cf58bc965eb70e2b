"""The synthesizer registry: name → class, its options dataclass and its planner.

Why one table: the config (``[release.<name>]``), ``--synthesizer``, ``--plan``, the manifest and
``--help`` all ask this registry, so adding a synthesizer touches its own module and one line
below, and a misspelt name is refused in one place with the list of names.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any

from ptsynth.errors import ConfigError
from ptsynth.synth.base import Synthesizer
from ptsynth.synth.options import build_options, options_dict

#: Registered synthesizers: name → "module:Class" (imported on first use, so that the command
#: line starts fast); the first is the default.
SYNTHESIZERS: dict[str, str] = {
    "pgm": "ptsynth.synth.pgm:PGMSynthesizer",
    "aggregate": "ptsynth.synth.aggregate_seeded:AggregateSeededSynthesizer",
}
DEFAULT = next(iter(SYNTHESIZERS))


def names() -> tuple[str, ...]:
    """Registered names, the default first."""
    return tuple(SYNTHESIZERS)


def get(name: str) -> type[Synthesizer]:
    """The class registered as ``name``, or a :class:`ConfigError` listing the names."""
    try:
        module, cls_name = SYNTHESIZERS[name].split(":")
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown synthesizer {name!r}; choose one of {', '.join(SYNTHESIZERS)}",
            key="synthesizer",
        ) from None
    cls = getattr(import_module(module), cls_name)
    if cls.name != name:  # the registry line and the class must agree
        raise RuntimeError(f"registry name {name!r} differs from {cls.__name__}.name")
    return cls


def parse_options(name: str, values: Mapping[str, Any] | None) -> Any:
    """``[release.<name>]`` → the synthesizer's options dataclass (errors name the key)."""
    return build_options(get(name).Options, values, where=f"[release.{name}]")


def help_text() -> str:
    """One line per synthesizer (imports each), for ``ptsynth synthesizers``."""
    return "\n".join(f"{n}: {get(n).summary}" for n in SYNTHESIZERS)


__all__ = ["DEFAULT", "SYNTHESIZERS", "get", "help_text", "names", "options_dict", "parse_options"]
