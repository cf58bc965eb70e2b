"""SDV interop: a ptsynth :class:`~ptsynth.schema.Schema` ⇄ SDV ``Metadata`` (SDV 2.x).

Why its own module: researchers describe their tables with SDV's ``Metadata``; a bundle publishes
``metadata.json`` so that ``sdv.evaluation.evaluate_quality`` / ``run_diagnostic`` read the
released records as they are. The conversion works on SDV's JSON form (format ``V2``: ``{"tables":
{name: {"columns": {col: {"sdtype": ...}}, "primary_key": ...}}, "relationships": [],
"METADATA_SPEC_VERSION": "V2"}``; the older single-table and ``V1`` forms are read too), so the
core never imports ``sdv``: only :func:`schema_to_sdv` does, to return a ``Metadata`` object.

What SDV metadata can and cannot say about privacy
--------------------------------------------------
An ``sdtype`` is public (it says how a column is coded). Value domains are another matter: SDV
2.x metadata may carry ``range_values`` (categorical / ordinal), ``range_min`` / ``range_max``
(numerical, datetime), but ``Metadata.detect_from_dataframe`` fills them **from the data**, so a
rare value in them would be published through the domain. ptsynth therefore treats them as
*unconfirmed* unless the caller says they are public (``domains="metadata"``). Public domains
come from ``domains=``:

* a mapping column → a list of values (categorical / ordinal; ordinal in order), a list of bin
  edges (numerical), a ``[[columns]]`` table without its name (``{"kind": "set", "values": [...]}``,
  ``{"period": "quarter", "start": "2002-01-01", "end": "2023-12-31"}``, ...), a
  :class:`~ptsynth.schema.ColumnSpec`, or ``"metadata"`` (this column's metadata range is public);
* a :class:`~ptsynth.schema.Schema`, a :class:`~ptsynth.config.ReleaseConfig` or the path of a
  preset / release config (TOML): its columns, by name;
* ``"metadata"``: every range in the metadata is public (e.g. the ``metadata.json`` of a ptsynth
  bundle, whose ranges are the release's public domains).

``boolean`` columns need no domain (``False`` / ``True`` is public by definition). The primary
key becomes the subject id (rows sharing it are one person; it is never synthesized). Other
``id`` columns and personal-data sdtypes (``email``, ``phone_number``, ``pii`` columns, ...) are
refused: a DP synthesizer does not release them.

sdtype ↔ kind: categorical ↔ categorical; ordinal ↔ ordinal; numerical ↔ numeric (SDV keeps
only the range: bin edges must be given, or are made as 10 round equal-width bins over a public
range); datetime ↔ date (``start`` / ``end`` from the range, ``period`` year unless given);
boolean → categorical ``False`` / ``True``; set → categorical over its member combinations.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ptsynth.errors import ConfigError, InputError, SchemaError
from ptsynth.schema import (
    MAX_SET_CATEGORY_MEMBERS,
    ColumnSpec,
    Schema,
    parse_column,
    set_combinations,
)

#: Table name used when none is given (SDV's own default).
TABLE_NAME = "table"
#: The metadata format written (SDV 2.x ``Metadata.METADATA_SPEC_VERSION``).
SPEC_VERSION = "V2"
#: sdtypes ptsynth synthesizes, and the column kind each becomes by default.
SDTYPE_KINDS = {
    "categorical": "categorical",
    "ordinal": "ordinal",
    "boolean": "categorical",
    "numerical": "numeric",
    "datetime": "date",
}
#: The public domain of a boolean column, and the spellings mapped onto it.
BOOLEAN_VALUES = ("False", "True")
_BOOLEAN_MAP = {"false": "False", "true": "True", "FALSE": "False", "TRUE": "True"}
#: How dates are written in metadata produced here.
DATE_FORMAT = "%Y-%m-%d"
#: Equal-width bins made over a numerical range when no edges are given.
RANGE_BINS = 10


def import_sdv() -> Any:
    """The ``sdv`` package, or a :class:`ConfigError` saying how to install it."""
    try:
        import sdv  # noqa: F401
        from sdv.metadata import Metadata
    except ImportError:
        raise ConfigError("needs the sdv package: pip install 'ptsynth[sdv]'", key="sdv") from None
    return Metadata


# ---------------------------------------------------------------------------------------------
# reading SDV metadata in any of its forms
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SdvTable:
    """One table of SDV metadata: its name, columns (name → column metadata) and primary key."""

    name: str
    columns: dict[str, dict[str, Any]]
    primary_key: str | None = None

    def sdtype(self, column: str) -> str:
        return str(self.columns[column].get("sdtype", "unknown"))

    @property
    def datetime_formats(self) -> dict[str, str]:
        """``datetime_format`` of each datetime column that declares one."""
        return {name: str(meta["datetime_format"]) for name, meta in self.columns.items()
                if meta.get("sdtype") == "datetime" and meta.get("datetime_format")}


def _metadata_dict(metadata: Any) -> dict[str, Any]:
    if isinstance(metadata, (str, Path)):
        path = Path(metadata)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SchemaError("no such SDV metadata file", file=str(path)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise SchemaError("is not readable JSON", file=str(path)) from None
        return _metadata_dict(data)
    if isinstance(metadata, Mapping):
        return dict(metadata)
    to_dict = getattr(metadata, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        if isinstance(data, Mapping):
            return dict(data)
    raise SchemaError("metadata must be an SDV Metadata, its dict, or a metadata.json path")


def read_metadata(metadata: Any, *, table_name: str | None = None) -> SdvTable:
    """The single table of SDV metadata (a ``Metadata``, a ``SingleTableMetadata``, their
    ``to_dict()`` or a JSON file). More than one table is a :class:`SchemaError`: ptsynth
    synthesizes one table (one record per person)."""
    data = _metadata_dict(metadata)
    version = str(data.get("METADATA_SPEC_VERSION", SPEC_VERSION))
    if "tables" in data:
        tables = data["tables"]
        if not isinstance(tables, Mapping) or not tables:
            raise SchemaError("SDV metadata holds no table")
        if table_name is None:
            if len(tables) != 1:
                raise SchemaError(f"SDV metadata holds {len(tables)} tables; ptsynth synthesizes "
                                  "one (pass table_name=...)")
            table_name = next(iter(tables))
        if table_name not in tables:
            raise SchemaError(f"SDV metadata has no table {table_name!r}")
        table = tables[table_name]
    else:
        table, table_name = data, table_name or TABLE_NAME
    if not isinstance(table, Mapping) or not isinstance(table.get("columns"), Mapping):
        raise SchemaError(f"SDV metadata table {table_name!r} has no columns")
    columns: dict[str, dict[str, Any]] = {}
    for name, meta in table["columns"].items():
        if not isinstance(meta, Mapping) or not isinstance(meta.get("sdtype"), str):
            raise SchemaError("column metadata must be a table with an sdtype", column=str(name))
        meta = dict(meta)
        if not version.endswith("V2"):  # SDV 1.x: an ordered categorical is an ordinal
            if meta["sdtype"] == "categorical" and "order" in meta:
                meta["sdtype"], meta["range_values"] = "ordinal", meta.pop("order")
            meta.pop("order_by", None)
            meta.pop("computer_representation", None)
        columns[str(name)] = meta
    pk = table.get("primary_key")
    if isinstance(pk, list):
        if len(pk) != 1:
            raise SchemaError("a composite primary key cannot be a person's identifier")
        pk = pk[0]
    if pk is not None and str(pk) not in columns:
        raise SchemaError("the primary key is not one of the columns", column=str(pk))
    return SdvTable(str(table_name), columns, None if pk is None else str(pk))


# ---------------------------------------------------------------------------------------------
# public domains
# ---------------------------------------------------------------------------------------------
def _domain_mapping(domains: Any) -> tuple[dict[str, Any], bool, bool]:
    """``(column → domain, every range in the metadata is public, mapping given explicitly)``."""
    if domains is None:
        return {}, False, False
    if isinstance(domains, str) and domains == "metadata":
        return {}, True, False
    if isinstance(domains, Schema):
        return {c.name: c for c in domains.columns}, False, False
    from ptsynth.config import ReleaseConfig

    if isinstance(domains, (str, Path)):
        domains = ReleaseConfig.load(domains)
    if isinstance(domains, ReleaseConfig):
        if not domains.domains_confirmed:
            raise SchemaError("the config's domains are not confirmed public (domains_confirmed "
                              "= false): it cannot supply public domains",
                              file=str(domains.path) if domains.path else None)
        return {c.name: c for c in domains.schema.columns}, False, False
    if isinstance(domains, Mapping):
        return {str(k): v for k, v in domains.items()}, False, True
    raise SchemaError("domains must be a mapping column -> values, a Schema, a release config "
                      "or its path, or 'metadata'")


def _default_kind(sdtype: str) -> str:
    return SDTYPE_KINDS.get(sdtype, "categorical")


def _boolean_spec(name: str) -> ColumnSpec:
    return parse_column({"name": name, "kind": "categorical", "values": list(BOOLEAN_VALUES),
                         "map": dict(_BOOLEAN_MAP)})


def _spec_from_value(name: str, sdtype: str, meta: Mapping[str, Any], value: Any) -> ColumnSpec:
    """A column's spec from what the caller gave as its public domain."""
    if isinstance(value, ColumnSpec):
        return value if value.name == name else replace(value, name=name)
    if isinstance(value, str) and value == "metadata":
        spec = _spec_from_ranges(name, sdtype, meta, public=True)
        if spec is None:
            raise SchemaError("domains says the metadata's range is public, but the metadata "
                              "holds no range for this column", column=name)
        return spec
    if isinstance(value, Mapping):
        entry = {"kind": _default_kind(sdtype), **dict(value), "name": name}
        return parse_column(entry)
    if isinstance(value, (list, tuple, np.ndarray, pd.Index)):
        items = list(value)
        if sdtype == "numerical":
            return parse_column({"name": name, "kind": "numeric", "bins": items})
        if sdtype == "datetime":
            raise SchemaError("a datetime column's public domain is a table "
                              "{period = ..., start = ..., end = ...}", column=name)
        kind = "ordinal" if sdtype == "ordinal" else "categorical"
        return parse_column({"name": name, "kind": kind,
                             "values": [v if isinstance(v, str) else _plain(v) for v in items]})
    raise SchemaError("a public domain must be a list of values, bin edges, a table or "
                      "'metadata'", column=name)


