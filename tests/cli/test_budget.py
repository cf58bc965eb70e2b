"""`ptsynth budget check` exit codes and the library twins check_budget / assert_budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from ptsynth.cli.budget import budget_app
from ptsynth.privacy import Accountant, assert_budget, check_budget, secure_random, seeded_random

app = typer.Typer()
app.add_typer(budget_app, name="budget")
runner = CliRunner()


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    acc = Accountant(1.0, 1e-9, rng=secure_random(), release_id="rel")
    acc.measure_gaussian(np.arange(3), sigma=acc.sigma_for(acc.target_rho / 2, 1.0),
                         l2_sensitivity=1.0, query="a x b")
    acc.ledger().write(tmp_path / "budget.json")
    return tmp_path


def test_within_budget_exit_0(ledger_dir: Path) -> None:
    res = runner.invoke(app, ["budget", "check", str(ledger_dir), "--max-epsilon", "1.0"])
    assert res.exit_code == 0, res.output
    assert "within" in res.output and "a x b" in res.output and "discrete_gaussian" in res.output
    assert check_budget(ledger_dir / "budget.json", 1.0).status == 0
    assert assert_budget(ledger_dir, max_epsilon=1.0).total["rho"] > 0


def test_over_budget_exit_1(ledger_dir: Path) -> None:
    res = runner.invoke(app, ["budget", "check", str(ledger_dir / "budget.json"),
                              "--max-epsilon", "0.3"])
    assert res.exit_code == 1, res.output
    assert "OVER" in res.output
    # stating ε at a smaller δ makes it larger: over at δ=1e-15 though within at the ledger's δ
    eps = check_budget(ledger_dir, 1.0).ledger.total["epsilon"]
    assert check_budget(ledger_dir, eps * 1.01, max_delta=1e-15).status == 1
    res = runner.invoke(app, ["budget", "check", str(ledger_dir), "--max-epsilon", str(eps * 1.01),
                              "--max-delta", "1e-15"])
    assert res.exit_code == 1
    with pytest.raises(AssertionError, match="OVER"):
        assert_budget(ledger_dir, max_epsilon=0.3)


def test_tampered_or_missing_exit_2(ledger_dir: Path, tmp_path: Path) -> None:
    path = ledger_dir / "budget.json"
    data = json.loads(path.read_text())
    data["entries"][0]["rho"] /= 100  # pretend it cost less
    path.write_text(json.dumps(data))
    res = runner.invoke(app, ["budget", "check", str(path), "--max-epsilon", "1.0"])
    assert res.exit_code == 2 and "hash chain" in res.output
    res = runner.invoke(app, ["budget", "check", str(tmp_path / "missing.json"), "--max-epsilon", "1"])
    assert res.exit_code == 2 and "not found" in res.output
    with pytest.raises(AssertionError, match="invalid ledger"):
        assert_budget(path, max_epsilon=10.0)


def test_a_seeded_test_ledger_is_refused_unless_allowed(tmp_path: Path) -> None:
    acc = Accountant(1.0, 1e-9, rng=seeded_random(0), release_id="test")
    acc.measure_gaussian(np.arange(3), sigma=10.0, l2_sensitivity=1.0, query="q")
    acc.ledger().write(tmp_path / "budget.json")
    res = runner.invoke(app, ["budget", "check", str(tmp_path), "--max-epsilon", "1.0"])
    assert res.exit_code == 2 and "seeded test bundle: not for release" in res.output
    assert "seed" not in json.dumps([e["random_source"] for e in
                                     json.loads((tmp_path / "budget.json").read_text())["entries"]]
                                    ).replace("seeded", "")
    res = runner.invoke(app, ["budget", "check", str(tmp_path), "--max-epsilon", "1.0", "--allow-seeded"])
    assert res.exit_code == 0, res.output
    with pytest.raises(AssertionError, match="seeded test bundle"):
        assert_budget(tmp_path, max_epsilon=1.0)
    assert_budget(tmp_path, max_epsilon=1.0, allow_seeded=True)


def test_public_ledger_entries_carry_only_the_date(ledger_dir: Path) -> None:
    entries = json.loads((ledger_dir / "budget.json").read_text())["entries"]
    assert all(len(e["time"]) == 10 and e["time"][4] == "-" for e in entries)
