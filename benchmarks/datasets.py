"""Benchmark data loaders: the same public tables, in the same categorical shape, for every method.

Why one module: a peer comparison only means something if every method sees exactly the same
columns, the same binning and the same missing-value convention. Each loader returns a
:class:`BenchData` whose ``frame`` holds **strings only**; a missing value is the empty string
``""``, kept as a category of its own (it is counted like any other value by the metric).

Public domains
--------------
Where the public documentation states a column's domain (Adult's ``adult-domain.json``, NIST's
``national2019.json``, our own bins) the loader returns it in ``domains``; ptsynth's methods use
it, so they pay nothing for it. CTDC's condensed file has no machine-readable domain for the
``;``-joined multi-value combinations, so its domain is read from the data: that read is **not
paid for with privacy budget** and is flagged in ``domain_source`` (benchmark only; a release
takes its domains from the schema). The peers (pac-synth, SmartNoise) read their domains from
the data anyway (pac-synth through a DP threshold, SmartNoise's transformer without budget).

Nothing here prints a row or a value read from a record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: Missing value in every benchmark frame.
MISSING = ""

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$PTSYNTH_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("PTSYNTH_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


class DatasetUnavailable(Exception):
    """A benchmark dataset is absent here; the message says why (never a data value)."""


@dataclass
class BenchData:
    """One benchmark table.

    Attributes:
        name: short key (``ctdc_vp``, ``nist``, ``adult``, ``demo``).
        frame: string-valued DataFrame, ``""`` = missing.
        domains: per column, the public non-missing labels, or ``None`` where unknown.
        domain_source: where ``domains`` came from; says so loudly when read from the data.
        notes: preprocessing choices, for the README and the JSON report.
        nullable: columns that may be missing (public, like ``domains``); ``None`` = all.
            A column that never misses gets no missing code in its encoded domain (ptsynth's
            aggregate synthesizer treats a missing code as "attribute absent").
    """

    name: str
    frame: pd.DataFrame
    domains: dict[str, list[str]] | None
    domain_source: str
    notes: list[str] = field(default_factory=list)
    nullable: set[str] | None = None


def _read_str_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetUnavailable(f"file not found: {path}")
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)


# -- CTDC victim-perpetrator synthetic (condensed) -------------------------------------------
def load_ctdc_vp(root: Path | None = None) -> BenchData:
    """All 16 columns; each distinct ``;``-joined multi-value cell is one category."""
    root = shared_data_dir() if root is None else root
    df = _read_str_csv(root / "ctdc_vp" / "CTDC_VPsynthetic_condensed.csv")
    domains = {c: sorted(v for v in df[c].unique() if v != MISSING) for c in df.columns}
    return BenchData(
        "ctdc_vp",
        df,
        domains,
        "READ FROM THE DATA, NOT PAID FOR WITH BUDGET (benchmark only; CTDC publishes no "
        "machine-readable domain for multi-value combinations)",
        [
            "16 columns as published; blank = missing, kept as its own category",
            "multi-valued cells (e.g. 'Female;Male') kept whole: each distinct ';'-joined "
            "combination is one category",
        ],
        nullable={c for c in df.columns if (df[c] == MISSING).any()},
    )


# -- NIST Diverse Communities, national2019 ----------------------------------------------------
#: The 19 columns kept (24 minus PWGTP, WGTP weights; INDP and PINCP, high-cardinality, whose
#: coarse versions INDP_CAT and PINCP_DECILE are kept; DENSITY, a per-PUMA constant).
NIST_COLUMNS = (
    "PUMA", "AGEP", "SEX", "MSP", "HISP", "RAC1P", "NOC", "NPF", "HOUSING_TYPE", "OWN_RENT",
    "INDP_CAT", "EDU", "PINCP_DECILE", "POVPIP", "DVET", "DREM", "DPHY", "DEYE", "DEAR",
)  # fmt: skip
AGE_EDGES = np.arange(0, 101, 10)
AGE_LABELS = [f"{a}-{a + 9}" for a in AGE_EDGES[:-1]]
POVPIP_EDGES = np.array([0, 100, 200, 300, 400, 501, 10**6])
POVPIP_LABELS = ["0-99", "100-199", "200-299", "300-399", "400-500", "501"]


def _band(values: pd.Series, edges: np.ndarray, labels: list[str], null: str) -> pd.Series:
    """Vectorised binning of a numeric string column; ``null`` (NIST's 'N') → missing."""
    is_null = values == null
    num = pd.to_numeric(values.where(~is_null), errors="raise").to_numpy(dtype=np.float64)
    idx = np.searchsorted(edges, num, side="right") - 1
    ok = ~is_null.to_numpy() & (idx >= 0) & (idx < len(labels))
    if (~is_null.to_numpy() & ~ok).any():
        raise ValueError(f"column {values.name!r}: value outside the public bin edges")
    out = np.full(len(values), MISSING, dtype=object)
    out[ok] = np.asarray(labels, dtype=object)[idx[ok]]
    return pd.Series(out, index=values.index, name=values.name)


def load_nist(root: Path | None = None, *, name: str = "national2019") -> BenchData:
    """19 categorical columns of NIST's ACS excerpt; AGEP and POVPIP in public bands."""
    root = shared_data_dir() if root is None else root
    df = _read_str_csv(root / "nist" / f"{name}.csv")
    meta_path = root / "nist" / f"{name}.json"
    schema = json.loads(meta_path.read_text())["schema"] if meta_path.is_file() else {}
    df = df[list(NIST_COLUMNS)].copy()
    df["AGEP"] = _band(df["AGEP"], AGE_EDGES, AGE_LABELS, null="N")
    df["POVPIP"] = _band(df["POVPIP"], POVPIP_EDGES, POVPIP_LABELS, null="N")
    domains: dict[str, list[str]] = {"AGEP": AGE_LABELS, "POVPIP": POVPIP_LABELS}
    for c in NIST_COLUMNS:
        if c in domains:
            continue
        values = schema.get(c, {}).get("values")
        if not isinstance(values, list):
            raise DatasetUnavailable(f"{meta_path.name}: no public value list for column {c}")
        domains[c] = [str(v) for v in values if str(v) != "N"]
    df = df.mask(df == "N", MISSING)  # NIST's null marker → our missing category
    return BenchData(
        "nist",
        df,
        domains,
        f"public: {meta_path.name} value lists; AGEP and POVPIP bands fixed in this module",
        [
            "19 of 24 columns: dropped PWGTP, WGTP (weights), INDP (264 codes; INDP_CAT kept), "
            "PINCP (income; PINCP_DECILE kept), DENSITY (one value per PUMA: redundant)",
            "AGEP in 10-year bands 0-9 .. 90-99; POVPIP in bands 0-99 .. 400-500 and 501 (top code)",
            "'N' (not applicable) = missing, kept as its own category",
        ],
        nullable={c for c in NIST_COLUMNS if schema.get(c, {}).get("has_null")},
    )


# -- UCI Adult (private-pgm's discretised copy) ------------------------------------------------
def load_adult(root: Path | None = None) -> BenchData:
    """14 integer-coded columns as string categories; domain ``0..size-1`` from the JSON."""
    root = shared_data_dir() if root is None else root
    df = _read_str_csv(root / "adult" / "adult.csv")
    sizes = json.loads((root / "adult" / "adult-domain.json").read_text())
    domains = {c: [str(i) for i in range(int(sizes[c]))] for c in df.columns}
    return BenchData(
        "adult",
        df,
        domains,
        "public: adult-domain.json",
        ["integer codes as categories; no missing values"],
        nullable=set(),
    )


# -- ptsynth's own generated demo records -------------------------------------------------------
def load_demo(n_rows: int = 20_000, seed: int = 0) -> BenchData:
    """Generated CTDC-like records from :func:`ptsynth.demo.generate_demo` (when it exists)."""
    try:
        from ptsynth.demo import generate_demo
    except ImportError as exc:
        raise DatasetUnavailable(f"ptsynth.demo not available ({exc.__class__.__name__})") from None
    raw = generate_demo(n_rows, seed)
    if raw is None:
        raise DatasetUnavailable("generate_demo returned no frame")
    df = raw.astype("string").fillna(MISSING).astype(str)
    return BenchData(
        "demo",
        df,
        None,
        "generated data (no privacy concern); domain read from it",
        [f"{n_rows} generated rows, seed {seed}; multi-valued cells kept whole"],
    )


LOADERS: dict[str, Callable[[], BenchData]] = {
    "ctdc_vp": load_ctdc_vp,
    "nist": load_nist,
    "adult": load_adult,
    "demo": load_demo,
}


def load(name: str) -> BenchData:
    """Load a dataset by key; raises :class:`DatasetUnavailable` with a reason when absent."""
    if name not in LOADERS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(LOADERS)}")
    return LOADERS[name]()