def _plain(value: Any) -> str:
    """A value as ingest spells it: integral floats as integers, booleans as False / True."""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _as_date(value: Any, fmt: str | None) -> _dt.date | None:
    try:
        ts = pd.to_datetime(value, format=fmt) if fmt else pd.to_datetime(value)
    except (ValueError, TypeError):
        return None
    return None if pd.isna(ts) else ts.date()


def _nice_edges(lo: float, hi: float) -> list[int | float]:
    """About :data:`RANGE_BINS` round bins covering ``[lo, hi]`` (the top inside the last one)."""
    from ptsynth.ingest.propose import round_edges

    integer = float(lo).is_integer() and float(hi).is_integer()
    return round_edges(float(lo), float(hi), integer=integer, target=RANGE_BINS)


def _spec_from_ranges(name: str, sdtype: str, meta: Mapping[str, Any], *,
                      public: bool) -> ColumnSpec | None:
    """A spec from the metadata's own ranges (``None`` when it has none). ``public``: the
    caller vouched for them, so ``range_is_nullable: false`` also forbids missing values."""
    if sdtype == "boolean":
        return _boolean_spec(name)
    common = {"name": name}
    if public and meta.get("range_is_nullable") is False:
        common["missing"] = "forbid"
    if sdtype in ("categorical", "ordinal"):
        values = meta.get("range_values")
        if not values:
            return None
        return parse_column({**common, "kind": _default_kind(sdtype),
                             "values": [_plain(v) for v in values]})
    lo, hi = meta.get("range_min"), meta.get("range_max")
    if lo is None or hi is None:
        return None
    if sdtype == "numerical":
        # round edges whose last bin holds the top of the range (bins are half-open)
        return parse_column({**common, "kind": "numeric",
                             "bins": _nice_edges(float(lo), float(hi))})
    if sdtype == "datetime":
        fmt = meta.get("datetime_format")
        start, end = _as_date(lo, fmt), _as_date(hi, fmt)
        if start is None or end is None:
            return None
        return parse_column({**common, "kind": "date", "period": "year",
                             "start": start, "end": end})
    return None


