"""Column kinds, public domains and the missing-value policy of a dataset.

Why a module of its own: every later step relies on the domains being *public*. They must come
from the configuration (a code list, a codebook, agreed bin edges), never from the records, so
that encoding costs no privacy budget. This module turns the ``[[columns]]`` tables of a release
configuration into :class:`ColumnSpec` values, validates them in one place (errors name the
config file, the column and the rule), and derives the encoded domains
(:class:`~ptsynth.table.ColumnDomain`) that ingest, measurement and synthesis share.

Kinds
-----
``categorical`` / ``ordinal``  a public list of ``values`` (ordinal: in order).
``numeric``    public bin ``bins`` (edges, increasing); a value ``x`` falls in ``[e_i, e_{i+1})``;
               labels like ``"[18, 25)"``; ``out_of_range = "error" | "clip" | "missing"``.
               Or ``bins = "dp-quantiles"`` with ``count`` bins over a public ``range = [lo, hi]``
               and a public candidate grid (``resolution`` step, or ``grid = "log"``): the
               interior edges are then measured with DP at release time (see :class:`DPBins`
               and :mod:`ptsynth.release.dp_bins`); the schema is *resolved* before encoding.
``date``       ISO 8601 dates mapped to a ``period`` (``year`` | ``quarter`` | ``month``) between
               public ``start`` and ``end``; labels ``"2019"``, ``"2019-Q3"``, ``"2019-07"``;
               ``out_of_range`` as for numeric.
``set``        multi-valued cell (``"debt;threats"``) over public ``values``, split on
               ``delimiter``; expanded to one binary member column ``"<name>=<value>"`` per value.
``subject_id`` identifies a person; rows sharing it merge into one record and the column
               itself is never encoded or released.

Values outside the declared domain
----------------------------------
``unknown = "error" | "other" | "missing"`` (categorical, ordinal, set; default ``"error"``)
says what happens to a value that is not declared (after ``map``): refuse the input, record it as
the declared catch-all value named by ``other`` (which must be one of ``values``), or record it
as missing (set: drop the member), which needs ``missing = "allow"``. Numeric and date columns
say the same with ``out_of_range``. How many values were recoded is reported to the data steward
only (private report, terminal), never in a public file: the count is read from the records
without noise.

Hierarchies and structural zeros (``[[hierarchies]]``, ``[[constraints]]``) are public
structure over the declared columns: see :mod:`ptsynth.structure`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ptsynth.errors import SchemaError
from ptsynth.spreadsheet import is_ambiguous, is_formula_like
from ptsynth.structure import (
    Constraint,
    Hierarchy,
    StructuralZero,
    check_structure,
    parse_constraint,
    parse_hierarchy,
)
from ptsynth.table import ColumnDomain, EncodedTable

#: Kinds a ``[[columns]]`` entry may declare.
INPUT_KINDS = ("categorical", "ordinal", "numeric", "date", "set", "subject_id")
PERIODS = ("year", "quarter", "month")
_COLUMN_KEYS = frozenset(
    {
        "name", "kind", "values", "bins", "labels", "out_of_range", "period", "start", "end",
        "delimiter", "max_values", "missing", "missing_values", "quasi_identifier", "sensitive",
        "map", "description", "unknown", "other", "count", "range", "resolution", "grid",
        "bins_source",
    }
)
_NEEDS_VALUES = ("categorical", "ordinal", "set")
#: ``bins`` value asking for DP-measured edges.
DP_QUANTILES = "dp-quantiles"
UNKNOWN_POLICIES = ("error", "other", "missing")
OUT_OF_RANGE_POLICIES = ("error", "clip", "missing")
#: Most cells a DP-bins candidate grid may have (its histogram is one encoded column).
MAX_GRID_CELLS = 10_000
#: Round values per decade of a log grid: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k.
LOG_MANTISSAS = ("1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "6", "8")


def _fmt_edge(x: float) -> str:
    """Edge as a person writes it: ``18`` not ``18.0``."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def bin_labels(edges: Sequence[float]) -> tuple[str, ...]:
    """Labels ``"[a, b)"`` of the half-open bins between consecutive public edges."""
    return tuple(f"[{_fmt_edge(a)}, {_fmt_edge(b)})" for a, b in zip(edges[:-1], edges[1:], strict=True))


def period_ordinal(years: np.ndarray, months: np.ndarray, period: str) -> np.ndarray:
    """Absolute period number of (year, month 1..12) pairs: comparable, consecutive integers."""
    years = np.asarray(years, dtype=np.int64)
    months = np.asarray(months, dtype=np.int64)
    if period == "year":
        return years
    if period == "quarter":
        return years * 4 + (months - 1) // 3
    return years * 12 + (months - 1)


def _period_label(p: int, period: str) -> str:
    if period == "year":
        return f"{p:04d}"
    if period == "quarter":
        return f"{p // 4:04d}-Q{p % 4 + 1}"
    return f"{p // 12:04d}-{p % 12 + 1:02d}"


