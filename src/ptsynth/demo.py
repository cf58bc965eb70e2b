"""Realistic, entirely made-up CTDC-like case records: the built-in default data of ptsynth.

Why: people must be able to try every command, and tests must exercise every column kind, on
data that harms nobody. The columns are modelled on the CTDC Global Synthetic Data codebook
(v2024: yearOfRegistration, gender, ageBroad, citizenship, CountryOfExploitation, traffickMonths,
the ``means*`` control flags, the ``is*`` exploitation flags, type of labour / sexual exploitation,
recruiter relation) plus a subject id, a data source, an exact age (binned by public edges), a
registration date (mapped to quarters), majority status and an abduction flag, so that numeric
binning, date→period, multi-valued sets and per-subject merging all get used.

This is deliberately not the v2024 format (its exact preset is
``configs/ctdc_synthetic_v2024.toml``, ``ptsynth init --preset ctdc-v2024``): type of labour,
type of sexual exploitation and recruiter relation are condensed ``;``-joined set columns rather
than the codebook's 10 one-hot columns; years run to 2023 (the codebook's range ends at 2022);
the countries are a 22- and 21-code subset of ISO 3166-1 alpha-3; and six columns are extra. The
shared columns use the codebook's codes. ``docs/presets.md`` lists the differences; the demo's
own preset is ``configs/ctdc_demo.toml``.

Columns are *not* independent: the generative story is source → year → citizenship → gender →
type of exploitation → age → country of exploitation → means of control / sub-types /
recruiter, with the dependencies reported in CTDC publications (sexual exploitation mostly of
young women, forced labour mostly of adult men towards the Gulf, Russia and South-East Asia,
domestic trafficking frequent, hotline data only from 2015 with more missing ages, legacy
records before 2012 without dates and often without means of control). About 3% of people have
two rows that merge consistently (the second row leaves some cells blank and splits set members).

It is synthetic *public* data, so a seeded NumPy PRNG is right here (not :mod:`ptsynth.privacy`).
Generation is vectorised per chunk and streams to CSV / Parquet with bounded memory.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

#: Rows generated per chunk (fixed: output depends only on ``n_rows`` and ``seed``).
CHUNK_ROWS = 200_000
#: Share of rows that are a second row of an already present person.
DUPLICATE_SHARE = 0.03

YEARS = np.arange(2002, 2024)
_YEAR_WEIGHT = np.array([1, 1.2, 1.5, 2, 2.5, 3, 3.5, 3.5, 3.5, 3.8, 4, 4.5, 5, 6, 7, 8, 8.5, 8,
                         5, 5.5, 6, 6.5])
SOURCES = ("Case management", "Hotline")
GENDERS = ("Woman", "Man", "Trans/Transgender/NonConforming")
AGE_BANDS = ("0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+")
_BAND_LO = np.array([0, 9, 18, 21, 24, 27, 30, 39, 48])
_BAND_HI = np.array([8, 17, 20, 23, 26, 29, 38, 47, 75])
#: Public bin edges of the exact age (deliberately not the ageBroad bands).
AGE_BINS = (0, 12, 18, 25, 35, 50, 120)
MAJORITY = ("Adult", "Minor")
MONTHS = ("0--12", "13--24", "25+")
REGIONS = ("Europe", "Africa", "Asia", "Americas")
CITIZENSHIP = {
    "Europe": ("UKR", "MDA", "ROU", "BGR", "ALB", "BLR"),
    "Africa": ("NGA", "GHA", "ETH", "UGA", "KEN"),
    "Asia": ("PHL", "IDN", "KHM", "MMR", "VNM", "BGD", "NPL", "CHN"),
    "Americas": ("USA", "MEX", "HND"),
}
CITIZEN_CODES = tuple(c for r in REGIONS for c in CITIZENSHIP[r])
_CITIZEN_REGION = np.array([REGIONS.index(r) for r in REGIONS for _ in CITIZENSHIP[r]])
_CITIZEN_W_CASE = np.array([9, 7, 5, 3, 3, 2, 5, 4, 3, 4, 2, 10, 6, 6, 5, 4, 4, 3, 2, 3, 3, 2],
                           dtype=float)
_CITIZEN_W_HOTLINE = np.zeros(len(CITIZEN_CODES))
for _code, _w in {"USA": 55, "MEX": 25, "HND": 10, "PHL": 5, "CHN": 5}.items():
    _CITIZEN_W_HOTLINE[CITIZEN_CODES.index(_code)] = _w
EXPLOIT_CODES = ("USA", "MEX", "RUS", "TUR", "POL", "ITA", "GBR", "DEU", "UKR", "MDA", "SAU",
                 "ARE", "KWT", "MYS", "THA", "KHM", "PHL", "IDN", "NGA", "GHA", "LBY")
_DOMESTIC = {"USA": .95, "MEX": .6, "UKR": .45, "MDA": .3, "PHL": .35, "KHM": .4, "IDN": .4,
             "NGA": .35, "GHA": .5}
# Destinations abroad by (origin region, main type: 0 sexual, 1 labour/other).
_DEST = {
    (0, 0): {"ITA": 4, "TUR": 4, "GBR": 3, "DEU": 3, "POL": 2, "RUS": 3, "ARE": 1},
    (0, 1): {"RUS": 8, "POL": 4, "GBR": 2, "TUR": 2, "DEU": 1, "ITA": 1},
    (1, 0): {"ITA": 4, "LBY": 3, "SAU": 1, "ARE": 2, "GBR": 1, "DEU": 1},
    (1, 1): {"LBY": 4, "SAU": 4, "KWT": 3, "ARE": 2, "GHA": 1, "NGA": 1},
    (2, 0): {"THA": 5, "MYS": 4, "KHM": 1, "ARE": 1, "USA": 1, "RUS": 1},
    (2, 1): {"MYS": 6, "THA": 5, "SAU": 3, "ARE": 3, "KWT": 2, "RUS": 2, "IDN": 1},
    (3, 0): {"USA": 8, "MEX": 2},
    (3, 1): {"USA": 7, "MEX": 3},
}
MEANS = ("meansDebtBondageEarnings", "meansThreats", "meansAbusePsyPhySex", "meansFalsePromises",
         "meansDrugsAlcohol", "meansDenyBasicNeeds", "meansExcessiveWorkHours", "meansWithholdDocs")
# P(flag | main type) for sexual, labour, other.
_MEANS_P = np.array([
    [.25, .45, .55, .40, .20, .35, .15, .20],
    [.45, .35, .30, .50, .03, .40, .40, .45],
    [.15, .30, .35, .30, .05, .30, .10, .15],
])
LABOUR_TYPES = ("Agriculture", "Construction", "DomesticWork", "Hospitality")
SEX_TYPES = ("Prostitution", "Pornography")
RECRUITERS = ("IntimatePartner", "Friend", "Family", "Other")
EXPLOIT_FLAGS = ("isForcedLabour", "isSexualExploit", "isOtherExploit")

COLUMNS = (
    "caseId", "yearOfRegistration", "registrationDate", "dataSource", "gender", "ageBroad", "age",
    "majorityStatus", "citizenship", "CountryOfExploitation", "traffickMonths", *MEANS,
    *EXPLOIT_FLAGS, "typeOfLabour", "typeOfSex", "recruiterRelation", "isAbduction",
)
_INT_COLUMNS = ("yearOfRegistration", "age")


def demo_config_path() -> Path:
    """Path of the packaged release config that describes the demo columns (public domains)."""
    return Path(str(resources.files("ptsynth").joinpath("configs/demo.toml")))


# --------------------------------------------------------------------------------------------
def _draw(rng: np.random.Generator, probs: np.ndarray, n: int) -> np.ndarray:
    """``n`` categorical draws from one weight vector, by vectorised inverse CDF."""
    cum = np.cumsum(probs) / np.sum(probs)
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)


def _draw_rows(rng: np.random.Generator, table: np.ndarray, index: np.ndarray) -> np.ndarray:
    """One draw per record from the weight row ``table[index[i]]`` (inverse CDF).

    Why a table and an index rather than an ``(n, k)`` weight matrix: the distinct weight rows
    are few, so the cumulative sums are taken once per row and the records are placed by a
    binary search per table row (a loop over table rows, not records).
    """
    table = np.asarray(table, dtype=float)
    cum = np.cumsum(table, axis=1)
    cum /= cum[:, -1:]
    u = rng.random(len(index))
    out = np.zeros(len(index), dtype=np.int64)
    for r in range(table.shape[0]):
        sel = index == r
        out[sel] = np.searchsorted(cum[r], u[sel], side="right")
    return np.minimum(out, table.shape[1] - 1)


class _Coded:
    """A text column kept as codes into public labels plus a presence mask (no Python strings
    per record until the Arrow array is built)."""

    def __init__(self, labels: tuple[str, ...] | list[str], codes: np.ndarray, present: np.ndarray) -> None:
        self.labels = list(labels)
        self.codes = np.clip(codes, 0, len(self.labels) - 1)
        self.present = np.asarray(present, dtype=bool)

    def take(self, rows: np.ndarray) -> _Coded:
        return _Coded(self.labels, self.codes[rows], self.present[rows])

    def stacked(self, other: _Coded) -> _Coded:
        """This column's records followed by ``other``'s (same kind and labels)."""
        out = copy.copy(self)
        out.codes = np.concatenate([self.codes, other.codes])
        out.present = np.concatenate([self.present, other.present])
        return out

    def to_arrow(self) -> pa.Array:
        width = np.int8 if len(self.labels) <= 127 else np.int32
        idx = pa.array(self.codes.astype(width), mask=~self.present)
        return pc.take(pa.array(self.labels, pa.string()), idx)


class _Ids(_Coded):
    """Case ids ``C`` + zero-padded number."""

    def __init__(self, numbers: np.ndarray) -> None:
        self.codes, self.present = numbers, np.ones(len(numbers), dtype=bool)

    def take(self, rows: np.ndarray) -> _Ids:
        return _Ids(self.codes[rows])

    def to_arrow(self) -> pa.Array:
        digits = pc.utf8_lpad(pc.cast(pa.array(self.codes, pa.int64()), pa.string()), width=8, padding="0")
        return pc.binary_join_element_wise("C", digits, "")


class _Dates(_Coded):
    """ISO dates (``YYYY-MM-DD``) kept as day numbers."""

    def __init__(self, days: np.ndarray, present: np.ndarray) -> None:
        self.codes, self.present = days, np.asarray(present, dtype=bool)

    def take(self, rows: np.ndarray) -> _Dates:
        return _Dates(self.codes[rows], self.present[rows])

    def to_arrow(self) -> pa.Array:
        return pc.cast(pa.array(self.codes.astype(np.int32), pa.date32(), mask=~self.present), pa.string())


def _labels(values: tuple[str, ...], codes: np.ndarray, present: np.ndarray) -> _Coded:
    return _Coded(values, codes, present)


def _flag(mask: np.ndarray) -> _Coded:
    return _Coded(("1",), np.zeros(len(mask), dtype=np.int64), mask)


def _join(present: np.ndarray, values: tuple[str, ...]) -> _Coded:
    """(n, m) membership → ``;``-joined cells (missing when empty), via a 2^m lookup table."""
    m = len(values)
    bits = present.astype(np.int64) @ (1 << np.arange(m, dtype=np.int64))
    lut = [";".join(v for b, v in enumerate(values) if mask >> b & 1) for mask in range(1 << m)]
    return _Coded(lut, bits, bits != 0)


def _persons(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Latent person-level variables (codes and masks) for ``n`` people."""
    p: dict[str, np.ndarray] = {}
    year_idx = _draw(rng, _YEAR_WEIGHT, n)
    year = YEARS[year_idx]
    hotline = (year >= 2015) & (rng.random(n) < 0.35)
    cit = _draw_rows(rng, np.stack([_CITIZEN_W_CASE, _CITIZEN_W_HOTLINE]), hotline.astype(np.int64))
    region = _CITIZEN_REGION[cit]
    p_woman = np.array([.70, .60, .45, .62])[region]
    p_woman = np.where(hotline, .75, p_woman)
    p_trans = np.where(year >= 2017, 0.012, 0.0)
    u = rng.random(n)
    gender = np.where(u < p_trans, 2, np.where(u < p_trans + (1 - p_trans) * p_woman, 0, 1))
    # main type of exploitation: 0 sexual, 1 labour, 2 other; weight rows: woman by region (0-3),
    # man by region (4-7), trans (8), woman in hotline data (9)
    main_tab = np.array([[.70, .20, .10], [.45, .35, .20], [.35, .55, .10], [.75, .20, .05],
                         [.06, .84, .10], [.05, .80, .15], [.04, .88, .08], [.12, .80, .08],
                         [.85, .10, .05], [.78, .18, .04]])
    row = np.where(gender == 0, region, 4 + region)
    row = np.where(gender == 2, 8, row)
    row = np.where(hotline & (gender == 0), 9, row)
    main = _draw_rows(rng, main_tab, row)
    age_tab = np.array([
        [.02, .25, .18, .15, .11, .09, .13, .05, .02],
        [.01, .07, .07, .09, .11, .12, .28, .17, .08],
        [.08, .30, .10, .08, .08, .07, .15, .08, .06],
    ])
    band = _draw_rows(rng, age_tab, main)
    age = _BAND_LO[band] + np.floor(rng.random(n) * (_BAND_HI[band] - _BAND_LO[band] + 1)).astype(int)
    # country of exploitation: domestic with a country-specific probability, else by region/type
    dom_p = np.array([_DOMESTIC.get(c, 0.2 if c in EXPLOIT_CODES else 0.0) for c in CITIZEN_CODES])
    dom_idx = np.array([EXPLOIT_CODES.index(c) if c in EXPLOIT_CODES else 0 for c in CITIZEN_CODES])
    dest_tab = np.zeros((len(REGIONS), 2, len(EXPLOIT_CODES)))
    for (r, t), weights in _DEST.items():
        for code, w in weights.items():
            dest_tab[r, t, EXPLOIT_CODES.index(code)] = w
    abroad = _draw_rows(rng, dest_tab.reshape(-1, len(EXPLOIT_CODES)), region * 2 + np.minimum(main, 1))
    domestic = rng.random(n) < dom_p[cit]
    coe = np.where(domestic, dom_idx[cit], abroad)
    p.update(year=year, hotline=hotline, cit=cit, region=region, gender=gender, main=main,
             band=band, age=age, coe=coe)
    return p


