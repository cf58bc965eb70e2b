"""``ptsynth init``: a starter release config proposed from a data file, with a review table.

Why it exists, and why it shouts: writing a schema by hand is the main hurdle for a first
release, so this proposes kinds and domains from the file. But every domain it proposes is read
from the *sensitive* records without spending privacy budget: a rare value (one victim's
citizenship) would be published simply by being in the domain. The config is therefore written
with ``[dataset] domains_confirmed = false`` and a loud comment block; a release refuses it until
a person has replaced each domain by a public code list (ISO codes, a codebook) or confirmed it
as public, and set ``domains_confirmed = true``.

What a steward can rely on (each rule is public and stated in the review table's "why"):

* the default synthesizer (``pgm``);
* binary columns (0/1, yes/no, true/false, 1/blank) and integer-coded columns (at most
  :data:`MAX_CATEGORIES` distinct numbers) become **categorical** over the values as written,
  so a flag stays ``1``/blank and a code stays a code; **ordinal** where the name says the codes
  are ordered (age, year, level, decile, ...) or the values are bands (``18--20``, ``48+``);
* ``missing = "allow"`` only where the input has a missing cell (blank, or a public sentinel
  such as ``N`` / ``NA`` in an otherwise numeric column);
* ISO dates become **periods** (year when the dates span 3 years or more, else month), over a
  range rounded outward;
* ``;``- or ``|``-joined cells become **set** columns;
* an id-like column (by name, values mostly distinct) is proposed as the **subject id**; other
  identifiers, **free text** and **high-cardinality** columns are left out with the reason;
* other numbers get **round edges** on a 1-2-5 x 10^k grid from the range rounded outward
  (never the data's minimum or maximum, no float artefacts); ``bins = "dp-quantiles"`` is the
  alternative once available (edges paid for with budget);
* demographic, geographic and date columns are proposed as **quasi-identifiers**, the reason
  printed.

``--preset`` maps the input's columns onto a standard preset by name instead (see
:mod:`ptsynth.ingest.presets`): the preset's domains are public, so such a column needs no
confirmation.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import tomli_w

from ptsynth.ingest import ErrorReporter, column_as_strings, load_table

#: Most distinct values (or set members) proposed as a domain; beyond, the column is left out.
MAX_CATEGORIES = 100
#: Integer columns named like a quantity (age, hours, count, ...) with more distinct values than
#: this are binned rather than kept as codes (96 single years of age make a quasi-identifier
#: that k-anonymity can only blank).
MAX_QUANTITY_CODES = 30
#: Target number of bins of a numeric column's round edges.
TARGET_BINS = 10
#: Tokens that mean "not applicable / unknown" in otherwise numeric columns (public spellings).
SENTINELS = ("N", "NA", "N/A", "n/a", "na", "-", ".", "?", "NULL", "null", "None", "none",
             "unknown", "Unknown", "missing")
_SET_DELIMS = (";", "|")
_BINARY = ({"0", "1"}, {"1"}, {"yes", "no"}, {"yes"}, {"y", "n"}, {"y"}, {"true", "false"},
           {"true"}, {"t", "f"}, {"x"})

BANNER = """\
# ============================================================================================
#  STARTER CONFIG PROPOSED FROM THE DATA: NOT READY FOR A RELEASE.
#
#  Every domain below (`values`, `bins`, `start`, `end`, `missing`) was READ FROM THE SENSITIVE RECORDS
#  without any privacy budget. A value that only one person has (a rare citizenship, an
#  unusual age) would be disclosed just by appearing in a released domain.
#
#  Before any release, for EVERY column:
#    * replace the domain by a PUBLIC code list (ISO 3166 countries, the CTDC codebook, agreed
#      age bands, ...) or confirm that each value is public knowledge, and
#    * check the proposed kind (categorical / ordinal / numeric / date / set / subject_id),
#      quasi_identifier and sensitive flags. The review table beside this file says why each
#      column got its kind.
#  Then set `domains_confirmed = true` in [dataset]. ptsynth refuses unconfirmed domains.
#  Also set [privacy] epsilon / delta and a dataset ledger deliberately.
# ============================================================================================
"""

PRESET_BANNER = """\
# ============================================================================================
#  STARTER CONFIG MAPPED ONTO THE PRESET {preset!r} ({title}).
#
#  Columns matched to the preset by name carry the preset's PUBLIC domains (from the
#  standard, not from the records). {confirm}
#  Check the review table beside this file: which input columns matched which preset column,
#  what did not match (both ways), and the proposed subject id. Then set [privacy] epsilon /
#  delta and a dataset ledger deliberately.
# ============================================================================================
"""

GENERAL_WARNING = (
    "domains in the starter config were read from the sensitive data without privacy budget; "
    "replace them by public code lists or confirm them as public, then set "
    "[dataset] domains_confirmed = true before any release"
)


# -- the review ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnReview:
    """One row of the review table: what was proposed for an input column, and why.

    Holds no value read from the records beyond domain labels in ``why`` (never counts of
    records).
    """

    column: str
    kind: str  # a column kind, or "left out"
    domain_size: int | None
    missing_allowed: bool | None
    quasi_identifier: bool
    why: str
    domain_from: str  # "data: confirm", "preset <name>", or "-"


@dataclass
class StarterConfig:
    """A proposed config (TOML-ready ``doc``), its review rows and the warnings to print."""

    doc: dict[str, Any]
    review: list[ColumnReview]
    warnings: list[str]
    banner: str
    preset: str | None = None
    unmatched_input: list[str] = field(default_factory=list)
    unmatched_preset: list[str] = field(default_factory=list)

    @property
    def domains_confirmed(self) -> bool:
        return bool(self.doc["dataset"]["domains_confirmed"])

    def toml(self) -> str:
        return self.banner + "\n" + tomli_w.dumps(self.doc, multiline_strings=False)

    def review_markdown(self, *, config_name: str, data_name: str) -> str:
        """The review table as Markdown (written beside the config)."""
        head = [
            f"# Review of `{config_name}`",
            "",
            f"Proposed by `ptsynth init` from `{data_name}`"
            + (f" onto the preset `{self.preset}`." if self.preset else "."),
            "",
        ]
        if self.domains_confirmed:
            head.append("All released domains come from the preset (public): "
                        "`domains_confirmed = true`. Check the kinds, the QI flags and the subject id.")
        else:
            head.append("**Domains marked `data: confirm` were read from the records without privacy "
                        "budget: NOT public until a person replaces or confirms each one and sets "
                        "`domains_confirmed = true`.**")
        head.append("")
        rows = ["| column | kind | domain size | missing allowed | QI | domain from | why |",
                "|---|---|---|---|---|---|---|"]
        for r in self.review:
            size = "-" if r.domain_size is None else str(r.domain_size)
            miss = "-" if r.missing_allowed is None else ("yes" if r.missing_allowed else "no")
            why = r.why.replace("|", "\\|")
            rows.append(f"| `{r.column}` | {r.kind} | {size} | {miss} | "
                        f"{'yes' if r.quasi_identifier else 'no'} | {r.domain_from} | {why} |")
        tail = []
        if self.preset:
            tail += ["", "Input columns that match no preset column: "
                     + (", ".join(f"`{c}`" for c in self.unmatched_input) or "none"),
                     "", "Preset columns absent from the input: "
                     + (", ".join(f"`{c}`" for c in self.unmatched_preset) or "none")]
        return "\n".join(head + rows + tail) + "\n"


# -- names -------------------------------------------------------------------------------------
def name_tokens(name: str) -> list[str]:
    """Lower-case words of a column name: ``IP_ageBroad`` → ``["ip", "age", "broad"]``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [t for t in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if t]


