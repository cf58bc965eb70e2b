"""Made-up records in a preset's own format, drawn from the preset's public domains only.

Why: a preset is only useful if records in its format validate and release. These generators
know nothing but the schema (values, map spellings, bins, date ranges, set delimiters), so a
test built on them fails when a preset declares something its own format cannot satisfy. A few
columns are made to depend on others so the synthesizer has structure to find.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ptsynth.schema import ColumnSpec, Schema


def _weights(k: int, rng: np.random.Generator) -> np.ndarray:
    """Skewed weights (a few common codes, a long tail), as in real case records."""
    w = rng.permutation(1.0 / np.arange(1, k + 1) ** 1.2)
    return w / w.sum()


def _spellings(spec: ColumnSpec) -> dict[str, list[str]]:
    """Every accepted spelling of each declared value (the value itself and its map keys)."""
    out: dict[str, list[str]] = {v: [v] for v in spec.values}
    for key, target in spec.mapping.items():
        if target in out:
            out[target].append(key)
    return out


def _pick(values: list[str], spellings: dict[str, list[str]], codes: np.ndarray,
          rng: np.random.Generator, other_spelling: float) -> np.ndarray:
    out = np.array(values, dtype=object)[codes]
    alt = rng.random(len(codes)) < other_spelling
    for i in np.flatnonzero(alt):  # small tests only: a loop over the few re-spelled cells
        choices = spellings[out[i]]
        out[i] = choices[rng.integers(len(choices))]
    return out


def _column(spec: ColumnSpec, n: int, rng: np.random.Generator, driver: np.ndarray,
            missing_share: float, other_spelling: float) -> np.ndarray:
    miss = (rng.random(n) < missing_share) if spec.allows_missing else np.zeros(n, bool)
    if spec.kind in ("categorical", "ordinal"):
        k = len(spec.values)
        tables = np.stack([_weights(k, rng) for _ in range(3)])
        u = rng.random(n)
        cum = np.cumsum(tables, axis=1)[driver]
        codes = np.minimum((u[:, None] > cum).sum(axis=1), k - 1)
        out = _pick(list(spec.values), _spellings(spec), codes, rng, other_spelling)
    elif spec.kind == "set":
        m = len(spec.values)
        p = np.clip(0.5 / np.arange(1, m + 1) ** 0.8, 0.01, 0.6)[rng.permutation(m)]
        present = rng.random((n, m)) < p[None, :] * (0.6 + 0.4 * driver[:, None])
        spell = _spellings(spec)
        out = np.empty(n, dtype=object)
        for i in range(n):  # test data only
            members = [spell[spec.values[j]][rng.integers(len(spell[spec.values[j]]))]
                       if rng.random() < other_spelling else spec.values[j]
                       for j in np.flatnonzero(present[i])]
            out[i] = spec.delimiter.join(members)
        miss |= out == ""
    elif spec.kind == "numeric":
        edges = np.asarray(spec.bins)
        b = rng.choice(len(edges) - 1, size=n, p=_weights(len(edges) - 1, rng))
        lo, hi = edges[b], edges[b + 1]
        integral = all(float(e).is_integer() for e in edges)
        x = lo + rng.random(n) * (hi - lo)
        out = np.array([str(int(np.floor(v))) if integral else f"{v:.6g}" for v in x], dtype=object)
    elif spec.kind == "date":
        assert spec.start is not None and spec.end is not None
        span = (spec.end - spec.start).days
        days = np.sort(rng.integers(0, span + 1, size=n))[rng.permutation(n)]
        out = np.array([(spec.start + dt.timedelta(days=int(d))).isoformat() for d in days], dtype=object)
    elif spec.kind == "subject_id":
        out = np.array([f"P{i:07d}" for i in range(n)], dtype=object)
        miss[:] = False
    else:  # pragma: no cover - a new kind must get a generator
        raise AssertionError(f"no generator for kind {spec.kind!r}")
    missing_token = spec.missing_values[0] if spec.missing_values else ""
    out[miss] = missing_token
    return out


def records(schema: Schema, n: int, seed: int, *, missing_share: float = 0.1,
            other_spelling: float = 0.15, columns: list[str] | None = None) -> pd.DataFrame:
    """``n`` string records with the schema's columns (or ``columns``), seeded."""
    rng = np.random.default_rng(seed)
    driver = rng.integers(0, 3, size=n)  # a latent class that several columns depend on
    names = columns or schema.names
    data = {}
    for name in names:
        spec = schema.column(name)
        data[name] = _column(spec, n, rng, driver, missing_share, other_spelling)
    return pd.DataFrame(data, dtype=object)
