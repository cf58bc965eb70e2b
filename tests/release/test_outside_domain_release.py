"""A release over values outside the declared domain: counts for the steward only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import tomli_w
from typer.testing import CliRunner

from ptsynth.cli import app
from ptsynth.release.bundle import PRIVATE_FILES, PUBLIC_FILES

N_UNKNOWN = 173  # a count that a public file must not reveal
CONFIG = {
    "dataset": {"name": "t"},
    "privacy": {"epsilon": 1.0, "delta": 1e-6},
    "release": {"synthesizer": "aggregate", "reporting_length": 2, "k": 5},
    "evaluation": {"holdout_fraction": 0.0},
    "columns": [
        {"name": "country", "kind": "categorical", "values": ["UKR", "PHL", "Other"],
         "unknown": "other", "other": "Other"},
        {"name": "gender", "kind": "categorical", "values": ["F", "M"]},
    ],
}


def _walk(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def test_unknown_value_counts_reach_the_steward_and_no_public_file(tmp_path: Path):
    rng = np.random.default_rng(0)
    n = 3000
    country = rng.choice(["UKR", "PHL"], n)
    country[rng.choice(n, N_UNKNOWN, replace=False)] = "MDA"  # a new code in this month's export
    data = tmp_path / "records.csv"
    pd.DataFrame({"country": country, "gender": rng.choice(["F", "M"], n)}).to_csv(data, index=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(CONFIG))
    out = tmp_path / "bundle"
    res = CliRunner().invoke(app, ["release", str(data), "--config", str(cfg), "--out", str(out),
                                   "--seed", "1", "--no-evaluate"])
    assert res.exit_code == 0, res.output
    note = f"column 'country': {N_UNKNOWN} row(s) held a value outside the declared domain"
    assert note in " ".join(res.output.split())  # the steward's terminal
    report = json.loads((out / "report.json").read_text())
    assert report["release"]["ingest"]["outside_domain"]["country"]["rows"] == N_UNKNOWN
    assert "report.json" in PRIVATE_FILES
    for name in PUBLIC_FILES:
        # Long base64 payloads (the showcase's embedded, compressed data) are not text: three
        # letters turn up in them by chance, whatever the data say.
        text = re.sub(rb"[A-Za-z0-9+/=]{120,}", b"", (out / name).read_bytes())
        for marker in (b"outside_domain", b"outside the declared domain", b"recorded as 'Other'",
                       b"MDA"):
            assert marker not in text, (name, marker)
    manifest = json.loads((out / "manifest.json").read_text())
    assert N_UNKNOWN not in [v for v in _walk(manifest) if isinstance(v, int)]
    assert not any(str(N_UNKNOWN) in w for w in manifest["warnings"])
    from ptsynth.report import write_html_report

    write_html_report(report, tmp_path / "r.html")  # the private HTML report shows it too
    html = (tmp_path / "r.html").read_text()
    assert "Values outside the declared domain" in html and str(N_UNKNOWN) in html


def test_validate_checks_dp_bins_columns_on_their_grid_and_reports_recodings(tmp_path: Path):
    data = tmp_path / "records.csv"
    pd.DataFrame({"country": ["UKR", "MDA", "PHL"], "gender": ["F", "M", "F"],
                  "age": ["30", "41.5", "12"]}).to_csv(data, index=False)
    config = json.loads(json.dumps(CONFIG))
    config["columns"].append({"name": "age", "kind": "numeric", "bins": "dp-quantiles",
                              "count": 3, "range": [0, 120], "resolution": 1})
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(config))
    res = CliRunner().invoke(app, ["validate", str(data), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "ok: 3 persons, 3 encoded columns" in res.output
    assert "column 'country': 1 row(s) held a value outside" in " ".join(res.output.split())
    assert "NOTE (private)" in res.output
    pd.DataFrame({"country": ["UKR", "PHL"], "gender": ["F", "M"],
                  "age": ["30", "130"]}).to_csv(data, index=False)
    res = CliRunner().invoke(app, ["validate", str(data), "--config", str(cfg)])
    assert res.exit_code == 2 and "row 3" in res.output and "outside the declared bins" in res.output