_ID_TOKENS = {"id", "uuid", "guid", "identifier", "rowid", "caseid", "personid", "recordid"}
_ORDERED_TOKENS = {
    "year", "yr", "years", "decile", "quintile", "quartile", "percentile", "level", "grade",
    "edu", "educ", "education", "num", "number", "count", "size", "rank", "score", "month",
    "months", "hours", "hrs", "days", "duration", "income", "order", "band", "broad",
}
_DEMOGRAPHIC = {
    "sex", "gender", "race", "rac1p", "ethnic", "ethnicity", "hisp", "hispanic", "birth",
    "birthdate", "dob", "born", "rac", "rac1", "marital", "msp", "married", "religion", "nationality", "citizen",
    "citizenship", "language", "edu", "educ", "education", "disability", "majority", "minor",
}
_GEOGRAPHIC = {
    "country", "countries", "region", "state", "city", "puma", "zip", "postal", "postcode",
    "district", "province", "county", "location", "address", "coo", "coe", "geo", "lat",
    "latitude", "lon", "lng", "longitude", "place", "origin", "destination", "density", "native",
    "municipality", "residence", "nation", "unregion",
}
_DATE_TOKENS = {"date", "year", "yr", "dob", "day", "register", "registration", "registered"}


def _is_age(token: str) -> bool:
    return token in ("age", "ages", "agep") or (token.startswith("age") and len(token) <= 4)