def _chunk(rng: np.random.Generator, n_rows: int, id_offset: int) -> dict[str, _Coded | np.ndarray]:
    """``n_rows`` rows (people plus ~3% second rows), columns as in :data:`COLUMNS`."""
    n_dup = int(round(n_rows * DUPLICATE_SHARE)) if n_rows >= 20 else 0
    n = n_rows - n_dup
    p = _persons(rng, n)
    year, hotline, main, band, gender = p["year"], p["hotline"], p["main"], p["band"], p["gender"]
    legacy = ~hotline & (year < 2012)
    minor = band <= 1
    cols: dict[str, _Coded | np.ndarray] = {}
    cols["caseId"] = _Ids(id_offset + np.arange(n))
    cols["yearOfRegistration"] = year.astype(np.float64)
    has_date = ~legacy & (rng.random(n) < np.where(hotline, 1.0, 0.9))
    day = np.floor(rng.random(n) * 365).astype("timedelta64[D]")
    dates = (year - 1970).astype("datetime64[Y]").astype("datetime64[D]") + day
    dates = np.minimum(dates, (year - 1970 + 1).astype("datetime64[Y]").astype("datetime64[D]") - 1)
    cols["registrationDate"] = _Dates(dates.astype(np.int64), has_date)
    cols["dataSource"] = _labels(SOURCES, hotline.astype(int), np.ones(n, bool))
    cols["gender"] = _labels(GENDERS, gender, rng.random(n) >= np.where(hotline, .05, .01))
    age_known = rng.random(n) >= np.where(hotline, .45, np.where(legacy, .20, .08))
    cols["ageBroad"] = _labels(AGE_BANDS, band, age_known)
    exact = age_known & ~hotline & ~legacy & (rng.random(n) < 0.7)
    cols["age"] = np.where(exact, p["age"], np.nan)
    majority_known = age_known | (rng.random(n) < 0.5)
    cols["majorityStatus"] = _labels(MAJORITY, minor.astype(int), majority_known)
    cols["citizenship"] = _labels(CITIZEN_CODES, p["cit"], rng.random(n) >= np.where(hotline, .2, .04))
    cols["CountryOfExploitation"] = _labels(EXPLOIT_CODES, p["coe"], rng.random(n) >= .06)
    months_tab = np.array([[.55, .25, .20], [.40, .30, .30], [.50, .25, .25]])
    cols["traffickMonths"] = _labels(MONTHS, _draw_rows(rng, months_tab, main), rng.random(n) < .45)
    # means of control: correlated through a per-person severity, recorded less in old/hotline data
    severity = rng.gamma(4.0, 0.25, n)[:, None]
    means = rng.random((n, len(MEANS))) < np.minimum(_MEANS_P[main] * severity, 0.95)
    means &= ~(rng.random(n) < np.where(legacy, .6, np.where(hotline, .3, .1)))[:, None]
    means[:, 4] &= ~minor | (rng.random(n) < 0.5)
    for j, name in enumerate(MEANS):
        cols[name] = _flag(means[:, j])
    # exploitation flags: main type plus an occasional second one; 5% unknown
    flags = np.zeros((n, 3), dtype=bool)
    flags[np.arange(n), np.array([1, 0, 2])[main]] = True
    second = rng.random(n) < 0.06
    flags[:, 0] |= second & (main == 0)
    flags[:, 1] |= second & (main == 1) & (gender != 1)
    flags &= ~(rng.random(n) < .05)[:, None]
    for j, name in enumerate(EXPLOIT_FLAGS):
        cols[name] = _flag(flags[:, j])
    labour_tab = np.array([[.15, .02, .58, .25], [.35, .45, .06, .14]])
    labour = np.zeros((n, len(LABOUR_TYPES)), dtype=bool)
    labour[np.arange(n), _draw_rows(rng, labour_tab, (gender == 1).astype(np.int64))] = True
    labour |= rng.random((n, len(LABOUR_TYPES))) < 0.04
    labour &= (flags[:, 0] & (rng.random(n) < .8))[:, None]
    cols["typeOfLabour"] = _join(labour, LABOUR_TYPES)
    members = {"typeOfLabour": (labour, LABOUR_TYPES)}
    sex = np.zeros((n, 2), dtype=bool)
    sex[:, 0] = rng.random(n) < .92
    sex[:, 1] = (rng.random(n) < np.where(minor, .25, .10)) | ~sex[:, 0]
    sex &= (flags[:, 1] & (rng.random(n) < .75))[:, None]
    cols["typeOfSex"] = _join(sex, SEX_TYPES)
    members["typeOfSex"] = (sex, SEX_TYPES)
    rec_tab = np.array([[.30, .35, .15, .20], [.03, .22, .10, .65], [.10, .20, .35, .35]])
    rec_tab = np.concatenate([rec_tab, rec_tab * np.array([.5, 1, 3.5, .6])])  # rows 3-5: minors
    rec = np.zeros((n, len(RECRUITERS)), dtype=bool)
    rec[np.arange(n), _draw_rows(rng, rec_tab, main + 3 * minor)] = True
    rec |= rng.random((n, len(RECRUITERS))) < 0.03
    rec &= (rng.random(n) < np.where(legacy, .4, .6))[:, None]
    cols["recruiterRelation"] = _join(rec, RECRUITERS)
    members["recruiterRelation"] = (rec, RECRUITERS)
    p_abduct = np.where((main == 2) | minor, .08, .025)
    abduct = ~hotline & (rng.random(n) < p_abduct)
    cols["isAbduction"] = _flag(abduct)

    if n_dup:
        cols = _add_second_rows(rng, cols, members, n, n_dup)
    cols["_order"] = rng.permutation(n_rows)
    return cols


