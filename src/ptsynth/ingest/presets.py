"""Standard presets (public schemas from the sector's standards) and name matching onto them.

Why: a column whose domain comes from a published standard (the HTCDS picklists, the CTDC
codebook) costs no privacy and needs no confirmation, so the best starter config maps an
input's columns onto such a preset. Matching is by name only (column names are not sensitive):
case-, space-, underscore- and hyphen-insensitive, on the preset's column name, on the name
without an HTCDS table prefix (``prs_Gender`` ← ``Gender``), on the field label kept in the
column's ``description``, and on a few known aliases (renamed or misspelt fields). A key that
would match two preset columns matches neither.

The preset files are packaged (``ptsynth/configs/*.toml``); the copies in the repository's
``configs/`` folder are identical (a test checks it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ptsynth.errors import ConfigError

#: name → (packaged file, title)
PRESETS: dict[str, tuple[str, str]] = {
    "htcds": ("htcds_2.toml", "IOM Human Trafficking Case Data Standard 2.0"),
    "ctdc-v2024": ("ctdc_synthetic_v2024.toml", "CTDC Global Synthetic Data codebook v2024"),
    "ctdc-demo": ("demo.toml", "ptsynth's built-in CTDC-like demo records"),
}

#: preset → preset column → other names it is known by (renamed or misspelt fields).
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "htcds": {
        # the HTCDS Excel template spells this field without the "g"
        "vic_TraffickingStatusDecisionMakingOrg": ("vic_TraffickinStatusDecisionMakingOrg",),
    },
    "ctdc-v2024": {
        # the codebook's detailed description of variable 14; the 2021 (v1) names renamed 1:1
        # in v2024 (Appendix II); the merged ones cannot map onto one column
        "meansWithholdDocs": ("meansWithholdDocuments", "meansOfControlWithholdsDocuments"),
        "meansFalsePromises": ("meansOfControlFalsePromises",),
        "meansDrugsAlcohol": ("meansOfControlPsychoactiveSubstances",),
        "meansExcessiveWorkHours": ("meansOfControlExcessiveWorkingHours",),
        "yearOfRegistration": ("yearRegister",),
    },
    "ctdc-demo": {},
}

_HTCDS_PREFIX = re.compile(r"^[a-z]{3}_")


def normalise(name: str) -> str:
    """Match key of a column name: case, spaces, underscores, hyphens and dots ignored."""
    return re.sub(r"[\s_\-.]+", "", name).casefold()


def preset_path(name: str) -> Path:
    """The packaged TOML of a preset; :class:`ConfigError` naming the known presets."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})", key="--preset")
    return Path(str(resources.files("ptsynth").joinpath("configs", PRESETS[name][0])))


@dataclass(frozen=True)
class PresetMatch:
    """Which input column feeds which preset column, and what matched nothing (both ways)."""

    pairs: dict[str, str]  # input column → preset column
    how: dict[str, str]  # input column → how it matched ("name", "alias", "label", ...)
    unmatched_input: list[str]
    unmatched_preset: list[str]


def match_columns(input_names: list[str], preset: str, preset_columns: list[tuple[str, str]]) -> PresetMatch:
    """Map input column names onto ``preset_columns`` (``(name, description)`` pairs)."""
    keys: dict[str, set[str]] = {}
    kinds: dict[tuple[str, str], str] = {}

    def add(key: str, column: str, how: str) -> None:
        if not key:
            return
        keys.setdefault(key, set()).add(column)
        kinds.setdefault((key, column), how)

    aliases = ALIASES.get(preset, {})
    for name, description in preset_columns:
        add(normalise(name), name, "name")
        add(normalise(_HTCDS_PREFIX.sub("", name)), name, "name without prefix")
        add(normalise(description), name, "label")
        for alias in aliases.get(name, ()):
            add(normalise(alias), name, "alias")
    pairs: dict[str, str] = {}
    how: dict[str, str] = {}
    taken: set[str] = set()
    unmatched: list[str] = []
    for col in input_names:
        found = keys.get(normalise(col), set())
        if len(found) != 1:
            unmatched.append(col)
            continue
        target = next(iter(found))
        if target in taken:  # a second input column for the same preset column
            unmatched.append(col)
            continue
        taken.add(target)
        pairs[col] = target
        how[col] = kinds[(normalise(col), target)]
    missing = [name for name, _ in preset_columns if name not in taken]
    return PresetMatch(pairs, how, unmatched, missing)