def _is_id_name(tokens: list[str]) -> bool:
    return any(t in _ID_TOKENS for t in tokens)


def _is_weight_name(name: str) -> bool:
    return re.search(r"w(ei)?gh?t", name.lower()) is not None


_QUANTITY_TOKENS = {"hours", "hrs", "days", "weeks", "months", "count", "number", "num",
                    "income", "amount", "duration", "size", "length", "height", "distance"}


def _quantity_name(tokens: list[str]) -> bool:
    """A name that says the numbers measure something (so many values are binned, not codes)."""
    return any(t in _QUANTITY_TOKENS or _is_age(t) for t in tokens) and not any(
        t in ("code", "codes", "id", "cat", "category", "decile", "band", "broad", "group") for t in tokens)


def _ordered_name(tokens: list[str]) -> bool:
    return any(t in _ORDERED_TOKENS or _is_age(t) for t in tokens)


def quasi_identifier_reason(name: str, kind: str) -> str | None:
    """Why a column looks like a quasi-identifier (demographic, geographic, date), or None."""
    tokens = name_tokens(name)
    for t in tokens:
        if _is_age(t) or t in _DEMOGRAPHIC:
            return f"demographic ({t})"
    for t in tokens:
        if t in _GEOGRAPHIC:
            return f"geographic ({t})"
    if kind == "date":
        return "date"
    for t in tokens:
        if t in _DATE_TOKENS:
            return f"date ({t})"
    return None


# -- values ------------------------------------------------------------------------------------
_BAND = re.compile(
    r"^\s*(?:(?P<lo>-?\d+(?:\.\d+)?)\s*(?:--|-|–|—|to)\s*(?P<hi>-?\d+(?:\.\d+)?)"
    r"|(?P<plus>\d+(?:\.\d+)?)\s*\+|(?:<|<=|under|below)\s*(?P<lt>\d+(?:\.\d+)?)"
    r"|\[\s*(?P<blo>-?\d+(?:\.\d+)?)\s*,\s*(?P<bhi>-?\d+(?:\.\d+)?)\s*\)"
    r"|(?P<num>-?\d+(?:\.\d+)?))\s*$"
)


def band_order(values: list[str]) -> list[str] | None:
    """Values sorted by their lower bound when they all look like bands (``18--20``, ``48+``,
    ``<18``, ``[18, 25)``, with plain numbers allowed beside at least one band), else None."""
    keys = []
    has_band = False
    for v in values:
        m = _BAND.match(v)
        if m is None or _LEADING_ZERO.search(v):  # "01-01301" is a code, not a band
            return None
        g = m.groupdict()
        if g["num"] is not None:
            keys.append((float(g["num"]), float(g["num"])))
            continue
        has_band = True
        if g["lo"] is not None:
            keys.append((float(g["lo"]), float(g["hi"])))
        elif g["plus"] is not None:
            keys.append((float(g["plus"]), math.inf))
        elif g["lt"] is not None:
            keys.append((-math.inf, float(g["lt"])))
        else:
            keys.append((float(g["blo"]), float(g["bhi"])))
    if not has_band or len(values) < 2:
        return None
    return [v for _, v in sorted(zip(keys, values, strict=True), key=lambda kv: kv[0])]


def round_edges(lo: float, hi: float, *, integer: bool, target: int = TARGET_BINS) -> list[int | float]:
    """Round, public-looking bin edges covering ``[lo, hi]``: multiples of a 1-2-5 x 10^k step.

    The range is rounded *outward* to the step: the first edge is ``<= lo`` and equals ``lo``
    only when ``lo`` is 0; the last edge is strictly above ``hi`` (bins are half-open). Edges
    are computed in decimal, so no float artefacts (``0.30000000000000004``) appear.
    """
    span = hi - lo
    if not span > 0:
        span = abs(hi) if hi else 1.0
    raw = Decimal(repr(span / target))
    exp = raw.adjusted()
    step = next(m * Decimal(10) ** exp for m in (1, 2, 5, 10) if m * Decimal(10) ** exp >= raw)
    if integer and step < 1:
        step = Decimal(1)
    dlo, dhi = Decimal(repr(float(lo))), Decimal(repr(float(hi)))
    first = (dlo / step).to_integral_value(rounding="ROUND_FLOOR") * step
    if first == dlo and dlo != 0:
        first -= step
    last = (dhi / step).to_integral_value(rounding="ROUND_FLOOR") * step + step
    count = int((last - first) / step)
    edges = [first + i * step for i in range(count + 1)]
    return [int(e) if e == e.to_integral_value() else float(e.normalize()) for e in edges]


