"""Small hand-made releases for query and showcase tests: a 5-column schema with every kind the
query engine distinguishes (categorical, ordinal, a set column), data drawn from a fixed RNG,
and a way to swap a public file of a bundle and re-anchor its manifest (a hand-made bundle)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ptsynth
from ptsynth.config import ReleaseConfig

COLUMNS = [
    {"name": "gender", "kind": "categorical", "values": ["Female", "Male"], "missing": "forbid",
     "quasi_identifier": True},
    {"name": "country", "kind": "categorical", "values": ["USA", "MEX", "GBR"], "missing": "forbid"},
    {"name": "year", "kind": "ordinal", "values": ["2019", "2020", "2021"], "missing": "forbid"},
    {"name": "means", "kind": "set", "values": ["debt", "threats"], "delimiter": ";"},
    {"name": "isForcedLabour", "kind": "categorical", "values": ["1"]},
]


def small_config(*, synthesizer: str = "pgm", epsilon: float = 1.0, k: int = 3,
                 showcase: dict[str, Any] | None = None, **options: Any) -> ReleaseConfig:
    data: dict[str, Any] = {
        "dataset": {"name": "small-test", "description": "hand-made test records",
                    "extra_columns": "ignore"},
        "privacy": {"epsilon": epsilon, "delta": 1e-6},
        "release": {"reporting_length": 3, "k": k, "synthesizer": synthesizer,
                    synthesizer: options},
        "evaluation": {"holdout_fraction": 0.0},
        "columns": COLUMNS,
    }
    if showcase:
        data["showcase"] = showcase
    return ReleaseConfig.from_dict(data)


def small_frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Dependent columns: country depends on gender, year on country, the flags on gender."""
    rng = np.random.default_rng(seed)
    gender = rng.choice(["Female", "Male"], n, p=[0.6, 0.4])
    female = gender == "Female"
    country = np.where(female, rng.choice(["USA", "MEX", "GBR"], n, p=[0.5, 0.3, 0.2]),
                       rng.choice(["USA", "MEX", "GBR"], n, p=[0.2, 0.3, 0.5]))
    year = np.where(country == "USA", rng.choice(["2019", "2020", "2021"], n, p=[0.2, 0.3, 0.5]),
                    rng.choice(["2019", "2020", "2021"], n, p=[0.5, 0.3, 0.2]))
    debt = rng.random(n) < np.where(female, 0.3, 0.6)
    threats = rng.random(n) < 0.4
    means = np.array([";".join(v for v, on in (("debt", d), ("threats", t)) if on)
                      for d, t in zip(debt, threats, strict=True)], dtype=object)
    labour = np.where(rng.random(n) < np.where(female, 0.2, 0.7), "1", "")
    return pd.DataFrame({"gender": gender, "country": country, "year": year, "means": means,
                         "isForcedLabour": labour})


def release(out: Path, frame: pd.DataFrame | None = None, *, seed: int = 1,
            **config: Any) -> Path:
    frame = small_frame() if frame is None else frame
    ptsynth.release(frame, small_config(**config), out, seed=seed, evaluate_release=False)
    return out


def rehash(bundle: Path) -> None:
    """Re-anchor the manifest after a public file was replaced or removed (a hand-made bundle)."""
    manifest_path = bundle / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    outputs = {}
    for name in list(manifest["outputs"]):
        path = bundle / name
        if path.is_file():
            outputs[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["outputs"] = outputs
    manifest["files"]["public"] = [f for f in manifest["files"]["public"] if (bundle / f).is_file()]
    manifest_path.write_text(json.dumps(manifest, indent=2))


def true_count(frame: pd.DataFrame, where: dict[str, list[str]]) -> int:
    """The count on records: AND across columns, OR within one (set: any member present)."""
    mask = np.ones(len(frame), dtype=bool)
    for col, values in where.items():
        if col == "means":
            members = frame[col].str.split(";")
            mask &= members.apply(lambda m, v=values: any(x in m for x in v)).to_numpy()
        else:
            mask &= frame[col].isin(values).to_numpy()
    return int(mask.sum())