def _frame_strings(series: pd.Series, name: str) -> list[str]:
    """Distinct non-missing values of a frame column, spelled as ingest reads them."""
    from ptsynth.ingest import ErrorReporter, column_as_strings

    arr = column_as_strings(pa.array(series, from_pandas=True), ErrorReporter(None, 2), name)
    arr = pc.utf8_trim_whitespace(arr)
    present = pc.drop_null(pc.filter(arr, pc.not_equal(arr, "")))
    return [str(v) for v in pc.unique(present).to_pylist()]


def _spec_from_frame(name: str, sdtype: str, series: pd.Series, fmt: str | None) -> ColumnSpec:
    """A spec read from the records themselves: **not public** (NOT FOR RELEASE)."""
    if sdtype == "boolean":
        return _boolean_spec(name)
    if sdtype == "numerical":
        nums = pd.to_numeric(series, errors="coerce").dropna()
        if nums.empty:
            raise SchemaError("no numbers to derive bins from", column=name)
        return parse_column({"name": name, "kind": "numeric",
                             "bins": _nice_edges(float(nums.min()), float(nums.max()))})
    if sdtype == "datetime":
        dates = pd.to_datetime(series, format=fmt, errors="coerce") if fmt else \
            pd.to_datetime(series, errors="coerce", format="mixed")
        dates = dates.dropna()
        if dates.empty:
            raise SchemaError("no dates to derive a range from", column=name)
        return parse_column({"name": name, "kind": "date", "period": "year",
                             "start": f"{dates.min().year:04d}-01-01",
                             "end": f"{dates.max().year:04d}-12-31"})
    values = _frame_strings(series, name)
    if not values:
        raise SchemaError("no values to derive a domain from", column=name)
    nums = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    if nums.notna().all():
        values = [values[i] for i in np.argsort(nums.to_numpy(), kind="stable")]
    else:
        values = sorted(values)
    return parse_column({"name": name, "kind": _default_kind(sdtype), "values": values})