def _numeric(values: list[str]) -> np.ndarray | None:
    nums = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    if nums.isna().any():
        return None
    arr = nums.to_numpy(dtype=np.float64)
    return arr if np.all(np.isfinite(arr)) else None


_LEADING_ZERO = re.compile(r"(?:^|[^\d.])0\d")


_DATE_SHAPE = re.compile(r"^\d{4}-\d{2}(-\d{2})?([T ][\d:.+\-Z]*)?$")


def _dates(values: list[str]) -> pd.Series | None:
    if not values or not all(_DATE_SHAPE.match(v) for v in values):
        return None
    parsed = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", errors="coerce")
    return None if parsed.isna().any() else parsed


def _numeric_order(values: list[str]) -> list[str]:
    nums = _numeric(values)
    if nums is None:
        return sorted(values)
    order = np.argsort(nums, kind="stable")
    return [values[i] for i in order]


# -- one column -----------------------------------------------------------------------------------
@dataclass
class _Column:
    """What the proposal needs to know of one input column (distinct values, never rows)."""

    name: str
    values: list[str]  # distinct present values (trimmed)
    n_present: int
    has_missing: bool
    sentinels: list[str]  # public sentinel tokens present in the column


def _describe(name: str, arr: pa.Array) -> _Column:
    s = pd.Series(arr.to_pandas(), dtype=object).fillna("").astype(str).str.strip()
    present = s[s != ""]
    values = [str(v) for v in pd.unique(present)]
    return _Column(name=name, values=values, n_present=int(len(present)),
                   has_missing=bool(len(present) < len(s)), sentinels=[])


def _entry_review(col: _Column, entry: dict[str, Any] | None, why: str,
                  qi_reason: str | None) -> tuple[dict[str, Any] | None, ColumnReview]:
    if entry is None:
        return None, ColumnReview(col.name, "left out", None, None, False, why, "-")
    kind = entry["kind"]
    size = None
    if kind in ("categorical", "ordinal", "set"):
        size = len(entry["values"])
    elif kind == "numeric":
        size = len(entry["bins"]) - 1
    elif kind == "date":
        start, end = entry["start"], entry["end"]
        size = (end.year - start.year + 1) if entry["period"] == "year" else \
            (end.year - start.year) * 12 + end.month - start.month + 1
    if qi_reason and kind != "subject_id":
        entry["quasi_identifier"] = True
        why = f"{why}; QI: {qi_reason}"
        if entry.get("missing") == "forbid" and kind != "set":
            # k-anonymity suppresses a rare QI value by blanking it; where missing is
            # forbidden it must drop the whole synthetic record instead
            entry["missing"] = "allow"
            why += (" (missing allowed although the input has none, so that k-anonymity can "
                    "blank a rare value instead of dropping the record)")
    missing = None if kind == "subject_id" else entry.get("missing") == "allow"
    source = "-" if kind == "subject_id" else "data: confirm"
    return entry, ColumnReview(col.name, kind, size, missing, bool(qi_reason) and kind != "subject_id",
                               why, source)


def _missing_rule(col: _Column, entry: dict[str, Any]) -> str:
    has = col.has_missing or bool(col.sentinels)
    entry["missing"] = "allow" if has else "forbid"
    if col.sentinels:
        entry["missing_values"] = ["", *col.sentinels]
    return ""


