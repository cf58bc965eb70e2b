"""Which columns the showcase's breakdown pages use: from ``[showcase]``, else detected.

Why detection: most stewards will not write a ``[showcase]`` section, and the CTDC codebook's
names (``yearOfRegistration``, ``CountryOfExploitation``, ``gender``, ``ageBroad``,
``isForcedLabour``...) or a column's kind and public labels (ISO 3166 codes, years) say enough.
Everything here reads the public schema only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from ptsynth.config import ShowcaseConfig

_YEARISH = re.compile(r"^\d{4}(-(Q[1-4]|\d{2}|\d{4}))?$")
_TIME_NAMES = ("year", "date", "period", "registr")
_GEO_NAMES = ("country", "citizen", "nationality", "coe", "coo", "state", "iso")
_AGE_NAMES = ("agebroad", "ageband", "age_band", "agegroup", "age", "majority")
_SEX_NAMES = ("gender", "sex")
_EXPLOIT = re.compile(r"^(is.*(exploit|labou?r)|.*exploitation_?type|typeof_?exploit.*)$",
                      re.IGNORECASE)


@dataclass(frozen=True)
class Geography:
    column: str
    codes: str  # "iso3166_alpha3" | "iso3166_alpha2" | "us_state"


@dataclass(frozen=True)
class Layout:
    """The columns each page uses (input column names of the release)."""

    title: str
    time: str | None = None
    geography: tuple[Geography, ...] = ()
    age: str | None = None
    sex: str | None = None
    exploitation: tuple[str, ...] = ()
    pages: tuple[tuple[str, tuple[str, ...]], ...] = ()
    detected: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "time": self.time,
                "geography": [{"column": g.column, "codes": g.codes} for g in self.geography],
                "age": self.age, "sex": self.sex, "exploitation": list(self.exploitation),
                "pages": [{"title": t, "columns": list(c)} for t, c in self.pages],
                "detected": list(self.detected)}


@cache
def _geo(name: str) -> dict[str, Any]:
    return json.loads(resources.files("ptsynth.showcase").joinpath("geo", name).read_text("utf-8"))


def world() -> dict[str, Any]:
    return _geo("world.json")


def us_states() -> dict[str, Any]:
    return _geo("us_states.json")


def code_system(labels: tuple[str, ...], name: str) -> str | None:
    """The code system most of ``labels`` belong to (at least 80%), or ``None``."""
    if not labels:
        return None
    shapes = world()["shapes"]
    alpha3 = set(shapes)
    alpha2 = {s["a2"] for s in shapes.values()}
    states = set(us_states()["shapes"])
    share = {
        "iso3166_alpha3": sum(x in alpha3 for x in labels) / len(labels),
        "iso3166_alpha2": sum(x in alpha2 for x in labels) / len(labels),
        "us_state": sum(x in states for x in labels) / len(labels),
    }
    lower = name.lower()
    if share["us_state"] >= 0.8 and "state" in lower:
        return "us_state"
    best = max(("iso3166_alpha3", "iso3166_alpha2"), key=lambda k: share[k])
    if share[best] >= 0.8:
        return best
    return "us_state" if share["us_state"] >= 0.8 else None


def _first(columns: list[Any], names: tuple[str, ...], kinds: tuple[str, ...] | None = None) -> str | None:
    for want in names:
        for c in columns:
            if want in c.name.lower() and (kinds is None or c.kind in kinds):
                return c.name
    return None


def layout(schema: Any, cfg: ShowcaseConfig | None, dataset_name: str = "") -> Layout:
    """The pages' columns: the ``[showcase]`` section where it says, detection elsewhere.

    ``schema`` is the release's (input) schema; detection looks at the released columns.
    """
    cfg = cfg or ShowcaseConfig()
    cols = list(schema.data_columns)
    by_name = {c.name: c for c in cols}
    released = schema.released()
    labels = {c.name: tuple(c.labels) for c in released.data_columns}
    detected = []

    time = cfg.time
    if time is None:
        dates = [c.name for c in cols if c.kind == "date"]
        yearly = [c.name for c in cols if c.kind in ("ordinal", "categorical", "numeric")
                  and labels[c.name] and all(_YEARISH.match(x) for x in labels[c.name])]
        named = [n for n in yearly if any(t in n.lower() for t in _TIME_NAMES)]
        time = (named or yearly or dates or [None])[0]
        if time is not None:
            detected.append("time")

    geos: list[Geography] = []
    if cfg.geography:
        for g in cfg.geography:
            codes = cfg.geography_codes or code_system(labels[g], g)
            if codes is not None:
                geos.append(Geography(g, codes))
    else:
        for c in cols:
            if c.kind in ("categorical", "set"):
                codes = code_system(labels[c.name], c.name)
                if codes is not None:
                    geos.append(Geography(c.name, codes))
        # exploitation country first when there are several
        geos.sort(key=lambda g: (0 if "exploit" in g.column.lower() or "coe" in g.column.lower()
                                 else 1))
        if geos:
            detected.append("geography")

    age = sex = None
    if cfg.demographics:
        demo = list(cfg.demographics)
        sex = next((d for d in demo if any(s in d.lower() for s in _SEX_NAMES)), None)
        rest = [d for d in demo if d != sex]
        age = rest[0] if rest else None
        if sex is None and len(demo) > 1:
            age, sex = demo[0], demo[1]
    else:
        sex = _first(cols, _SEX_NAMES, ("categorical",))
        age = _first(cols, _AGE_NAMES, ("ordinal", "numeric", "categorical"))
        if sex or age:
            detected.append("demographics")

    exploitation = tuple(cfg.exploitation)
    if not exploitation:
        exploitation = tuple(c.name for c in cols if _EXPLOIT.search(c.name)
                             and c.name != time and c.name not in {g.column for g in geos})
        if exploitation:
            detected.append("exploitation")

    title = cfg.title or dataset_name or "Released data"
    pages = tuple((p.title, tuple(c for c in p.columns if c in by_name)) for p in cfg.pages)
    return Layout(title=title, time=time, geography=tuple(geos), age=age, sex=sex,
                  exploitation=exploitation, pages=pages, detected=tuple(detected))