@dataclass(frozen=True)
class ResolvedSchema:
    """SDV metadata with the public domains resolved column by column.

    ``specs[name]`` is ``None`` where no public domain was given: :meth:`schema` then fills
    the column from the metadata's ranges or the frame, and reports it as unconfirmed.
    """

    table: SdvTable
    specs: dict[str, ColumnSpec | None]
    subject_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def unconfirmed(self) -> list[str]:
        return [name for name, spec in self.specs.items() if spec is None]

    def schema(self, frame: pd.DataFrame | None = None) -> Schema:
        """The schema; unconfirmed columns come from the metadata's ranges, else ``frame``
        (values read from the records: the caller must flag the result NOT FOR RELEASE)."""
        columns = []
        for name, spec in self.specs.items():
            if spec is None:
                sdtype, meta = self.table.sdtype(name), self.table.columns[name]
                spec = _spec_from_ranges(name, sdtype, meta, public=False)
                if spec is None:
                    if frame is None or name not in frame.columns:
                        raise SchemaError("no public domain and no data to read one from",
                                          column=name)
                    spec = _spec_from_frame(name, sdtype, frame[name], meta.get("datetime_format"))
            columns.append(spec)
        return Schema(columns, subject_id=self.subject_id)


def resolve(metadata: Any, *, domains: Any = None, table_name: str | None = None) -> ResolvedSchema:
    """Match SDV metadata with public ``domains`` (see the module docstring)."""
    table = read_metadata(metadata, table_name=table_name)
    given, all_metadata, explicit = _domain_mapping(domains)
    if explicit:
        unknown = sorted(set(given) - set(table.columns))
        if unknown:
            raise SchemaError("domains names a column the metadata does not have",
                              column=unknown[0])
    specs: dict[str, ColumnSpec | None] = {}
    subject_id = None
    for name, meta in table.columns.items():
        sdtype = str(meta["sdtype"])
        preset = given.get(name)
        if name == table.primary_key:
            subject_id = name
            specs[name] = ColumnSpec(name=name, kind="subject_id", missing="forbid")
            continue
        if isinstance(preset, ColumnSpec) and preset.kind == "subject_id":
            subject_id = name
            specs[name] = preset
            continue
        if sdtype not in SDTYPE_KINDS:
            if sdtype == "id":
                rule = ("is an id column but not the primary key. If it identifies the person, "
                        "make it the primary key (metadata.set_primary_key): rows sharing it are "
                        "then one person, never synthesized. Otherwise drop it: ptsynth does not "
                        "synthesize identifiers")
            else:
                rule = (f"has sdtype {sdtype!r} (personal data or unknown): a DP synthesizer does "
                        "not release it; drop the column from the frame and the metadata")
            raise SchemaError(rule, column=name)
        if preset is not None:
            specs[name] = _spec_from_value(name, sdtype, meta, preset)
        elif sdtype == "boolean":
            specs[name] = _boolean_spec(name)
        elif all_metadata:  # a column without a range stays unconfirmed
            specs[name] = _spec_from_ranges(name, sdtype, meta, public=True)
        else:
            specs[name] = None
    return ResolvedSchema(table, specs, subject_id)