def propose_column(name: str, arr: pa.Array) -> tuple[dict[str, Any] | None, ColumnReview]:
    """Propose one ``[[columns]]`` entry (or leave the column out) from its distinct values."""
    col = _describe(name, arr)
    tokens = name_tokens(name)
    values, n = col.values, len(col.values)
    if n == 0:
        return _entry_review(col, None, "no values in the input: declare its public domain by hand", None)
    if _is_id_name(tokens) and n > 0.5 * col.n_present:
        entry = {"name": name, "kind": "subject_id",
                 "missing": "allow" if col.has_missing else "forbid"}
        why = "identifier (by name, values mostly distinct): never released"
        if n < col.n_present:
            why += "; values repeat: rows sharing an id merge into one person"
        if col.has_missing:
            why += "; rows without an id stand alone"
        return _entry_review(col, entry, why, None)
    if _is_weight_name(name) and _numeric(values) is not None:
        return _entry_review(col, None, "a weight (by name), not an attribute of the person", None)

    # dates -------------------------------------------------------------------------------
    dates = _dates(values)
    if dates is not None:
        lo, hi = dates.min(), dates.max()
        entry = {"name": name, "kind": "date", "out_of_range": "error"}
        if hi.year - lo.year >= 3:
            y0, y1 = lo.year // 5 * 5, hi.year // 5 * 5 + 4
            entry.update(period="year", start=_dt.date(y0, 1, 1), end=_dt.date(y1, 12, 31))
            why = f"ISO dates spanning 3+ years -> year, range rounded out to {y0}-{y1}"
        else:
            entry.update(period="month", start=_dt.date(lo.year, 1, 1), end=_dt.date(hi.year, 12, 31))
            why = f"ISO dates spanning under 3 years -> month, range {lo.year}-{hi.year}"
        _missing_rule(col, entry)
        return _entry_review(col, entry, why, quasi_identifier_reason(name, "date"))

    qi = quasi_identifier_reason(name, "")
    # numbers (possibly with a public sentinel such as NIST's "N") --------------------------------
    sentinels = [v for v in values if v in SENTINELS]
    numbers = [v for v in values if v not in SENTINELS]
    # numbers written with a leading zero ("007") are codes: kept as text, never binned
    nums = _numeric(numbers) if numbers and not any(_LEADING_ZERO.search(v) for v in numbers) else None
    if nums is not None:
        integral = bool(np.all(nums == np.floor(nums)))
        quantity = integral and len(numbers) > MAX_QUANTITY_CODES and _quantity_name(tokens)
        if n <= MAX_CATEGORIES and not quantity:
            ordered = numbers if not sentinels else numbers
            ordered = _numeric_order(ordered) + sorted(sentinels)
            folded = {v.casefold() for v in values}
            entry = {"name": name, "values": ordered}
            if any(folded == b for b in _BINARY):
                entry["kind"] = "categorical"
                why = "binary flag (" + "/".join(ordered) + ("/blank" if col.has_missing else "") + ")"
            elif integral and not _ordered_name(tokens):
                entry["kind"] = "categorical"
                why = f"integer codes ({n} values)"
            else:
                entry["kind"] = "ordinal"
                why = (f"ordered integer codes ({n} values; ordered by name)" if integral
                       else f"{n} distinct numbers kept as ordered codes")
            if sentinels:
                why += "; 'not applicable' token kept as a code"
            _missing_rule(col, entry)
            return _entry_review(col, entry, why, qi)
        col.sentinels = sentinels
        edges = round_edges(float(nums.min()), float(nums.max()), integer=integral)
        step = edges[1] - edges[0]
        entry = {"name": name, "kind": "numeric", "bins": edges, "out_of_range": "clip"}
        why = (f"{'a quantity by name, ' if quantity else ''}numbers ({n} distinct) -> "
               f"{len(edges) - 1} round bins of width {step} "
               "(range rounded out); or bins = \"dp-quantiles\" (edges paid for with budget)")
        if sentinels:
            why += "; 'not applicable' token read as missing"
        _missing_rule(col, entry)
        return _entry_review(col, entry, why, qi)

    # multi-valued cells -----------------------------------------------------------------------
    for delim in _SET_DELIMS:
        if any(delim in v for v in values):
            members = sorted({m.strip() for v in values for m in v.split(delim)} - {""})
            if len(members) <= MAX_CATEGORIES:
                entry = {"name": name, "kind": "set", "values": members, "delimiter": delim}
                why = f"cells joined with '{delim}' -> set of {len(members)} members"
                _missing_rule(col, entry)
                return _entry_review(col, entry, why, qi)
            return _entry_review(col, None, f"multi-valued ('{delim}') with more than "
                                 f"{MAX_CATEGORIES} members: recode to a public list", None)

    # text --------------------------------------------------------------------------------------
    lengths = np.array([len(v) for v in values])
    spaces = float(np.mean([" " in v for v in values]))
    if lengths.mean() > 30 or (n > MAX_CATEGORIES and spaces > 0.5):
        return _entry_review(col, None, "free text: may name or describe a person; never released", None)
    if n == col.n_present and n >= 20:
        return _entry_review(col, None, "every value distinct: an identifier; never released", None)
    if n > MAX_CATEGORIES:
        return _entry_review(col, None, f"high cardinality ({n} distinct values > {MAX_CATEGORIES}): "
                             "recode it to a public, coarser list to release it", None)
    banded = band_order(values)
    entry = {"name": name}
    if banded is not None:
        entry.update(kind="ordinal", values=banded)
        why = f"bands ({n}) in order of their lower bound"
    else:
        entry.update(kind="categorical", values=sorted(values))
        folded = {v.casefold() for v in values}
        why = ("binary flag (" + "/".join(sorted(values)) + ")" if any(folded == b for b in _BINARY)
               else f"text codes ({n} values)")
    _missing_rule(col, entry)
    return _entry_review(col, entry, why, qi)


