"""``ptsynth init`` on every public table, as a user would run it: init, confirm, release.

The synthetic file must speak the input's vocabulary (a flag stays ``1``/blank, a code stays a
code, no ``"[1, 1.1)"``) and be useful (3-way marginal TVD bounded). The tiny Synthetic Data
Showcase format cases (3-12 rows) are checked up to validation: a DP release of a handful of
records is rightly refused. The round trip itself is ``benchmarks/init_roundtrip.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from init_roundtrip import TABLES, round_trip  # noqa: E402

LARGE = ["ctdc_vp", "nist_ma2019", "nist_national2019", "adult"]
#: 3-way TVD bound per table at epsilon 1 (the issue measured 0.41-1.0 before; hand-declared
#: categorical configs 0.006-0.20).
TVD_BOUND = 0.2


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("table", LARGE)
def test_init_release_round_trip(table, shared_data, tmp_path):
    path = shared_data / TABLES[table]
    if not path.is_file():
        pytest.skip(f"{path} not found")
    r = round_trip(table, path, tmp_path, epsilon=1.0, seed=0, max_sets=150)
    assert r.error is None, r.error
    assert r.validated and r.vocabulary_problems == []
    assert r.synthetic_rows > 0.8 * r.rows
    assert r.qi > 0 and r.released_columns >= 10
    assert r.tvd is not None and r.tvd["tvd_3way"] < TVD_BOUND, r.tvd


@pytest.mark.shared_data
@pytest.mark.parametrize("table", [t for t in TABLES if t.startswith("sds_")])
def test_init_on_format_cases_validates(table, shared_data, tmp_path):
    path = shared_data / TABLES[table]
    if not path.is_file():
        pytest.skip(f"{path} not found")
    r = round_trip(table, path, tmp_path, epsilon=1.0, seed=0)
    assert r.validated, r.error  # the proposal accepts its own input (sets, ids, merges)
    if r.error is not None:  # a handful of records: the release is refused, not faked
        assert "too few records" in r.error, r.error
