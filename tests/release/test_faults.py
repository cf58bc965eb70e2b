"""Hostile runs: bad inputs with a planted canary, kills, SIGTERM and concurrent releases.

Each asserts what the audit checked: no value from a record leaks into any message or file,
no partial bundle appears, and the dataset ledger stays consistent — and, new, that a failure
which published nothing costs nothing.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from ptsynth.demo import demo_config_path
from ptsynth.privacy import Ledger
from ptsynth.privacy.ledger import DatasetLedger

CANARY = "Zqx7Canary"  # a value planted in records; it must never appear in any output
CFG = demo_config_path()


def cli(*args, timeout: float = 300, **popen) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PTSYNTH_DEBUG"}
    return subprocess.run([sys.executable, "-m", "ptsynth.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout, **popen)


def config_with_ledger(tmp_path: Path, *, lifetime_epsilon: float = 10.0, extra: str = "") -> Path:
    ledger = tmp_path / "ledger.json"
    DatasetLedger.create(ledger, lifetime_epsilon=lifetime_epsilon, lifetime_delta=1e-5)
    text = CFG.read_text(encoding="utf-8").replace(
        'extra_columns = "error"', f'ledger = "{ledger}"\nextra_columns = "error"', 1)
    path = tmp_path / "cfg.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def outputs(root: Path) -> str:
    """Every byte ptsynth may have written under ``root`` (files of any kind), as text."""
    chunks = []
    for path in root.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def spent(ledger: Path) -> float:
    return Ledger.load(ledger).total["rho"]


# ---------------------------------------------------------------------------------------------
# the bad-input corpus, each case with a canary
# ---------------------------------------------------------------------------------------------
def _corpus(demo: pd.DataFrame, tmp: Path) -> list[tuple[str, Path]]:
    """45 bad inputs: every column kind with a bad value holding the canary, in five formats,
    plus file-level faults."""
    base = demo.head(300).copy()
    cases: list[tuple[str, pd.DataFrame]] = []
    for col in ["gender", "citizenship", "ageBroad", "yearOfRegistration", "typeOfExploitConcatenated",
                "meansOfControlConcatenated", "CountryOfExploitation"]:
        if col not in base.columns:
            continue
        bad = base.copy()
        bad[col] = bad[col].astype(str)
        bad.loc[bad.index[17], col] = CANARY
        cases.append((f"bad-{col}", bad))
    conflict = base.copy()  # one person's rows disagree; the id itself is the canary
    conflict = pd.concat([conflict, conflict.iloc[[3]]], ignore_index=True)
    conflict.loc[conflict.index[-1], "caseId"] = conflict.loc[3, "caseId"]
    conflict["caseId"] = conflict["caseId"].astype(str)
    conflict.loc[[3, len(conflict) - 1], "caseId"] = CANARY
    conflict.loc[len(conflict) - 1, "gender"] = "Woman" if conflict.loc[3, "gender"] != "Woman" else "Man"
    cases.append(("conflict", conflict))
    extra = base.copy()
    extra[CANARY] = CANARY  # an undeclared column named after the canary
    cases.append(("extra-column", extra))
    missing = base.drop(columns=["gender"])
    missing["x"] = CANARY
    cases.append(("missing-column", missing))
    out: list[tuple[str, Path]] = []
    for name, frame in cases:
        for fmt in ("csv", "tsv", "parquet", "feather", "txt"):
            path = tmp / f"{name}.{fmt}"
            if fmt == "csv":
                frame.to_csv(path, index=False)
            elif fmt in ("tsv", "txt"):
                frame.to_csv(path, index=False, sep="\t")
            elif fmt == "parquet":
                frame.astype(str).to_parquet(path)
            else:
                feather.write_feather(pa.Table.from_pandas(frame.astype(str), preserve_index=False), path)
            out.append((f"{name}.{fmt}", path))
    text = base.to_csv(index=False)
    lines = text.splitlines()
    files = {
        "ragged.csv": "\n".join(lines[:5] + [lines[5] + f",{CANARY}"] + lines[6:]),
        "unclosed-quote.csv": "\n".join(lines[:5] + [f'"{CANARY}' + lines[5]] + lines[6:]),
        "csv-named-parquet.parquet": text.replace(lines[7], lines[7].replace(",", f",{CANARY}", 1)),
        "empty.csv": "",
        "header-only.csv": lines[0] + "\n",
    }
    for name, content in files.items():
        path = tmp / name
        path.write_text(content, encoding="utf-8")
        out.append((name, path))
    latin = tmp / "latin1.csv"
    latin.write_bytes((text.replace(lines[9], lines[9] + "") + f"{CANARY}é\n").encode("latin-1"))
    out.append(("not-utf8.csv", latin))
    out.append(("missing-path.csv", tmp / "does-not-exist.csv"))
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, demo_csv):
    tmp = tmp_path_factory.mktemp("corpus")
    demo = pd.read_csv(demo_csv, dtype=str, keep_default_na=False)
    return _corpus(demo, tmp)


def test_the_corpus_is_the_size_the_audit_used(corpus):
    assert len(corpus) >= 45


def test_bad_inputs_leak_nothing_and_cost_nothing(corpus, tmp_path):
    cfg = config_with_ledger(tmp_path)
    ledger = tmp_path / "ledger.json"
    from typer.testing import CliRunner

    from ptsynth.cli import app

    failures = 0
    for name, path in corpus:  # in process: 45 interpreter starts would take minutes
        out = tmp_path / "bundles" / name
        res = CliRunner().invoke(app, ["release", str(path), "--config", str(cfg), "--out",
                                       str(out), "--synthesizer", "aggregate", "--no-evaluate"])
        text = res.output
        assert CANARY not in text, f"{name}: the canary reached the terminal"
        if res.exit_code != 0:
            failures += 1
            assert res.exit_code == 2, (name, text)
            assert "Traceback" not in text, name
            assert not out.exists(), f"{name}: a partial bundle"
        else:  # an input the schema accepts (e.g. an extra column ignored): nothing to leak
            assert CANARY not in outputs(out)
    assert failures >= 40
    assert CANARY not in outputs(tmp_path / "bundles") if (tmp_path / "bundles").exists() else True
    assert CANARY not in ledger.read_text()
    assert spent(ledger) == 0.0, "a failed release charged the lifetime budget"
    assert not list((tmp_path / "bundles").glob(".*")) if (tmp_path / "bundles").exists() else True


# ---------------------------------------------------------------------------------------------
# failures after the reservation
# ---------------------------------------------------------------------------------------------
def test_a_failure_after_reserving_is_refunded_with_its_reason(demo_csv, tmp_path, monkeypatch):
    import ptsynth
    import ptsynth.release.pipeline as pipeline

    cfg = config_with_ledger(tmp_path)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline.AggregateRelease, "write_parquet", disk_full)
    with pytest.raises(OSError):
        ptsynth.release(demo_csv, cfg, tmp_path / "b", synthesizer="aggregate",
                        evaluate_release=False)
    led = Ledger.load(tmp_path / "ledger.json")
    assert led.total["rho"] == 0.0
    (entry,) = led.entries
    assert entry.mechanism == "aborted-refunded" and entry.detail["reason"] == "OSError"
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))


def test_a_refusal_decided_from_dp_outputs_stays_charged(demo_csv, tmp_path):
    cfg = config_with_ledger(tmp_path)
    # seeded: at ε = 0.001 a rare large noise draw on the record count lets a release through
    res = cli("release", demo_csv, "--config", cfg, "--out", tmp_path / "b", "--epsilon", "0.001",
              "--synthesizer", "aggregate", "--no-evaluate", "--seed", "0")
    assert res.returncode == 2 and "too few records" in res.stderr
    led = Ledger.load(tmp_path / "ledger.json")
    (entry,) = led.entries
    assert entry.mechanism.startswith("aborted reservation") and entry.rho > 0
    assert "NoiseDominatesError" in entry.detail["reason"]


# ---------------------------------------------------------------------------------------------
# SIGTERM, kill -9, concurrency
# ---------------------------------------------------------------------------------------------
def _start(demo_csv: Path, cfg: Path, out: Path, synthesizer: str = "pgm") -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "PTSYNTH_DEBUG"}
    return subprocess.Popen([sys.executable, "-m", "ptsynth.cli", "release", str(demo_csv),
                             "--config", str(cfg), "--out", str(out), "--synthesizer", synthesizer],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_reservation(ledger: Path, proc: subprocess.Popen, limit: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < limit and proc.poll() is None:
        try:
            if any(e.mechanism == "reservation" for e in Ledger.load(ledger).entries):
                return
        except Exception:  # the file is being replaced: read again
            pass
        time.sleep(0.05)


def test_sigterm_leaves_no_bundle_and_refunds(demo_csv, tmp_path):
    cfg = config_with_ledger(tmp_path)
    out = tmp_path / "b"
    proc = _start(demo_csv, cfg, out)
    _wait_for_reservation(tmp_path / "ledger.json", proc)
    time.sleep(0.5)  # inside the fit
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "terminated" in err
    assert not out.exists() and not list(tmp_path.glob(".b.*"))
    led = Ledger.load(tmp_path / "ledger.json")
    assert [e.mechanism for e in led.entries] == ["aborted-refunded"]
    assert led.entries[0].detail["reason"] == "Terminated"


@pytest.mark.parametrize("delay", [0.2, 1.0, 2.5, 4.0])
def test_kill_9_at_any_point_then_recover(demo_csv, tmp_path, delay):
    cfg = config_with_ledger(tmp_path)
    ledger = tmp_path / "ledger.json"
    out = tmp_path / "b"
    proc = _start(demo_csv, cfg, out, synthesizer=random.Random(delay).choice(["pgm", "aggregate"]))
    _wait_for_reservation(ledger, proc)
    time.sleep(delay)
    proc.kill()
    proc.communicate(timeout=60)
    led = Ledger.load(ledger)
    if out.exists():  # it finished before the kill: a complete, committed release
        assert (out / "manifest.json").is_file() and not list(tmp_path.glob(".b.*"))
        assert all(e.mechanism != "reservation" for e in led.entries)
        return
    # killed: no bundle in place; maybe an open reservation and a staging folder
    check = cli("budget", "check", ledger, "--max-epsilon", "10")
    if any(e.mechanism == "reservation" for e in led.entries):
        assert "open reservation" in check.stdout and "recover" in check.stdout
    res = cli("budget", "recover", ledger)
    assert res.returncode == 0, res.stdout + res.stderr
    led = Ledger.load(ledger)
    assert all(e.mechanism != "reservation" for e in led.entries)
    assert led.total["rho"] == 0.0  # nothing was published: everything refunded
    assert not list(tmp_path.glob(".b.*")), "the killed run's staging folder was not swept"


def test_a_new_release_sweeps_staging_folders_of_dead_runs(demo_csv, tmp_path):
    from ptsynth.release.recovery import OWNER_FILE

    dead = tmp_path / ".b.dead123"
    dead.mkdir()
    (dead / "report.json").write_text("{}")
    (dead / OWNER_FILE).write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename,
                                               "started": None}))
    other = tmp_path / ".b.notours"
    other.mkdir()  # no owner file: not ptsynth's to delete
    res = cli("release", demo_csv, "--config", CFG, "--out", tmp_path / "b", "--seed", "1",
              "--synthesizer", "aggregate", "--no-evaluate")
    assert res.returncode == 0, res.stderr
    assert not dead.exists() and other.exists()


def test_eight_concurrent_releases_share_one_lifetime(demo_csv, tmp_path):
    """The lifetime fits three ε = 1 releases: exactly three publish, five are refused before
    reading a record (exit 1), the ledger adds up, and no partial bundle appears."""
    from ptsynth.privacy import epsilon_from_rho_delta, rho_from_epsilon_delta

    life = epsilon_from_rho_delta(3.5 * rho_from_epsilon_delta(1.0, 1e-6), 1e-5)
    cfg = config_with_ledger(tmp_path, lifetime_epsilon=life)
    env = {k: v for k, v in os.environ.items() if k != "PTSYNTH_DEBUG"}
    procs = [subprocess.Popen([sys.executable, "-m", "ptsynth.cli", "release", str(demo_csv),
                               "--config", str(cfg), "--out", str(tmp_path / f"b{i}"),
                               "--synthesizer", "aggregate", "--no-evaluate"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(8)]
    codes = [p.wait(timeout=600) for p in procs]
    assert sorted(codes) == [0, 0, 0, 1, 1, 1, 1, 1], codes
    bundles = [p for p in tmp_path.glob("b*") if p.is_dir()]
    assert len(bundles) == 3 and all((b / "manifest.json").is_file() for b in bundles)
    assert not list(tmp_path.glob(".b*"))
    led = Ledger.load(tmp_path / "ledger.json")
    assert led.total["rho"] <= 3.5 * rho_from_epsilon_delta(1.0, 1e-6) * (1 + 1e-9)
    assert {e.release_id for e in led.entries} == {
        json.loads((b / "manifest.json").read_text())["release_id"] for b in bundles}