def _as_date(value: Any, what: str, err: _Err) -> _dt.date:
    """Accept a TOML date, a datetime, or an ISO string (``"2002"``, ``"2002-07"``, ``"2002-07-01"``)."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, int) and 1000 <= value <= 9999:
        return _dt.date(value, 1, 1)
    if isinstance(value, str):
        parts = value.strip().split("-")
        try:
            nums = [int(p) for p in parts]
            if len(nums) == 1:
                return _dt.date(nums[0], 1, 1)
            if len(nums) == 2:
                return _dt.date(nums[0], nums[1], 1)
            if len(nums) == 3:
                return _dt.date(*nums)
        except ValueError:
            pass
    raise err(f"{what} must be an ISO date such as 2002-01-01")


def _decimal(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def nice_step(span: float, cells: int) -> float:
    """The smallest 1-2-5 × 10^k step that covers ``span`` in at most ``cells`` steps."""
    raw = Decimal(repr(float(span))) / cells
    exp = raw.adjusted()
    for m in ("1", "2", "5", "10"):
        step = Decimal(m).scaleb(exp)
        if step >= raw:
            return float(step)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class DPBins:
    """A numeric column whose interior bin edges are measured with DP (``bins = "dp-quantiles"``).

    Everything here is public: ``count`` bins between the declared ``lo`` and ``hi`` (the outer
    edges), and the candidate grid the interior edges are chosen from. A DP quantile needs a
    public candidate set: the exponential mechanism picks grid points, so an edge can never be
    a value read from the records (the data's minimum, say) unless that value is a grid point.

    Attributes:
        count: number of bins (``count - 1`` interior edges are measured).
        lo, hi: public outer edges; values must lie in ``[lo, hi)`` (``out_of_range`` applies).
        resolution: step of a linear grid ``lo, lo + r, …, hi`` (``hi - lo`` a whole number of
            steps). ``None`` with ``grid = "linear"``: a 1-2-5 step giving at most 1000 cells.
        grid: ``"linear"`` or ``"log"`` (round values 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k
            between ``lo > 0`` and ``hi``).
    """

    count: int
    lo: float
    hi: float
    resolution: float | None = None
    grid: str = "linear"

    def points(self) -> tuple[float, ...]:
        """The grid, ``lo`` and ``hi`` included, increasing, as round decimals (no float
        artefacts such as 0.30000000000000004)."""
        lo, hi = _decimal(self.lo), _decimal(self.hi)
        if self.grid == "log":
            pts = {lo, hi}
            for k in range(lo.adjusted() - 1, hi.adjusted() + 2):
                for m in LOG_MANTISSAS:
                    v = Decimal(m).scaleb(k)
                    if lo < v < hi:
                        pts.add(v)
            return tuple(float(v) for v in sorted(pts))
        step = _decimal(self.effective_resolution)
        n = int(((hi - lo) / step).to_integral_value())
        return tuple(float(lo + i * step) for i in range(n)) + (float(hi),)

    @property
    def effective_resolution(self) -> float:
        if self.grid == "log":
            raise ValueError("a log grid has no fixed step")
        if self.resolution is not None:
            return float(self.resolution)
        return nice_step(self.hi - self.lo, 1000)

    def grid_text(self) -> str:
        """The public candidate grid in words."""
        span = f"[{_fmt_edge(self.lo)}, {_fmt_edge(self.hi)})"
        if self.grid == "log":
            return f"log grid on {span} (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k)"
        return f"grid on {span} in steps of {_fmt_edge(self.effective_resolution)}"

    def describe(self) -> str:
        return f"dp-quantiles: {self.count} bins, {self.grid_text()}"


class _Err:
    """Builds SchemaErrors that name the config file and the column (one place for wording)."""

    def __init__(self, source: str | None, column: str | None = None) -> None:
        self.source, self.column = source, column

    def __call__(self, rule: str) -> SchemaError:
        return SchemaError(rule, file=self.source, column=self.column)


@dataclass(frozen=True)
class ColumnSpec:
    """One input column as declared in the configuration. All domains are public."""

    name: str
    kind: str
    values: tuple[str, ...] = ()
    bins: tuple[float, ...] = ()
    bin_names: tuple[str, ...] = ()
    out_of_range: str = "error"
    period: str = "year"
    start: _dt.date | None = None
    end: _dt.date | None = None
    delimiter: str = ";"
    max_values: int | None = None
    missing: str = "allow"
    missing_values: tuple[str, ...] = ("",)
    quasi_identifier: bool = False
    sensitive: bool = False
    mapping: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    #: What a value outside the declared values becomes: "error" | "other" | "missing".
    unknown: str = "error"
    #: The declared catch-all value that ``unknown = "other"`` records.
    other: str | None = None
    #: DP-measured bins (``bins = "dp-quantiles"``); ``bins`` stays empty until resolved.
    dp_bins: DPBins | None = None
    #: Where public ``bins`` came from (informational; e.g. a DP measurement of a past release).
    bins_source: str = ""

    # -- derived public facts ----------------------------------------------------------------
    @property
    def allows_missing(self) -> bool:
        """Set members always allow "absent"; other kinds follow ``missing``."""
        return self.kind == "set" or self.missing == "allow"

    @property
    def period_range(self) -> tuple[int, int]:
        """First and last absolute period numbers (dates only)."""
        assert self.start is not None and self.end is not None
        lo = int(period_ordinal(np.array([self.start.year]), np.array([self.start.month]), self.period)[0])
        hi = int(period_ordinal(np.array([self.end.year]), np.array([self.end.month]), self.period)[0])
        return lo, hi

    @property
    def needs_dp_bins(self) -> bool:
        """A numeric column whose edges are still to be measured (see :class:`DPBins`)."""
        return self.kind == "numeric" and self.dp_bins is not None and not self.bins

    def with_bins(self, edges: Sequence[float]) -> ColumnSpec:
        """This column with public (e.g. DP-measured) edges: the resolved schema's column."""
        return replace(self, bins=tuple(float(e) for e in edges))

    @property
    def labels(self) -> tuple[str, ...]:
        """Public labels of the non-missing codes (set: the member values).

        A column whose DP bins are not measured yet has placeholder labels (the domain *size*
        is public, so ``--plan`` works); encoding refuses such a schema."""
        if self.kind in _NEEDS_VALUES:
            return self.values
        if self.needs_dp_bins:
            assert self.dp_bins is not None
            return self.bin_names or tuple(
                f"<dp bin {i + 1} of {self.dp_bins.count}>" for i in range(self.dp_bins.count))
        if self.kind == "numeric":
            return self.bin_names or bin_labels(self.bins)
        if self.kind == "date":
            lo, hi = self.period_range
            return tuple(_period_label(p, self.period) for p in range(lo, hi + 1))
        return ()

    def member_name(self, value: str) -> str:
        return f"{self.name}={value}"

    def domains(self) -> tuple[ColumnDomain, ...]:
        """Encoded columns of this input column (none for the subject id)."""
        common = {"quasi_identifier": self.quasi_identifier, "sensitive": self.sensitive}
        if self.kind == "subject_id":
            return ()
        if self.kind == "set":
            return tuple(
                ColumnDomain(self.member_name(v), ("1",), source=self.name, kind="set_member",
                             allows_missing=True, **common)
                for v in self.values
            )
        return (
            ColumnDomain(self.name, self.labels, source=self.name, kind=self.kind,
                         allows_missing=self.allows_missing, **common),
        )

    def to_dict(self) -> dict[str, Any]:
        """TOML-ready form (round-trips through :func:`parse_column`)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind in _NEEDS_VALUES:
            out["values"] = list(self.values)
            if self.unknown != "error":
                out["unknown"] = self.unknown
            if self.other is not None:
                out["other"] = self.other
        if self.needs_dp_bins:
            assert self.dp_bins is not None
            dp = self.dp_bins
            out["bins"] = DP_QUANTILES
            out["count"] = dp.count
            out["range"] = [_toml_number(dp.lo), _toml_number(dp.hi)]
            if dp.grid == "log":
                out["grid"] = "log"
            elif dp.resolution is not None:
                out["resolution"] = _toml_number(dp.resolution)
            if self.bin_names:
                out["labels"] = list(self.bin_names)
        elif self.kind == "numeric":
            out["bins"] = [_toml_number(b) for b in self.bins]
            if self.bin_names:
                out["labels"] = list(self.bin_names)
            source = self.dp_bins.describe() if self.dp_bins is not None else self.bins_source
            if source:
                out["bins_source"] = source
        if self.kind in ("numeric", "date"):
            out["out_of_range"] = self.out_of_range
        if self.kind == "date":
            out["period"] = self.period
            out["start"], out["end"] = self.start, self.end
        if self.kind == "set":
            out["delimiter"] = self.delimiter
            if self.max_values is not None:
                out["max_values"] = self.max_values
        out["missing"] = self.missing
        if self.missing_values != ("",):
            out["missing_values"] = list(self.missing_values)
        if self.quasi_identifier:
            out["quasi_identifier"] = True
        if self.sensitive:
            out["sensitive"] = True
        if self.mapping:
            out["map"] = dict(self.mapping)
        if self.description:
            out["description"] = self.description
        return out


def _toml_number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def _str_list(value: Any, what: str, err: _Err) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise err(f"{what} must be a non-empty list")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (str, int)):
            raise err(f"{what} must hold strings (or integers)")
        out.append(str(v))
    if len(set(out)) != len(out):
        raise err(f"{what} holds the same entry twice")
    return tuple(out)


def _choice(spec: Mapping[str, Any], key: str, options: Sequence[str], default: str, err: _Err) -> str:
    value = spec.get(key, default)
    if value not in options:
        raise err(f"{key} must be one of {', '.join(repr(o) for o in options)}")
    return str(value)


def _flag(spec: Mapping[str, Any], key: str, err: _Err) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise err(f"{key} must be true or false")
    return value


def _parse_public_bins(spec: Mapping[str, Any], edges: Any, err: _Err) -> dict[str, Any]:
    if (
        not isinstance(edges, list)
        or len(edges) < 2
        or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in edges)
    ):
        raise err(f"bins must be a list of at least two numbers (or {DP_QUANTILES!r})")
    arr = np.asarray(edges, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or not np.all(np.diff(arr) > 0):
        raise err("bins must be finite and strictly increasing")
    kw: dict[str, Any] = {"bins": tuple(float(e) for e in arr)}
    if "labels" in spec:
        names = _str_list(spec["labels"], "labels", err)
        if len(names) != len(arr) - 1:
            raise err("labels must have one entry per bin (len(bins) - 1)")
        kw["bin_names"] = names
    if "bins_source" in spec:
        if not isinstance(spec["bins_source"], str):
            raise err("bins_source must be a string")
        kw["bins_source"] = spec["bins_source"]
    return kw


def _parse_dp_bins(spec: Mapping[str, Any], err: _Err) -> DPBins:
    """``count``, ``range`` and the grid of a ``bins = "dp-quantiles"`` column, validated."""
    count = spec.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise err(f'bins = "{DP_QUANTILES}" needs count = the number of bins (an integer ≥ 2)')
    rng = spec.get("range")
    if (
        not isinstance(rng, list) or len(rng) != 2
        or not all(isinstance(e, (int, float)) and not isinstance(e, bool) for e in rng)
        or not all(np.isfinite(rng)) or not rng[0] < rng[1]
        or not np.isfinite(float(rng[1]) - float(rng[0]))
    ):
        raise err(f'bins = "{DP_QUANTILES}" needs range = [lo, hi], the public outer edges '
                  "(finite, lo < hi; values must lie in [lo, hi))")
    grid = _choice(spec, "grid", ("linear", "log"), "linear", err)
    resolution = spec.get("resolution")
    if grid == "log":
        if resolution is not None:
            raise err('resolution does not apply to grid = "log" (its grid is fixed)')
        if not rng[0] > 0:
            raise err('grid = "log" needs range = [lo, hi] with lo > 0')
    elif resolution is not None:
        if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not (
            np.isfinite(resolution) and resolution > 0
        ):
            raise err("resolution must be a positive number (the step of the candidate grid)")
        steps = (_decimal(rng[1]) - _decimal(rng[0])) / _decimal(resolution)
        if steps != steps.to_integral_value():
            raise err("range must span a whole number of resolution steps")
    dp = DPBins(count=count, lo=float(rng[0]), hi=float(rng[1]),
                resolution=None if resolution is None else float(resolution), grid=grid)
    if grid == "linear" and (_decimal(dp.hi) - _decimal(dp.lo)) / _decimal(dp.effective_resolution) > MAX_GRID_CELLS:
        raise err(f"the candidate grid has more than {MAX_GRID_CELLS} cells (raise resolution)")
    cells = len(dp.points()) - 1
    if count > cells:
        raise err(f"count ({count}) exceeds the {cells} cells of the candidate grid")
    return dp


def parse_column(
    spec: Mapping[str, Any],
    *,
    source: str | None = None,
    position: int = 0,
    default_missing_values: Sequence[str] = ("",),
) -> ColumnSpec:
    """Validate one ``[[columns]]`` table. Raises :class:`SchemaError` naming config and column."""
    if not isinstance(spec, Mapping):
        raise _Err(source, f"#{position + 1}")("each [[columns]] entry must be a table")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Err(source, f"#{position + 1}")("name must be a non-empty string")
    err = _Err(source, name)
    unknown = sorted(set(spec) - _COLUMN_KEYS)
    if unknown:
        raise err(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(_COLUMN_KEYS))})")
    kind = _choice(spec, "kind", INPUT_KINDS, "", err) if "kind" in spec else None
    if kind is None:
        raise err(f"kind is required (one of {', '.join(INPUT_KINDS)})")
    kw: dict[str, Any] = {"name": name, "kind": kind}
    kw["missing"] = _choice(spec, "missing", ("allow", "forbid"), "forbid" if kind == "subject_id" else "allow", err)
    kw["quasi_identifier"] = _flag(spec, "quasi_identifier", err)
    kw["sensitive"] = _flag(spec, "sensitive", err)
    if "description" in spec:
        if not isinstance(spec["description"], str):
            raise err("description must be a string")
        kw["description"] = spec["description"]
    mv = spec.get("missing_values", list(default_missing_values))
    if not isinstance(mv, list) or not all(isinstance(v, str) for v in mv):
        raise err("missing_values must be a list of strings")
    kw["missing_values"] = tuple(dict.fromkeys(v.strip() for v in mv)) or ("",)

    irrelevant = {
        "values": kind not in _NEEDS_VALUES,
        "bins": kind != "numeric",
        "labels": kind != "numeric",
        "out_of_range": kind not in ("numeric", "date"),
        "period": kind != "date",
        "start": kind != "date",
        "end": kind != "date",
        "delimiter": kind != "set",
        "max_values": kind != "set",
        "map": kind not in _NEEDS_VALUES,
        "unknown": kind not in _NEEDS_VALUES,
        "other": kind not in _NEEDS_VALUES,
        "count": kind != "numeric",
        "range": kind != "numeric",
        "resolution": kind != "numeric",
        "grid": kind != "numeric",
        "bins_source": kind != "numeric",
    }
    stray = sorted(k for k, bad in irrelevant.items() if bad and k in spec)
    if stray:
        raise err(f"key(s) {', '.join(stray)} do not apply to kind {kind!r}")

    if kind in _NEEDS_VALUES:
        if "values" not in spec:
            raise err(f"kind {kind!r} needs a public list of values (from a code list, not from the data)")
        values = _str_list(spec["values"], "values", err)
        if any(v.strip() != v or v == "" for v in values):
            raise err("values must be non-empty and have no leading/trailing spaces")
        clash = set(values) & set(kw["missing_values"])
        if clash:
            raise err("a value is also listed in missing_values")
        if any(is_ambiguous(v) for v in values):
            raise err("a value starts with an apostrophe followed by = + - or @: public CSV "
                      "files could not tell it from a neutralised formula (ptsynth.spreadsheet)")
        kw["values"] = values
        mapping = spec.get("map", {})
        if not isinstance(mapping, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
        ):
            raise err("map must be a table of string → string")
        bad_targets = [v for v in mapping.values() if v not in values and v not in kw["missing_values"]]
        if bad_targets:
            raise err("map targets must be declared values (or missing_values)")
        kw["mapping"] = {k.strip(): v for k, v in mapping.items()}
        kw["unknown"] = _choice(spec, "unknown", UNKNOWN_POLICIES, "error", err)
        if kw["unknown"] == "other":
            other = spec.get("other")
            if not isinstance(other, str) or other not in values:
                raise err('unknown = "other" needs other = the declared catch-all value (one of '
                          "values) that undeclared values become")
            kw["other"] = other
        elif "other" in spec:
            raise err('other only applies with unknown = "other"')
        if kw["unknown"] == "missing" and kw["missing"] != "allow":
            raise err('unknown = "missing" needs missing = "allow" (an undeclared value would '
                      "become missing in a column that forbids it)")
    if kind == "set":
        delim = spec.get("delimiter", ";")
        if not isinstance(delim, str) or not delim or delim.strip() != delim:
            raise err("delimiter must be a non-empty string without spaces")
        if any(delim in v for v in kw["values"]):
            raise err("a value contains the delimiter")
        kw["delimiter"] = delim
        if "max_values" in spec:
            mx = spec["max_values"]
            if isinstance(mx, bool) or not isinstance(mx, int) or mx < 1:
                raise err("max_values must be a positive integer")
            kw["max_values"] = mx
    if kind == "numeric":
        if "bins" not in spec:
            raise err("kind 'numeric' needs public bin edges 'bins' (e.g. [0, 18, 25, 100]) "
                      f"or bins = {DP_QUANTILES!r} with count, range and resolution")
        edges = spec["bins"]
        dp_keys = sorted(k for k in ("count", "range", "resolution", "grid") if k in spec)
        if edges == DP_QUANTILES:
            kw["dp_bins"] = _parse_dp_bins(spec, err)
            if "bins_source" in spec:
                raise err(f"bins_source only applies to public bins, not bins = {DP_QUANTILES!r}")
            if "labels" in spec:
                names = _str_list(spec["labels"], "labels", err)
                if len(names) != kw["dp_bins"].count:
                    raise err("labels must have one entry per bin (count)")
                kw["bin_names"] = names
        elif dp_keys:
            raise err(f"key(s) {', '.join(dp_keys)} only apply with bins = {DP_QUANTILES!r}")
        if edges != DP_QUANTILES:
            kw.update(_parse_public_bins(spec, edges, err))
    if kind in ("numeric", "date"):
        kw["out_of_range"] = _choice(spec, "out_of_range", OUT_OF_RANGE_POLICIES, "error", err)
        if kw["out_of_range"] == "missing" and kw["missing"] != "allow":
            raise err('out_of_range = "missing" needs missing = "allow"')
    if kind == "date":
        kw["period"] = _choice(spec, "period", PERIODS, "year", err)
        if "start" not in spec or "end" not in spec:
            raise err("kind 'date' needs public 'start' and 'end' dates")
        kw["start"] = _as_date(spec["start"], "start", err)
        kw["end"] = _as_date(spec["end"], "end", err)
        if kw["end"] < kw["start"]:
            raise err("end is before start")
    col = ColumnSpec(**kw)
    if kind == "date":
        lo, hi = col.period_range
        if hi - lo + 1 > 10_000:
            raise err("date range holds more than 10000 periods")
    return col


@dataclass(frozen=True)
class Schema:
    """The declared input columns of a dataset, in encoded-column order.

    Attributes:
        columns: the declared input columns (``subject_id`` included).
        subject_id: name of the subject-id column, or ``None`` (one row = one person).
        extra_columns: ``"error"`` or ``"ignore"`` for input columns the schema does not declare.
        source: the config file it came from (named in error messages).
        hierarchies: public maps of a column's values onto a broader level
            (``[[hierarchies]]``, see :mod:`ptsynth.structure`).
        constraints: declared impossible combinations (``[[constraints]]``).
    """

    columns: list[ColumnSpec]
    subject_id: str | None = None
    extra_columns: str = "error"
    source: str | None = None
    hierarchies: tuple[Hierarchy, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    _zeros: tuple[StructuralZero, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        err = _Err(self.source)
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise err(f"column {dup[0]!r} is declared twice")
        if self.extra_columns not in ("error", "ignore"):
            raise err("extra_columns must be 'error' or 'ignore'")
        ids = [c.name for c in self.columns if c.kind == "subject_id"]
        if len(ids) > 1:
            raise err("more than one column has kind 'subject_id'")
        subject = self.subject_id
        if subject is None and ids:
            subject = ids[0]
        elif subject is not None:
            if ids and ids[0] != subject:
                raise err(f"[dataset] subject_id {subject!r} differs from the subject_id column {ids[0]!r}")
            if not ids:
                if subject in names:
                    raise _Err(self.source, subject)(
                        "is the [dataset] subject_id, so its kind must be 'subject_id'")
                self.columns.append(ColumnSpec(name=subject, kind="subject_id", missing="forbid"))
        object.__setattr__(self, "subject_id", subject)
        encoded = [d.name for c in self.columns for d in c.domains()]
        clash = sorted({n for n in encoded if encoded.count(n) > 1})
        if clash:
            raise err(f"encoded column name {clash[0]!r} occurs twice (a set member clashes with a column)")
        if not encoded:
            raise err("no columns to release (declare at least one non-id column)")
        object.__setattr__(self, "hierarchies", tuple(self.hierarchies))
        object.__setattr__(self, "constraints", tuple(self.constraints))
        zeros = check_structure(self.hierarchies, self.constraints,
                                {c.name: c for c in self.columns}, source=self.source)
        object.__setattr__(self, "_zeros", zeros)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_dict(
        cls,
        columns: Sequence[Mapping[str, Any]],
        *,
        subject_id: str | None = None,
        extra_columns: str = "error",
        missing_values: Sequence[str] = ("",),
        source: str | None = None,
        hierarchies: Sequence[Mapping[str, Any]] = (),
        constraints: Sequence[Mapping[str, Any]] = (),
    ) -> Schema:
        """Build from the ``[[columns]]`` list of a config (validated; see :func:`parse_column`),
        with its ``[[hierarchies]]`` and ``[[constraints]]`` (see :mod:`ptsynth.structure`)."""
        if not isinstance(columns, (list, tuple)) or not columns:
            raise _Err(source)("[[columns]] must declare at least one column")
        for key, tables in (("[[hierarchies]]", hierarchies), ("[[constraints]]", constraints)):
            if not isinstance(tables, (list, tuple)):
                raise SchemaError("must be an array of tables", file=source, key=key)
        specs = [
            parse_column(c, source=source, position=i, default_missing_values=missing_values)
            for i, c in enumerate(columns)
        ]
        return cls(
            specs, subject_id=subject_id, extra_columns=extra_columns, source=source,
            hierarchies=tuple(parse_hierarchy(h, source=source, position=i)
                              for i, h in enumerate(hierarchies)),
            constraints=tuple(parse_constraint(c, source=source, position=i)
                              for i, c in enumerate(constraints)),
        )

    # -- lookups ----------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column named {name!r}")

    @property
    def data_columns(self) -> list[ColumnSpec]:
        """Declared columns that are encoded (all but the subject id)."""
        return [c for c in self.columns if c.kind != "subject_id"]

    def encoded_domains(self) -> tuple[ColumnDomain, ...]:
        """Public domains of the encoded table, set columns expanded to member columns."""
        return tuple(d for c in self.columns for d in c.domains())

    @property
    def warnings(self) -> list[str]:
        """Things a steward should know about this schema before releasing with it."""
        out = []
        for c in self.data_columns:
            risky = [lab for lab in c.labels if is_formula_like(lab)]
            if risky:
                out.append(f"column {c.name!r}: {len(risky)} label(s) start with = + - @ or a "
                           "control character; public CSV files write them with a leading "
                           "apostrophe so spreadsheets show text, not a formula")
        return out

    @property
    def privacy_unit(self) -> str:
        """What one unit of the neighbouring relation is, from the config alone (public).

        With a subject id that may not be missing it is one person. With ``missing = "allow"``
        each row without an id is its own unit; without a subject id every row is. How many rows
        lack an id is a count from the data: it goes to the steward, never into a public file.
        """
        if self.subject_id is None:
            return ("one row (no subject id is declared: a person with several rows is protected "
                    "as several records, i.e. with a multiple of the stated epsilon)")
        if self.column(self.subject_id).missing == "allow":
            return ("one person where the subject id is present (rows sharing it are merged); each "
                    "row without a subject id is its own unit (missing = \"allow\")")
        return "one person (rows sharing a subject id are merged into one record)"

    @property
    def quasi_identifiers(self) -> list[str]:
        return [d.name for d in self.encoded_domains() if d.quasi_identifier]

    @property
    def sensitive(self) -> list[str]:
        return [d.name for d in self.encoded_domains() if d.sensitive]

    @property
    def structural_zeros(self) -> tuple[StructuralZero, ...]:
        """Impossible combinations over the encoded columns (from hierarchies whose parent is a
        declared column, and from constraints): public, never measured."""
        return self._zeros

    def hierarchy(self, column: str) -> tuple[Hierarchy, ...]:
        """The hierarchies above ``column`` (its generalisation levels)."""
        return tuple(h for h in self.hierarchies if h.column == column)

    @property
    def dp_bin_columns(self) -> list[ColumnSpec]:
        """Numeric columns whose DP bins are still to be measured (see :class:`DPBins`)."""
        return [c for c in self.columns if c.needs_dp_bins]

    def with_bin_edges(self, edges: Mapping[str, Sequence[float]]) -> Schema:
        """The schema with measured edges for these DP-bins columns (the *resolved* schema)."""
        unknown = sorted(set(edges) - {c.name for c in self.dp_bin_columns})
        if unknown:
            raise ValueError(f"not DP-bins columns: {', '.join(unknown)}")
        cols = [c.with_bins(edges[c.name]) if c.name in edges else c for c in self.columns]
        return Schema(cols, subject_id=self.subject_id, extra_columns=self.extra_columns,
                      source=self.source, hierarchies=self.hierarchies,
                      constraints=self.constraints)

    def with_candidate_grids(self) -> Schema:
        """Every DP-bins column binned by its whole public candidate grid: the records can be
        validated (numbers, range, per-person agreement at the grid's resolution) without
        measuring anything (``ptsynth validate``). Never a release schema: its bins are not
        the DP edges."""
        return self.with_bin_edges({c.name: c.dp_bins.points() for c in self.dp_bin_columns
                                    if c.dp_bins is not None})

    def to_dict(self) -> list[dict[str, Any]]:
        """``[[columns]]`` list, TOML-ready."""
        return [c.to_dict() for c in self.columns]

    def structure_dict(self) -> dict[str, list[dict[str, Any]]]:
        """``[[hierarchies]]`` and ``[[constraints]]`` (only those declared), TOML-ready."""
        out: dict[str, list[dict[str, Any]]] = {}
        if self.hierarchies:
            out["hierarchies"] = [h.to_dict() for h in self.hierarchies]
        if self.constraints:
            out["constraints"] = [c.to_dict() for c in self.constraints]
        return out

    def released(self) -> Schema:
        """The schema of the released records (``synthetic.csv``), as :meth:`decode` writes them.

        Why: a released file must be readable again with the same public domains (by
        ``ptsynth evaluate``, :class:`~ptsynth.release.bundle.Bundle` and a showcase): the
        subject id is not released, numeric columns hold bin labels and dates period labels, so
        those become ordinal columns over the same labels in the same order; missing is ``""``
        and spellings are already mapped. Encoding a decoded table with this schema gives the
        same codes.
        """
        cols = []
        for c in self.data_columns:
            common = {"name": c.name, "missing": c.missing, "quasi_identifier": c.quasi_identifier,
                      "sensitive": c.sensitive, "description": c.description}
            if c.kind == "set":
                cols.append(ColumnSpec(kind="set", values=c.values, delimiter=c.delimiter,
                                       max_values=c.max_values, **common))
            elif c.kind in ("numeric", "date"):
                cols.append(ColumnSpec(kind="ordinal", values=c.labels, **common))
            else:
                cols.append(ColumnSpec(kind=c.kind, values=c.values, **common))
        return Schema(cols, subject_id=None, extra_columns="error", source=self.source,
                      hierarchies=self.hierarchies, constraints=self.constraints)

    # -- SDV metadata (ptsynth.sdv; sdv itself is imported only by to_sdv) ----------------------
    @classmethod
    def from_sdv(cls, metadata: Any, *, domains: Any = None, table_name: str | None = None) -> Schema:
        """A schema from SDV ``Metadata`` (or its dict / JSON file) and **public** ``domains``.

        SDV metadata says each column's kind (``sdtype``) but not which values are public:
        ``range_values`` / ``range_min`` / ``range_max`` in it are usually detected from the
        data. ``domains`` gives them: a mapping column → values (categorical / ordinal), bin
        edges (numerical), a ``[[columns]]`` table, a :class:`ColumnSpec`, or ``"metadata"``
        (the metadata's own ranges are public); or a whole :class:`Schema`, release config or
        preset TOML path; or ``"metadata"`` for every column. A column left without a public
        domain is a :class:`~ptsynth.errors.SchemaError` naming it. ``table_name`` picks one
        table of multi-table metadata. See :mod:`ptsynth.sdv`.
        """
        from ptsynth.sdv import schema_from_sdv

        return schema_from_sdv(metadata, domains=domains, table_name=table_name)

    def to_sdv_dict(self, *, table_name: str = "table") -> dict[str, Any]:
        """This schema as an SDV ``Metadata`` dict (format ``V2``), without importing sdv."""
        from ptsynth.sdv import schema_to_sdv_dict

        return schema_to_sdv_dict(self, table_name=table_name)

    def to_sdv(self, *, table_name: str = "table") -> Any:
        """This schema as an ``sdv.metadata.Metadata`` (needs ``pip install 'ptsynth[sdv]'``)."""
        from ptsynth.sdv import schema_to_sdv

        return schema_to_sdv(self, table_name=table_name)

    # -- back to the input shape ---------------------------------------------------------------
    def dtypes(self) -> dict[str, pd.CategoricalDtype]:
        """The pandas dtype of each released column (see :meth:`decode` with ``typed=True``).

        Categories are the public labels: categorical columns unordered; ordinal, numeric (bin
        labels) and date (period labels) columns **ordered**; a set column's categories are its
        member combinations (declared order within a cell; fewer members first, then by the
        members' declared order), every combination when the set has at most
        :data:`MAX_SET_CATEGORY_MEMBERS` members. Wider sets have no fixed list of categories
        (``None`` here: their frame column is categorical over the combinations it holds).
        """
        out: dict[str, pd.CategoricalDtype] = {}
        for col in self.data_columns:
            if col.kind == "set":
                if len(col.values) <= MAX_SET_CATEGORY_MEMBERS:
                    out[col.name] = pd.CategoricalDtype(set_combinations(col.values, col.delimiter))
                else:
                    out[col.name] = None  # type: ignore[assignment]
            else:
                out[col.name] = pd.CategoricalDtype(
                    list(col.labels), ordered=col.kind in ("ordinal", "numeric", "date")
                )
        return out

    def decode(self, table: EncodedTable, *, typed: bool = False, categorical: bool = False
               ) -> pd.DataFrame:
        """Records in the input shape: one column per declared (non-id) column.

        ``typed=False`` (the CSV form): strings; set columns condensed into one cell joined with
        their delimiter (members in declared order), numeric columns hold bin labels, dates
        period labels; missing is ``""``. ``typed=True`` (what :class:`~ptsynth.Release`,
        :class:`~ptsynth.Bundle` and :class:`~ptsynth.DPSynthesizer` return, and
        ``synthetic.parquet`` stores): the same values as pandas categoricals over the public
        labels (:meth:`dtypes`; ordered for ordinal columns), missing as ``NaN``.
        Vectorised: categorical columns via label lookup arrays, set columns via a bit mask
        lookup (or column-wise concatenation when a set has many members).
        ``categorical``: pandas categoricals over the same strings (a byte or two per cell
        instead of an object pointer: what a release of millions of records returns).
        """
        if typed:
            return self._decode_typed(table)
        out: dict[str, Any] = {}
        n = table.n_records
        for col in self.data_columns:
            if col.kind == "set":
                idx = [table.index_of(col.member_name(v)) for v in col.values]
                present = table.codes[:, idx] == 0
                if categorical and len(col.values) <= 12:
                    bits = present.astype(np.int64) @ (1 << np.arange(len(col.values)))
                    lut = _member_lut(col.values, col.delimiter)
                    out[col.name] = _categorical(bits, lut)
                else:
                    out[col.name] = _join_members(present, col.values, col.delimiter)
                continue
            j = table.index_of(col.name)
            dom = table.domains[j]
            lut = np.array(list(dom.labels) + ([""] if dom.allows_missing else []), dtype=object)
            if categorical:
                out[col.name] = _categorical(table.codes[:, j], lut)
                continue
            codes = table.codes[:, j].astype(np.int64)
            out[col.name] = lut[codes] if n else np.empty(0, dtype=object)
        if categorical:
            return pd.DataFrame(out)
        return pd.DataFrame(out, dtype=object)

    def _decode_typed(self, table: EncodedTable) -> pd.DataFrame:
        dtypes = self.dtypes()
        out: dict[str, pd.Categorical] = {}
        for col in self.data_columns:
            dtype = dtypes[col.name]
            if col.kind == "set":
                idx = [table.index_of(col.member_name(v)) for v in col.values]
                present = table.codes[:, idx] == 0
                if dtype is None:  # too many members for a fixed category list
                    cells = _join_members(present, col.values, col.delimiter)
                    cells = np.where(cells == "", None, cells)
                    found = {v for v in cells if v is not None}
                    cats = _ordered_combinations(col.values, found, col.delimiter)
                    out[col.name] = pd.Categorical(cells, categories=cats)
                    continue
                m = len(col.values)
                bits = present.astype(np.int64) @ (1 << np.arange(m, dtype=np.int64))
                lut = _combination_codes(m)  # bit mask -> category code (-1: empty = missing)
                out[col.name] = pd.Categorical.from_codes(lut[bits], dtype=dtype)
                continue
            j = table.index_of(col.name)
            codes = table.codes[:, j].astype(np.int64)
            codes = np.where(codes >= len(col.labels), -1, codes)  # the missing code
            out[col.name] = pd.Categorical.from_codes(codes, dtype=dtype)
        return pd.DataFrame(out, index=pd.RangeIndex(table.n_records))

    def as_typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A frame of released values as strings (``synthetic.csv`` read with ``dtype=str``;
        missing ``""`` or ``NaN``) with this schema's categorical dtypes (:meth:`dtypes`).

        Raises :class:`SchemaError` naming the column (never the value) when a value is not
        one of the column's public labels.
        """
        dtypes = self.dtypes()
        out: dict[str, pd.Categorical] = {}
        for name, dtype in dtypes.items():
            if name not in frame.columns:
                raise SchemaError("column is missing from the frame", file=self.source, column=name)
            raw = frame[name].astype(object)
            cells = raw.where(raw.notna() & (raw.astype(str) != ""), None)
            if dtype is None:
                col = self.column(name)
                found = {str(v) for v in cells if v is not None}
                dtype = pd.CategoricalDtype(list(_ordered_combinations(col.values, found,
                                                                       col.delimiter)))
            values = pd.Categorical(cells.map(_label_text), dtype=dtype)
            if int(pd.isna(values).sum()) != int(cells.isna().sum()):
                raise SchemaError("holds a value that is not one of its public labels",
                                  file=self.source, column=name)
            out[name] = values
        return pd.DataFrame(out, index=frame.index)


    def write_csv(self, table: EncodedTable, path: str | Path, *, chunk_rows: int = 1 << 20
                  ) -> None:
        """``neutralise(decode(table)).to_csv(path, index=False)``, byte for byte, in row
        chunks (:mod:`ptsynth.spreadsheet`: cells that a spreadsheet would run as formulas get
        a leading apostrophe).

        Why: decoding ten million records into Python strings at once takes gigabytes. Each
        chunk becomes Arrow string columns (label lookups) written by Arrow's CSV writer, which
        quotes nothing: used only when no public label holds a delimiter, quote or line break
        (then pandas writes each chunk, quoting as it always did).
        """
        import csv
        import io

        import pyarrow as pa
        import pyarrow.csv as pacsv

        from ptsynth.spreadsheet import is_formula_like, neutralise

        names = [c.name for c in self.data_columns]
        luts = []
        for col in self.data_columns:
            if col.kind == "set":
                luts.append(list(_member_lut(col.values, col.delimiter))
                            if len(col.values) <= 12 else list(col.values) + [col.delimiter])
            else:
                dom = table.domain(col.name)
                luts.append(list(dom.labels) + ([""] if dom.allows_missing else []))
        plain = not any(ch in text for lut in luts for text in lut for ch in ',"\n\r')
        plain = plain and not any(ch in name for name in names for ch in ',"\n\r')
        with open(path, "w", encoding="utf-8", newline="") as fh:
            if not plain or table.n_records == 0:
                first = True
                for start in range(0, max(table.n_records, 1), chunk_rows):
                    part = table.take(np.arange(start, min(start + chunk_rows, table.n_records)))
                    neutralise(self.decode(part)).to_csv(fh, index=False, header=first)
                    first = False
                return
            head = io.StringIO()
            csv.writer(head, lineterminator="\n").writerow(names)
            fh.write(head.getvalue())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        with open(path, "ab") as fh:
            for start in range(0, table.n_records, chunk_rows):
                part = table.take(np.arange(start, min(start + chunk_rows, table.n_records)))
                frame = self.decode(part, categorical=True)
                arrays = [
                    pa.array([("'" + c) if is_formula_like(c) else c
                              for c in frame[name].cat.categories], pa.string())
                    .take(pa.array(frame[name].cat.codes.to_numpy()))
                    if isinstance(frame[name].dtype, pd.CategoricalDtype)
                    else pa.array(neutralise(frame[[name]])[name].to_numpy(dtype=object),
                                  pa.string())
                    for name in names
                ]
                pacsv.write_csv(pa.Table.from_arrays(arrays, names=names), fh, options)


def _label_text(value: Any) -> str | None:
    """A cell as its label: integral numbers (``pd.read_csv`` turns ``"1"`` into ``1.0``) as
    integers, everything else as text."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


#: Set columns with at most this many members get every member combination as a category
#: (2^m - 1 of them); wider sets are categorical over the combinations that occur.
MAX_SET_CATEGORY_MEMBERS = 8


def _combination_key(mask: int) -> tuple[int, tuple[int, ...]]:
    """Order of member combinations: fewer members first, then by the members' positions."""
    members = tuple(b for b in range(mask.bit_length()) if mask >> b & 1)
    return len(members), members


def _masks_in_order(m: int) -> list[int]:
    return sorted(range(1, 1 << m), key=_combination_key)


def set_combinations(values: Sequence[str], delimiter: str) -> list[str]:
    """Every non-empty combination of a set column's members as a released cell, in the
    order of :meth:`Schema.dtypes` (e.g. ``A``, ``B``, ``C``, ``A;B``, ``A;C``, ``B;C``, ``A;B;C``)."""
    return [delimiter.join(v for b, v in enumerate(values) if mask >> b & 1)
            for mask in _masks_in_order(len(values))]


def _combination_codes(m: int) -> np.ndarray:
    """Category code of each bit mask of ``m`` members (mask 0, the empty set: ``-1``)."""
    lut = np.full(1 << m, -1, dtype=np.int64)
    for code, mask in enumerate(_masks_in_order(m)):
        lut[mask] = code
    return lut


def _ordered_combinations(values: Sequence[str], found: set[str], delimiter: str) -> list[str]:
    """The combinations in ``found`` (released cells of a wide set) in the canonical order."""
    pos = {v: i for i, v in enumerate(values)}

    def key(cell: str) -> tuple[int, tuple[int, ...]]:
        members = tuple(sorted(pos.get(v, len(pos)) for v in cell.split(delimiter)))
        return len(members), members

    return sorted(found, key=key)


def _member_lut(values: Sequence[str], delim: str) -> np.ndarray:
    """Joined string of every member bit mask (sets of at most 12 members)."""
    m = len(values)
    return np.array(
        [delim.join(v for b, v in enumerate(values) if mask >> b & 1) for mask in range(1 << m)],
        dtype=object,
    )


def _categorical(codes: np.ndarray, lut: np.ndarray) -> pd.Categorical:
    """Strings ``lut[codes]`` as a categorical (repeated labels become one category)."""
    labels, first = np.unique(np.asarray(lut, dtype=str), return_index=True)
    del first
    remap = np.searchsorted(labels, np.asarray(lut, dtype=str)).astype(np.int32)
    return pd.Categorical.from_codes(remap[np.asarray(codes, dtype=np.int64)],
                                     categories=list(labels))


def _join_members(present: np.ndarray, values: Sequence[str], delim: str) -> np.ndarray:
    """Condense an ``(n, m)`` presence matrix into ``delim``-joined strings, vectorised."""
    n, m = present.shape
    if m <= 12:
        bits = present.astype(np.int64) @ (1 << np.arange(m, dtype=np.int64))
        lut = np.array(
            [delim.join(v for b, v in enumerate(values) if mask >> b & 1) for mask in range(1 << m)],
            dtype=object,
        )
        return lut[bits]
    result = np.full(n, "", dtype=object)
    for b, v in enumerate(values):  # loop over members, not rows
        sep = np.where(result == "", "", delim)
        result = np.where(present[:, b], result + sep + v, result)
    return result