def _add_second_rows(rng: np.random.Generator, cols: dict[str, _Coded | np.ndarray],
                     members: dict[str, tuple[np.ndarray, tuple[str, ...]]], n: int,
                     n_dup: int) -> dict[str, _Coded | np.ndarray]:
    """Second rows for ``n_dup`` people that merge back to the person exactly.

    Single-valued cells are kept or blanked (missing + value merges to value); set members are
    split between the two rows (the union is the person's set).
    """
    who = rng.choice(n, size=n_dup, replace=False)
    out: dict[str, _Coded | np.ndarray] = {}
    keep_always = ("caseId", "yearOfRegistration", "dataSource")
    for name, col in cols.items():
        if name in members:
            matrix, values = members[name]
            member = matrix[who]
            side = rng.integers(0, 3, size=member.shape)  # 0 first row, 1 second row, 2 both
            first = col.take(np.arange(n))  # a copy
            first.codes[who] = _join(member & (side != 1), values).codes
            first.present = first.codes != 0
            second = _join(member & (side != 0), values)
        elif isinstance(col, _Coded):
            first, second = col, col.take(who)
            if name not in keep_always:
                second.present &= ~(rng.random(n_dup) < 0.3)
        else:
            first, second = col, col[who].copy()
            if name not in keep_always:
                second[rng.random(n_dup) < 0.3] = np.nan
        if isinstance(first, _Coded):
            out[name] = first.stacked(second)
        else:
            out[name] = np.concatenate([first, second])
    return out