# -- DataFrame ↔ EncodedTable adapter (for ptsynth's own synthesizers) --------------------------
def to_encoded_table(
    frame: pd.DataFrame,
    domains: dict[str, list[str]] | None = None,
    nullable: set[str] | None = None,
):
    """Encode a string frame over public ``domains`` (``""`` → the missing code).

    Without ``domains`` the labels are read from the data (not paid for: benchmark only).
    Columns outside ``nullable`` (``None``: every column may miss) get no missing code.
    Raises ``ValueError`` naming the column (never the value) when a value is outside its domain.
    """
    from ptsynth.table import ColumnDomain, EncodedTable

    cols = list(frame.columns)
    doms = []
    codes = np.empty((len(frame), len(cols)), dtype=np.int32)
    for j, c in enumerate(cols):
        col = frame[c].astype(str)
        labels = (
            list(domains[c])
            if domains is not None and c in domains
            else sorted(v for v in col.unique() if v != MISSING)
        )
        k = pd.Index(labels).get_indexer(col).astype(np.int32)  # -1 where not a label
        unknown = (k < 0) & (col.to_numpy() != MISSING)
        if unknown.any():
            raise ValueError(
                f"column {c!r}: {int(unknown.sum())} value(s) outside the public domain"
            )
        may_miss = nullable is None or c in nullable
        if not may_miss and (k < 0).any():
            raise ValueError(f"column {c!r}: missing value(s) in a column declared never missing")
        k[k < 0] = len(labels)
        codes[:, j] = k
        doms.append(ColumnDomain(name=str(c), labels=tuple(labels), allows_missing=may_miss))
    return EncodedTable(codes, tuple(doms))


def from_encoded_table(table) -> pd.DataFrame:
    """Back to a string frame (missing → ``""``), the shape the metric compares."""
    out = {}
    for j, dom in enumerate(table.domains):
        lut = np.asarray([*dom.labels, MISSING], dtype=object)
        k = table.codes[:, j].astype(np.int64)
        if not dom.allows_missing:
            lut = lut[:-1]
        out[dom.name] = lut[k]
    return pd.DataFrame(out)
