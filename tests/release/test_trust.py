"""What a published bundle says about itself, and what it must never say (issue 13's findings)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import ptsynth
from ptsynth.cli import app
from ptsynth.demo import demo_config_path
from ptsynth.release.bundle import PRIVATE_FILES, PUBLIC_FILES, Bundle

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def seeded_bundle(demo_csv, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trust") / "b"
    res = _run("release", demo_csv, "--config", demo_config_path(), "--out", out, "--seed", "4242",
               "--synthesizer", "aggregate")
    assert res.exit_code == 0, res.output
    return out


def test_no_seed_and_no_fine_time_in_public_files(seeded_bundle):
    public = "\n".join((seeded_bundle / n).read_text(errors="replace") for n in PUBLIC_FILES
                       if n.endswith((".json", ".csv")))
    assert "4242" not in public
    manifest = json.loads((seeded_bundle / "manifest.json").read_text())
    assert "seed" not in manifest["randomness"] and "NOT FOR RELEASE" in manifest["randomness"]["mode"]
    assert len(manifest["created"]) == 10  # a date
    assert "T" not in manifest["release_id"].split("-")[0]
    ledger = json.loads((seeded_bundle / "budget.json").read_text())
    assert all(len(e["time"]) == 10 for e in ledger["entries"])
    # the private report keeps what the steward needs
    report = json.loads((seeded_bundle / "report.json").read_text())
    assert report["release"]["seed"] == 4242


def test_file_modes_follow_the_policy(seeded_bundle):
    for name in PUBLIC_FILES:
        assert stat.S_IMODE((seeded_bundle / name).stat().st_mode) == 0o644, name
    for name in PRIVATE_FILES:
        assert stat.S_IMODE((seeded_bundle / name).stat().st_mode) == 0o600, name


def test_evaluate_reads_the_bundles_own_files(seeded_bundle, demo_csv, tmp_path):
    """The README's last step: evaluate the bundle's synthetic.csv (subject id and numeric
    columns in the config) or the bundle folder itself."""
    for target in (seeded_bundle / "synthetic.csv", seeded_bundle):
        out = tmp_path / target.name
        res = _run("evaluate", demo_csv, target, "--config", demo_config_path(), "--out", out)
        assert res.exit_code == 0, res.output
        assert (out / "report.json").is_file()


def test_the_privacy_unit_is_stated_truthfully(demo_csv, tmp_path):
    text = demo_config_path().read_text(encoding="utf-8")
    no_id = text.replace('subject_id = "caseId"\n', "").replace(
        'name = "caseId"\nkind = "subject_id"', 'name = "caseId"\nkind = "categorical"\nvalues = ["x"]')
    # keep the caseId column out of the schema instead: ignore extra columns
    no_id = no_id.replace('extra_columns = "error"', 'extra_columns = "ignore"')
    lines, out_lines, skip = no_id.splitlines(), [], False
    for line in lines:  # drop the caseId [[columns]] table
        if line.strip() == "[[columns]]":
            skip = False
        if line.startswith('name = "caseId"'):
            skip = True
            out_lines.pop()  # its [[columns]] header
            continue
        if not skip:
            out_lines.append(line)
    cfg = tmp_path / "rows.toml"
    cfg.write_text("\n".join(out_lines) + "\n", encoding="utf-8")
    rel = ptsynth.release(demo_csv, cfg, tmp_path / "b", seed=1, synthesizer="aggregate",
                          evaluate_release=False)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["privacy"]["privacy_unit"].startswith("one row")
    assert json.loads((tmp_path / "b" / "budget.json").read_text())["privacy_unit"].startswith("one row")
    assert any("privacy unit is a row" in n for n in rel.notes)
    # the count of rows is a private note: never in a public file
    rows = str(pd.read_csv(demo_csv).shape[0])
    assert all(rows not in w for w in manifest["warnings"])


def test_formula_like_labels_are_neutralised_and_read_back(tmp_path):
    frame = pd.DataFrame({"a": ["=HYPERLINK(1)", "plain", "-3", "plain"] * 60,
                          "b": ["x", "y", "x", "y"] * 60})
    cfg_text = """
[dataset]
name = "formula"
[privacy]
epsilon = 4.0
delta = 1e-6
[release]
reporting_length = 2
k = 2
synthesizer = "aggregate"
[[columns]]
name = "a"
kind = "categorical"
values = ["=HYPERLINK(1)", "plain", "-3"]
[[columns]]
name = "b"
kind = "categorical"
values = ["x", "y"]
"""
    cfg = tmp_path / "f.toml"
    cfg.write_text(cfg_text, encoding="utf-8")
    assert any("apostrophe" in w for w in ptsynth.ReleaseConfig.load(cfg).warnings)
    rel = ptsynth.release(frame, cfg, tmp_path / "b", seed=2, evaluate_release=False)
    raw = (tmp_path / "b" / "synthetic.csv").read_text()
    assert "'=HYPERLINK(1)" in raw and "\n=HYPERLINK" not in raw and ",=HYPERLINK" not in raw
    agg = pd.read_csv(tmp_path / "b" / "aggregates.csv", dtype=str, keep_default_na=False)
    assert not agg["selections"].str.match(r"[=+\-@\t\r]").any()  # "a:=…" starts with a name
    back = Bundle.load(tmp_path / "b")
    assert set(back.synthetic["a"]) <= {"=HYPERLINK(1)", "plain", "-3"}
    assert back.synthetic_table.n_records == len(rel.synthetic)
    bad = cfg_text.replace('"-3"]', '"-3", "\'=evil"]')
    cfg.write_text(bad, encoding="utf-8")
    with pytest.raises(ptsynth.ConfigError, match="apostrophe"):
        ptsynth.ReleaseConfig.load(cfg)


def test_reporting_length_is_capped_with_a_warning(tmp_path):
    text = demo_config_path().read_text(encoding="utf-8").replace("reporting_length = 3",
                                                                  "reporting_length = 50")
    cfg = tmp_path / "long.toml"
    cfg.write_text(text, encoding="utf-8")
    loaded = ptsynth.ReleaseConfig.load(cfg)
    n = len(loaded.schema.encoded_domains())
    assert loaded.release.reporting_length == n
    assert any("capped" in w for w in loaded.warnings)


def test_validate_warns_when_records_are_too_few(tmp_path, demo_csv):
    few = tmp_path / "few.csv"
    pd.read_csv(demo_csv, dtype=str, keep_default_na=False).head(5).to_csv(few, index=False)
    res = _run("validate", few, "--config", demo_config_path())
    assert res.exit_code == 0
    assert "likely too few" in res.output
    res = _run("validate", demo_csv, "--config", demo_config_path(), "--")
    assert "likely too few" not in res.output
