"""``ptsynth init``: a starter release config proposed from a data file.

Why it exists, and why it shouts: writing a schema by hand is the main hurdle for a first
release, so this proposes kinds and domains from the file. But every domain it proposes is read
from the *sensitive* records without spending privacy budget: a rare value (one victim's
citizenship) would be published simply by being in the domain. The config is therefore written
with ``[dataset] domains_confirmed = false`` and a loud comment block; a release must refuse or
flag it until a person has replaced each domain by a public code list (ISO codes, a codebook)
or confirmed it as public, and set ``domains_confirmed = true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import tomli_w

from ptsynth.ingest import ErrorReporter, column_as_strings, load_table

#: Most distinct values proposed as a categorical domain before the column is flagged.
MAX_CATEGORIES = 100
#: Numeric columns with at most this many distinct integers become ordinal.
MAX_ORDINAL = 30
_SET_DELIMS = (";", "|")

BANNER = """\
# ============================================================================================
#  STARTER CONFIG PROPOSED FROM THE DATA: NOT READY FOR A RELEASE.
#
#  Every `values`, `bins`, `start` and `end` below was READ FROM THE SENSITIVE RECORDS without
#  any privacy budget. A value that only one person has (a rare citizenship, an unusual age)
#  would be disclosed just by appearing in a released domain.
#
#  Before any release, for EVERY column:
#    * replace the domain by a PUBLIC code list (ISO 3166 countries, the CTDC codebook, agreed
#      age bands, ...) or confirm that each value is public knowledge, and
#    * check the proposed kind (categorical / ordinal / numeric / date / set / subject_id),
#      quasi_identifier and sensitive flags.
#  Then set `domains_confirmed = true` in [dataset]. ptsynth refuses or flags unconfirmed
#  domains. Also set [privacy] epsilon / delta and a dataset ledger deliberately.
# ============================================================================================
"""

GENERAL_WARNING = (
    "domains in the starter config were read from the sensitive data without privacy budget; "
    "replace them by public code lists or confirm them as public, then set "
    "[dataset] domains_confirmed = true before any release"
)


def _nice_edges(lo: float, hi: float, n_bins: int = 10) -> list[float]:
    """Round equal-width edges covering [lo, hi] (hi strictly inside the last bin)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n_bins
    mag = 10 ** np.floor(np.log10(raw))
    step = float(min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag))
    start = np.floor(lo / step) * step
    count = int(np.floor((hi - start) / step)) + 1
    edges = start + step * np.arange(count + 1)
    return [int(e) if float(e).is_integer() else float(e) for e in edges]


def _propose(name: str, arr: pa.Array, warnings: list[str]) -> dict[str, Any]:
    """Propose one ``[[columns]]`` entry from a column's non-missing distinct values."""
    strings = pc.utf8_trim_whitespace(arr)
    present = pc.drop_null(pc.filter(strings, pc.not_equal(strings, "")))
    n_present = len(present)
    distinct = pc.unique(present)
    n_distinct = len(distinct)
    values = [str(v) for v in distinct.to_pylist()]
    entry: dict[str, Any] = {"name": name}
    lowered = name.lower()
    if n_present and lowered.endswith("id") and n_distinct > 0.5 * n_present:
        entry["kind"] = "subject_id"
        return entry
    nums = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    if n_distinct and nums.notna().all():
        if (nums == np.floor(nums)).all() and 3 <= n_distinct <= MAX_ORDINAL:
            order = np.argsort(nums.to_numpy(), kind="stable")
            entry.update(kind="ordinal", values=[values[i] for i in order])
        else:
            entry.update(kind="numeric", bins=_nice_edges(float(nums.min()), float(nums.max())),
                         out_of_range="clip")
            warnings.append(f"column {name!r}: bin edges were derived from the data's range; "
                            "use public edges")
        return entry
    if n_distinct:
        dates = pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", errors="coerce")
        if dates.notna().all() and all(len(v) >= 7 for v in values):
            entry.update(kind="date", period="year", start=f"{dates.min().year:04d}-01-01",
                         end=f"{dates.max().year:04d}-12-31", out_of_range="clip")
            warnings.append(f"column {name!r}: date range was derived from the data; use public limits")
            return entry
    for delim in _SET_DELIMS:
        if n_distinct and pc.any(pc.match_substring(present, delim)).as_py():
            members = pc.unique(pc.utf8_trim_whitespace(pc.list_flatten(pc.split_pattern(present, delim))))
            member_values = sorted(v for v in members.to_pylist() if v)
            if len(member_values) <= MAX_CATEGORIES:
                entry.update(kind="set", values=member_values, delimiter=delim)
                return entry
    entry.update(kind="categorical", values=sorted(values))
    if n_distinct > MAX_CATEGORIES:
        warnings.append(f"column {name!r}: {n_distinct} distinct values; consider a coarser public "
                        "coding or extra_columns = \"ignore\" and dropping it")
    if n_distinct == 0:
        entry["values"] = ["REPLACE_ME"]
        warnings.append(f"column {name!r}: no values found; declare its public domain")
    return entry


def write_starter_config(data_path: str | Path, out_path: str | Path) -> list[str]:
    """Write a starter TOML for ``data_path`` to ``out_path``; return warnings (never values).

    The config is marked ``domains_confirmed = false``: see the module docstring.
    """
    data_path, out_path = Path(data_path), Path(out_path)
    rep = ErrorReporter(str(data_path), 2)
    table = load_table(data_path, rep)
    warnings = [GENERAL_WARNING]
    columns = []
    for name in table.column_names:
        arr = column_as_strings(table.column(name), rep, name)
        columns.append(_propose(name.strip(), arr, warnings))
    ids = [c["name"] for c in columns if c["kind"] == "subject_id"]
    for extra in ids[1:]:  # only one subject id: the others become plain categorical columns
        warnings.append(f"column {extra!r}: looks like an identifier; it is declared categorical, "
                        "drop it or set extra_columns = \"ignore\"")
        col = next(c for c in columns if c["name"] == extra)
        col.update(kind="categorical", values=["REPLACE_ME"])
    dataset: dict[str, Any] = {
        "name": data_path.stem,
        "extra_columns": "error",
        "domains_confirmed": False,
    }
    if ids:
        dataset["subject_id"] = ids[0]
        warnings.append(f"column {ids[0]!r} was taken as the subject id (rows sharing it merge)")
    doc = {
        "dataset": dataset,
        "privacy": {"epsilon": 1.0, "delta": 1e-6},
        "release": {"reporting_length": 3, "k": 10, "synthesizer": "aggregate"},
        "evaluation": {"holdout_fraction": 0.2},
        "columns": columns,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    tmp.write_text(BANNER + "\n" + tomli_w.dumps(doc, multiline_strings=False), encoding="utf-8")
    tmp.replace(out_path)
    return warnings