# -- whole file -----------------------------------------------------------------------------------
def _subject_conflicts(frame: pd.DataFrame, subject: str, columns: list[str]) -> list[str]:
    """Single-valued columns in which one subject's rows hold different values (a merge would
    refuse them)."""
    ids = frame[subject]
    keep = ids != ""
    if not keep.any() or ids[keep].is_unique:
        return []
    sub = frame.loc[keep, [subject, *columns]].replace("", np.nan)
    counts = sub.groupby(subject, sort=False).nunique(dropna=True)
    return [c for c in columns if (counts[c] > 1).any()]


def _read(data_path: Path) -> tuple[pa.Table, dict[str, pa.Array]]:
    rep = ErrorReporter(str(data_path), 2)
    table = load_table(data_path, rep)
    return table, {name.strip(): column_as_strings(table.column(name), rep, name)
                   for name in table.column_names}


def _frame(arrays: dict[str, pa.Array], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({n: pd.Series(arrays[n].to_pandas(), dtype=object).fillna("").astype(str).str.strip()
                         for n in names})


def _base_doc(name: str, *, confirmed: bool, target: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "dataset": {"name": name, "extra_columns": "error", "domains_confirmed": confirmed},
        "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "release": {"reporting_length": 3, "k": 10, "synthesizer": "pgm"},
        "evaluation": {"holdout_fraction": 0.0},
    }
    if target:
        doc["evaluation"]["target"] = target
    return doc


def propose_from_data(arrays: dict[str, pa.Array], names: list[str]) -> tuple[list[dict[str, Any]], list[ColumnReview], list[str], str | None]:
    """Entries, review rows and warnings for ``names`` proposed from the data; the subject id."""
    entries: list[dict[str, Any]] = []
    review: list[ColumnReview] = []
    warnings: list[str] = []
    subject = None
    for name in names:
        entry, row = propose_column(name, arrays[name])
        if entry is not None and entry["kind"] == "subject_id":
            if subject is not None:
                entry = None
                row = ColumnReview(name, "left out", None, None, False,
                                   "another identifier (by name): never released", "-")
            else:
                subject = name
        if entry is not None:
            entries.append(entry)
        review.append(row)
    if subject is not None:
        single = [e["name"] for e in entries if e["kind"] not in ("set", "subject_id")]
        clash = set(_subject_conflicts(_frame(arrays, [subject, *single]), subject, single))
        if clash:
            entries, review = _as_sets(entries, review, clash)
            warnings.append(f"{len(clash)} column(s) hold different values in rows of one subject: "
                            "proposed as sets (union per person); see the review table")
    return entries, review, warnings, subject


def _as_sets(entries: list[dict[str, Any]], review: list[ColumnReview],
             clash: set[str]) -> tuple[list[dict[str, Any]], list[ColumnReview]]:
    """Turn single-valued proposals whose subject rows disagree into sets (merge = union)."""
    for e in entries:
        if e["name"] not in clash:
            continue
        values = e.get("values")
        if values is None or any(";" in v for v in values):
            continue  # numeric / date columns stay; the release names the column that clashes
        name, qi = e["name"], e.get("quasi_identifier", False)
        e.clear()
        e.update(name=name, kind="set", values=list(values), delimiter=";", missing="allow")
        if qi:
            e["quasi_identifier"] = True
    by_name = {e["name"]: e for e in entries}
    out = []
    for r in review:
        e = by_name.get(r.column)
        if e is not None and r.column in clash and e["kind"] == "set":
            r = ColumnReview(r.column, "set", len(e["values"]), True, r.quasi_identifier,
                             f"rows of one subject disagree -> set (union per person); was: {r.why}",
                             r.domain_from)
        out.append(r)
    return entries, out


# -- preset mapping -------------------------------------------------------------------------------
def _outside_domain(spec: Any, arr: pa.Array) -> int:
    """How many *distinct* present spellings of a column the preset's domain does not accept
    (a count for the steward, never the values)."""
    s = pd.Series(arr.to_pandas(), dtype=object).fillna("").astype(str).str.strip()
    distinct = [v for v in pd.unique(s) if v not in spec.missing_values and v != ""]
    if spec.kind in ("categorical", "ordinal", "set"):
        allowed = set(spec.values)
        cells = ([m.strip() for v in distinct for m in v.split(spec.delimiter)]
                 if spec.kind == "set" else distinct)
        cells = [spec.mapping.get(c, c) for c in cells if c and c not in spec.missing_values]
        return len({c for c in cells if c not in allowed})
    if spec.kind == "numeric":
        nums = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(nums)
        if spec.out_of_range == "error":
            bad |= (nums < spec.bins[0]) | (nums >= spec.bins[-1])
        return int(bad.sum())
    if spec.kind == "date":
        dates = pd.to_datetime(pd.Series(distinct, dtype=object), format="ISO8601", errors="coerce")
        bad = dates.isna().to_numpy().copy()
        if spec.out_of_range == "error" and spec.start is not None and spec.end is not None:
            ok = ~bad
            d = dates[ok].dt.date
            bad[ok] = ((d < spec.start) | (d > spec.end)).to_numpy()
        return int(bad.sum())
    return 0


def propose_with_preset(arrays: dict[str, pa.Array], names: list[str], preset: str, *,
                        data_name: str, propose_unmatched: bool = False) -> StarterConfig:
    """Map the input's columns onto ``preset`` by name; other columns are left out (or, with
    ``propose_unmatched``, proposed from the data and flagged for confirmation)."""
    from ptsynth.config import ReleaseConfig
    from ptsynth.ingest.presets import PRESETS, match_columns, preset_path

    path = preset_path(preset)
    cfg = ReleaseConfig.load(path)
    columns = list(cfg.schema.columns)  # the preset's subject id, if any, matches by name too
    match = match_columns(names, preset, [(c.name, c.description) for c in columns])
    by_name = {c.name: c for c in columns}
    entries: list[dict[str, Any]] = []
    review: list[ColumnReview] = []
    warnings: list[str] = []
    for col in names:
        if col not in match.pairs:
            continue
        spec = by_name[match.pairs[col]]
        if spec.kind == "subject_id":
            entries.insert(0, {"name": col, "kind": "subject_id", "missing": spec.missing})
            review.insert(0, ColumnReview(col, "subject_id", None, None, False,
                                          f"the preset's subject id {spec.name}: never released",
                                          f"preset {preset}"))
            continue
        entry = spec.to_dict()
        entry["name"] = col
        if set(spec.missing_values) != set(cfg.dataset.missing_values):
            entry["missing_values"] = list(spec.missing_values)
        why = f"preset column {spec.name} (matched by {match.how[col]})"
        bad = _outside_domain(spec, arrays[col])
        if bad:
            why += (f"; {bad} distinct value(s) in the input are outside the preset's domain: "
                    "the release will refuse them (add a `map` or fix the export)")
            warnings.append(f"column {col!r}: {bad} distinct value(s) outside the preset's domain")
        has_missing = _describe(col, arrays[col]).has_missing
        if not spec.allows_missing and has_missing:
            why += "; the input has missing cells but the preset forbids them"
            warnings.append(f"column {col!r}: missing cells, but the preset forbids missing values")
        entries.append(entry)
        size = len(spec.labels)
        review.append(ColumnReview(col, spec.kind, size, spec.allows_missing, spec.quasi_identifier,
                                   why, f"preset {preset}"))
    rest = [c for c in names if c not in match.pairs]
    preset_subject = next((c for c, p in match.pairs.items() if by_name[p].kind == "subject_id"), None)
    extra_entries, extra_review, extra_warnings, subject = propose_from_data(arrays, rest)
    if preset_subject is not None:  # the preset's id matched: a second id-like column is left out
        extra_entries = [e for e in extra_entries if e["kind"] != "subject_id"]
        subject = preset_subject
    from_data = False
    for entry, row in zip(_by_column(extra_entries, rest), extra_review, strict=True):
        if entry is None and row.kind == "subject_id":
            row = ColumnReview(row.column, "left out", None, None, False,
                               "another identifier: never released", "-")
        if entry is not None and entry["kind"] == "subject_id":
            entries.insert(0, entry)
            review.insert(0, row)
        elif propose_unmatched and entry is not None:
            entries.append(entry)
            review.append(ColumnReview(row.column, row.kind, row.domain_size, row.missing_allowed,
                                       row.quasi_identifier, "not in the preset; proposed from the data: "
                                       + row.why, row.domain_from))
            from_data = True
        else:
            reason = row.why if entry is None else (
                "not in the preset: left out (extra_columns = \"ignore\"); "
                "`--propose-unmatched` proposes it from the data")
            review.append(ColumnReview(row.column, "left out", None, None, False, reason, "-"))
    if propose_unmatched:
        warnings += extra_warnings
    target = cfg.evaluation.target
    target_in = next((c for c, p in match.pairs.items() if p == target), None)
    doc = _base_doc(Path(data_name).stem, confirmed=not from_data, target=target_in)
    doc["dataset"]["description"] = f"{data_name} mapped onto the preset {preset!r} ({PRESETS[preset][1]})"
    doc["dataset"]["extra_columns"] = "ignore"
    doc["dataset"]["missing_values"] = list(cfg.dataset.missing_values)
    if subject is not None:
        doc["dataset"]["subject_id"] = subject
    doc["release"] = {"reporting_length": cfg.release.reporting_length, "k": cfg.release.k,
                      "synthesizer": cfg.release.synthesizer}
    doc["columns"] = entries
    if not match.pairs:
        warnings.append(f"no input column matches the preset {preset!r}")
    if match.unmatched_input:
        warnings.append(f"{len(match.unmatched_input)} input column(s) match no preset column: "
                        + ", ".join(match.unmatched_input))
    if match.unmatched_preset:
        warnings.append(f"{len(match.unmatched_preset)} preset column(s) are not in the input: "
                        + ", ".join(match.unmatched_preset))
    if from_data:
        warnings.insert(0, GENERAL_WARNING)
    confirm = ("Every released domain here is the preset's: domains_confirmed = true."
               if not from_data else
               "Columns proposed from the data (see the review) are NOT public until confirmed:\n"
               "#  domains_confirmed = false until a person has replaced or confirmed them.")
    banner = PRESET_BANNER.format(preset=preset, title=PRESETS[preset][1], confirm=confirm)
    return StarterConfig(doc, review, warnings, banner, preset=preset,
                         unmatched_input=match.unmatched_input,
                         unmatched_preset=match.unmatched_preset)


def _by_column(entries: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any] | None]:
    by = {e["name"]: e for e in entries}
    return [by.get(n) for n in names]