def schema_from_sdv(metadata: Any, *, domains: Any = None, table_name: str | None = None) -> Schema:
    """:meth:`Schema.from_sdv <ptsynth.schema.Schema.from_sdv>`: every column needs a public
    domain; the columns without one are named in the :class:`SchemaError`."""
    resolved = resolve(metadata, domains=domains, table_name=table_name)
    missing = resolved.unconfirmed
    if missing:
        raise SchemaError(
            f"no public domain for {len(missing)} column(s) ({', '.join(missing)}): SDV metadata "
            "holds none that is known to be public (its range_values are usually detected from "
            "the data). Pass domains={column: values or bin edges} from a code list, a preset "
            "config, or domains='metadata' if the metadata's ranges are public"
        )
    return resolved.schema()


# ---------------------------------------------------------------------------------------------
# writing SDV metadata
# ---------------------------------------------------------------------------------------------
def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else float(x)


def column_to_sdv(col: ColumnSpec) -> dict[str, Any]:
    """SDV column metadata of one declared column (its public domain as SDV ranges)."""
    nullable = {"range_is_nullable": bool(col.allows_missing)}
    if col.kind == "subject_id":
        return {"sdtype": "id"}
    if col.kind in ("categorical", "ordinal"):
        return {"sdtype": col.kind, "range_values": list(col.values), **nullable}
    if col.kind == "set":
        out: dict[str, Any] = {"sdtype": "categorical"}
        if len(col.values) <= MAX_SET_CATEGORY_MEMBERS:
            out["range_values"] = set_combinations(col.values, col.delimiter)
        return {**out, "range_is_nullable": True}
    if col.kind == "numeric":
        out = {"sdtype": "numerical"}
        if col.bins and col.out_of_range == "error":  # clipped values may lie outside the edges
            out.update(range_min=_number(col.bins[0]), range_max=_number(col.bins[-1]))
        return {**out, **nullable}
    if col.kind == "date":
        out = {"sdtype": "datetime", "datetime_format": DATE_FORMAT}
        if col.out_of_range == "error" and col.start is not None and col.end is not None:
            out.update(range_min=col.start.strftime(DATE_FORMAT),
                       range_max=col.end.strftime(DATE_FORMAT))
        return {**out, **nullable}
    raise SchemaError(f"kind {col.kind!r} has no SDV form", column=col.name)  # pragma: no cover


def schema_to_sdv_dict(schema: Schema, *, table_name: str = TABLE_NAME) -> dict[str, Any]:
    """:meth:`Schema.to_sdv_dict <ptsynth.schema.Schema.to_sdv_dict>` (JSON-ready)."""
    table: dict[str, Any] = {"columns": {c.name: column_to_sdv(c) for c in schema.columns}}
    if schema.subject_id is not None:
        table["primary_key"] = schema.subject_id
    return {"METADATA_SPEC_VERSION": SPEC_VERSION, "tables": {table_name: table},
            "relationships": []}


def schema_to_sdv(schema: Schema, *, table_name: str = TABLE_NAME) -> Any:
    """:meth:`Schema.to_sdv <ptsynth.schema.Schema.to_sdv>`: an ``sdv.metadata.Metadata``."""
    metadata_cls = import_sdv()
    return metadata_cls.load_from_dict(schema_to_sdv_dict(schema, table_name=table_name))


# ---------------------------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------------------------
def parse_datetimes(frame: pd.DataFrame, formats: Mapping[str, str]) -> pd.DataFrame:
    """Datetime columns written in an SDV ``datetime_format`` → timestamps ingest can read.

    A value that does not match the format is an :class:`InputError` naming the column and
    the number of such values, never a value.
    """
    if not formats:
        return frame
    frame = frame.copy()
    for name, fmt in formats.items():
        if name not in frame.columns or pd.api.types.is_datetime64_any_dtype(frame[name]):
            continue
        raw = frame[name]
        present = raw.notna() & (raw.astype(str).str.strip() != "")
        parsed = pd.to_datetime(raw.where(present, None), format=fmt, errors="coerce")
        bad = int((present & parsed.isna()).sum())
        if bad:
            raise InputError(f"{bad} value(s) do not match the metadata's datetime_format",
                             column=name)
        frame[name] = parsed
    return frame


__all__: Sequence[str] = (
    "BOOLEAN_VALUES",
    "ResolvedSchema",
    "SdvTable",
    "column_to_sdv",
    "import_sdv",
    "parse_datetimes",
    "read_metadata",
    "resolve",
    "schema_from_sdv",
    "schema_to_sdv",
    "schema_to_sdv_dict",
)
