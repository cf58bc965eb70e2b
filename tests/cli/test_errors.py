"""The error contract seen by a person at a terminal: exit 2, one line, no traceback.

Each command is run as a real process (what a steward or a CI job sees) with a bad knob, a bad
bundle or ledger, and bad paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ptsynth.demo import demo_config_path


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PTSYNTH_DEBUG"}
    return subprocess.run([sys.executable, "-m", "ptsynth.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def assert_one_line_error(res: subprocess.CompletedProcess, *, code: int = 2, says: str = "") -> None:
    text = res.stdout + res.stderr
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert res.returncode == code, text
    assert "Traceback" not in text, text
    assert len(lines) == 1 and lines[0].startswith("error:"), text
    assert says in lines[0], lines[0]


@pytest.fixture(scope="module")
def typo_config(tmp_path_factory) -> Path:
    text = demo_config_path().read_text(encoding="utf-8")
    text = text.replace("[release.pgm]\n", "[release.pgm]\nmax_model_sise = 10000\n")
    path = tmp_path_factory.mktemp("cfg") / "typo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_knob_typo_names_the_key(typo_config, demo_csv, tmp_path):
    assert_one_line_error(run("release", demo_csv, "--config", typo_config, "--out", tmp_path / "o"),
                          says="max_model_sise")
    assert_one_line_error(run("release", demo_csv, "--config", typo_config, "--plan"),
                          says="max_model_sise")
    assert_one_line_error(run("validate", demo_csv, "--config", typo_config), says="max_model_sise")
    assert not (tmp_path / "o").exists()


def test_a_bad_knob_value_names_the_rule(demo_csv, tmp_path):
    text = demo_config_path().read_text(encoding="utf-8").replace(
        "[release.pgm]\n", "[release.pgm]\noneway_share = 2.5\n")
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text, encoding="utf-8")
    assert_one_line_error(run("release", demo_csv, "--config", cfg, "--plan"), says="oneway_share")
    assert_one_line_error(run("release", demo_csv, "--config", demo_config_path(), "--plan",
                              "--synthesizer", "magic"), says="unknown synthesizer")


@pytest.mark.parametrize("command", ["release", "validate", "evaluate"])
def test_a_missing_input_file(command, demo_csv, tmp_path):
    missing = tmp_path / "no-such.csv"
    cfg = demo_config_path()
    args = {
        "release": ["release", missing, "--config", cfg, "--out", tmp_path / "o"],
        "validate": ["validate", missing, "--config", cfg],
        "evaluate": ["evaluate", missing, demo_csv, "--config", cfg, "--out", tmp_path / "r"],
    }[command]
    assert_one_line_error(run(*args), says="does not exist")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["release", "validate", "evaluate"])
def test_a_missing_config_file(command, demo_csv, tmp_path):
    cfg = tmp_path / "none.toml"
    args = {
        "release": ["release", demo_csv, "--config", cfg, "--out", tmp_path / "o"],
        "validate": ["validate", demo_csv, "--config", cfg],
        "evaluate": ["evaluate", demo_csv, demo_csv, "--config", cfg, "--out", tmp_path / "r"],
    }[command]
    assert_one_line_error(run(*args), says="cannot be read")


def test_out_naming_an_existing_file(demo_csv, tmp_path):
    afile = tmp_path / "already-a-file"
    afile.write_text("x")
    assert_one_line_error(run("release", demo_csv, "--config", demo_config_path(), "--out", afile),
                          says="is a file")
    assert afile.read_text() == "x"


def test_out_naming_a_non_empty_folder_names_the_flag(demo_csv, tmp_path):
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    assert_one_line_error(run("release", demo_csv, "--config", demo_config_path(), "--out", folder),
                          says="--overwrite")


def test_a_bad_ledger_or_bundle(tmp_path):
    assert_one_line_error(run("budget", "init", tmp_path / "l.json", "--lifetime-epsilon", "-1",
                              "--lifetime-delta", "1e-5"), says="lifetime_epsilon")
    bogus = tmp_path / "bogus"
    bogus.mkdir()
    (bogus / "budget.json").write_text(json.dumps({"schema_version": 7}))
    res = run("budget", "check", bogus, "--max-epsilon", "1")
    assert res.returncode == 2 and "Traceback" not in res.stdout + res.stderr


def test_an_internal_error_shows_no_message_or_traceback(tmp_path, monkeypatch):
    """A bug's exception text could quote a record: only its type is shown, exit 3."""
    from typer.testing import CliRunner

    import ptsynth.cli.data as data_cli
    from ptsynth.cli import app

    def broken(*args, **kwargs):
        raise ValueError("could not convert string to float: 'Maria Example'")

    monkeypatch.setattr("ptsynth.demo.generate_demo", broken)
    res = CliRunner().invoke(app, ["demo-data", "-o", str(tmp_path / "d.csv")])
    assert res.exit_code == 3
    assert "Maria" not in res.output and "Traceback" not in res.output
    assert "internal error: ValueError" in res.output
    assert data_cli  # the command module is the one patched through ptsynth.demo


def test_demo_data_to_an_unwritable_place():
    assert_one_line_error(run("demo-data", "-o", "/proc/ptsynth-no/d.csv", "--rows", "100"),
                          says="cannot write")