def propose_config(data_path: str | Path, *, preset: str | None = None,
                   propose_unmatched: bool = False) -> StarterConfig:
    """Propose a starter config for ``data_path`` (from the data, or onto ``preset``)."""
    data_path = Path(data_path)
    _, arrays = _read(data_path)
    names = list(arrays)
    if preset is not None:
        return propose_with_preset(arrays, names, preset, data_name=data_path.name,
                                   propose_unmatched=propose_unmatched)
    entries, review, warnings, subject = propose_from_data(arrays, names)
    doc = _base_doc(data_path.stem, confirmed=False)
    if subject is not None:
        doc["dataset"]["subject_id"] = subject
        warnings.append(f"column {subject!r} was taken as the subject id (rows sharing it merge)")
    left_out = [r.column for r in review if r.kind == "left out"]
    if left_out:
        doc["dataset"]["extra_columns"] = "ignore"
        warnings.append(f"{len(left_out)} column(s) left out (extra_columns = \"ignore\"): "
                        + ", ".join(left_out) + "; see the review table")
    if not entries or all(e["kind"] == "subject_id" for e in entries):
        warnings.append("no column could be proposed for release: declare them by hand")
    doc["columns"] = entries
    return StarterConfig(doc, review, [GENERAL_WARNING, *warnings], BANNER)


def review_path_for(out_path: str | Path) -> Path:
    """``cfg.toml`` → ``cfg.review.md`` (beside the config)."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".review.md")


def write_starter_config(data_path: str | Path, out_path: str | Path, *, preset: str | None = None,
                         propose_unmatched: bool = False) -> list[str]:
    """Write a starter TOML for ``data_path`` to ``out_path`` and its review table beside it
    (:func:`review_path_for`); return the warnings (never record values)."""
    return init_config(data_path, out_path, preset=preset, propose_unmatched=propose_unmatched).warnings


def init_config(data_path: str | Path, out_path: str | Path, *, preset: str | None = None,
                propose_unmatched: bool = False) -> StarterConfig:
    """:func:`propose_config`, then write the config and the review (atomically, each)."""
    data_path, out_path = Path(data_path), Path(out_path)
    starter = propose_config(data_path, preset=preset, propose_unmatched=propose_unmatched)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    review = review_path_for(out_path)
    for path, text in ((out_path, starter.toml()),
                       (review, starter.review_markdown(config_name=out_path.name,
                                                        data_name=data_path.name))):
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return starter