def _to_arrow(cols: dict[str, _Coded | np.ndarray]) -> pa.Table:
    """Typed Arrow table, rows shuffled on the codes (strings are built once, in final order)."""
    order = cols["_order"]
    arrays = {}
    for name in COLUMNS:
        v = cols[name]
        if isinstance(v, _Coded):
            arrays[name] = v.take(order).to_arrow()
        else:
            v = v[order]
            arrays[name] = pa.array(np.nan_to_num(v).astype(np.int64), mask=np.isnan(v), type=pa.int64())
    return pa.table(arrays)


def generate_demo(n_rows: int, seed: int, path: str | Path | None = None) -> pd.DataFrame | None:
    """Generate ``n_rows`` demo case records with a seeded PRNG.

    Args:
        n_rows: number of rows (any size ≥ 2; ~3% are second rows of a person).
        seed: PRNG seed; the output depends only on ``(n_rows, seed)``.
        path: if given, stream to this file in chunks (Parquet when it ends with ``.parquet``,
            otherwise CSV with blank cells for missing) and return ``None``; memory stays bounded
            by :data:`CHUNK_ROWS`. Without a path the records are returned as a DataFrame.
    """
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 2:
        raise ValueError("n_rows must be an integer ≥ 2")
    starts = range(0, int(n_rows), CHUNK_ROWS)
    seeds = np.random.SeedSequence(int(seed)).spawn(len(starts))
    tables = (
        _to_arrow(_chunk(np.random.default_rng(ss), min(CHUNK_ROWS, n_rows - s), s))
        for s, ss in zip(starts, seeds, strict=True)
    )
    if path is None:
        return pa.concat_tables(list(tables)).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
    try:
        for table in tables:
            if writer is None:
                if path.suffix.lower() == ".parquet":
                    writer = pq.ParquetWriter(tmp, table.schema)
                else:
                    writer = pacsv.CSVWriter(tmp, table.schema,
                                             write_options=pacsv.WriteOptions(quoting_style="needed"))
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(path)
    return None
