"""Public CSV files opened in a spreadsheet: cells that would run as formulas are neutralised.

Why: people open ``synthetic.csv`` and ``aggregates.csv`` in Excel or LibreOffice, which run a
cell starting with ``=`` (or ``+``, ``-``, ``@``, a tab or a carriage return) as a formula: a
domain label such as ``=HYPERLINK("http://…")`` would become a live link in a public file (CSV /
formula injection, OWASP). ptsynth's rule, applied to every cell of a public CSV:

* a cell whose first character is one of ``= + - @ TAB CR`` is written with a leading
  apostrophe (``'=HYPERLINK(…)``), which spreadsheets show as text;
* readers of ptsynth bundles (:class:`~ptsynth.release.bundle.Bundle`, ``ptsynth evaluate``)
  remove an apostrophe that precedes one of those characters, so the values round-trip.

The schema warns about such labels when a config is loaded, and refuses a label that itself
starts with an apostrophe followed by one of them (it could not be told apart when read back).
Parquet files are typed and need none of this.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: First characters a spreadsheet treats as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(text: str) -> bool:
    return bool(text) and text[0] in FORMULA_STARTS


def is_ambiguous(text: str) -> bool:
    """A label that would read back as a different label (``'=x`` reads back as ``=x``)."""
    return len(text) > 1 and text[0] == "'" and text[1] in FORMULA_STARTS


def _starts(values: pd.Series, chars: tuple[str, ...]) -> np.ndarray:
    return values.str.startswith(chars).fillna(False).to_numpy(dtype=bool)


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose string cells are safe to open in a spreadsheet."""
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if values.dtype != object and not pd.api.types.is_string_dtype(values):
            continue
        text = values.astype(str)
        risky = _starts(text, FORMULA_STARTS)
        if risky.any():
            out[col] = np.where(risky, "'" + text, values)
    return out


def restore(frame: pd.DataFrame) -> pd.DataFrame:
    """Inverse of :func:`neutralise` on a frame of strings read from a public CSV."""
    out = frame.copy()
    for col in out.columns:
        text = out[col].astype(str)
        marked = _starts(text, tuple("'" + c for c in FORMULA_STARTS))
        if marked.any():
            out[col] = np.where(marked, text.str.slice(1), out[col])
    return out
