"""Ledger: schema, hash chain, totals verification, dataset lifetime ledger with file locking."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np
import pytest

from ptsynth.errors import BudgetExceededError, LedgerError
from ptsynth.privacy import (
    Accountant,
    DatasetLedger,
    Ledger,
    epsilon_from_rho_delta,
    rho_from_epsilon_delta,
    seeded_random,
)
from ptsynth.privacy.ledger import chain


def _ledger(release_id: str = "r1") -> Ledger:
    acc = Accountant(1.0, 1e-9, rng=seeded_random(0), release_id=release_id)
    acc.measure_gaussian(np.arange(4), sigma=20.0, l2_sensitivity=1.0, query="age x sex")
    acc.measure_laplace(np.array([10]), scale=50.0, l1_sensitivity=1.0, query="record count")
    acc.select_exponential(np.arange(3.0), epsilon=0.05, sensitivity=1.0, query="pair choice")
    return acc.ledger()


def test_schema_and_round_trip(tmp_path: Path) -> None:
    led = _ledger()
    path = led.write(tmp_path / "budget.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert {"privacy_unit", "neighbouring", "conversion", "total", "target", "entries"} <= set(data)
    assert "add/remove one person" in data["neighbouring"] and "person" in data["privacy_unit"]
    assert set(data["total"]) == {"epsilon", "delta", "rho"}
    keys = {"index", "release_id", "query", "mechanism", "sensitivity", "sensitivity_norm",
            "noise_scale", "rho", "epsilon", "delta", "random_source", "seeded", "time", "hash"}
    assert all(set(e) == keys for e in data["entries"])
    back = Ledger.load(tmp_path)  # a folder holding budget.json works too
    assert back.entries == led.entries and back.total == pytest.approx(led.total)
    assert back.total["rho"] == pytest.approx(sum(e.rho for e in led.entries))
    assert back.total["epsilon"] == pytest.approx(epsilon_from_rho_delta(back.total["rho"], 1e-9))
    assert back.head_hash == led.entries[-1].hash


def _tamper(path: Path, fn) -> None:
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["entries"][1].__setitem__("rho", 1e-9), "hash chain"),
        (lambda d: d["entries"][0].__setitem__("query", "other"), "hash chain"),
        (lambda d: d["entries"].pop(1), "index|hash"),
        (lambda d: d["entries"].reverse(), "index|hash"),
        (lambda d: d["total"].__setitem__("rho", d["total"]["rho"] / 2), "total.rho"),
        (lambda d: d["total"].__setitem__("epsilon", 0.001), "total.epsilon"),
        (lambda d: d.__setitem__("schema_version", 2), "schema_version"),
        (lambda d: d.pop("entries"), "missing"),
        (lambda d: d["entries"][0].pop("seeded"), "misses"),
    ],
)
def test_tampering_detected(tmp_path: Path, edit, match: str) -> None:
    path = _ledger().write(tmp_path / "budget.json")
    _tamper(path, edit)
    with pytest.raises(LedgerError, match=match):
        Ledger.load(path)


def test_rehashed_but_inconsistent_total_detected(tmp_path: Path) -> None:
    """A forger who lowers an entry's ρ and re-chains must still fix the totals."""
    led = _ledger()
    path = led.write(tmp_path / "b.json")
    data = json.loads(path.read_text())
    entries = [type(led.entries[0])(**e) for e in data["entries"]]
    from dataclasses import replace

    entries[0] = replace(entries[0], rho=entries[0].rho / 10)
    data["entries"] = [e.to_dict() for e in chain(entries)]
    path.write_text(json.dumps(data))
    with pytest.raises(LedgerError, match="total.rho"):
        Ledger.load(path)


def test_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="not found"):
        Ledger.load(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LedgerError, match="JSON"):
        Ledger.load(bad)


# ---------------------------------------------------------------------------------------------
# dataset ledger
# ---------------------------------------------------------------------------------------------
def test_dataset_reserve_commit_abort(tmp_path: Path) -> None:
    path = tmp_path / "dataset.json"
    ds = DatasetLedger.create(path, lifetime_epsilon=2.0, lifetime_delta=1e-9)
    life = rho_from_epsilon_delta(2.0, 1e-9)
    r1 = rho_from_epsilon_delta(1.0, 1e-9)
    ds.reserve("r1", r1)
    assert ds.spent_rho == pytest.approx(r1)
    led = _ledger("r1")
    ds.commit("r1", led.entries)
    assert ds.spent_rho == pytest.approx(led.total["rho"])
    ds.reserve("r2", r1)
    ds.abort("r2", refund=False, reason="NoiseDominatesError: decided from a DP output")
    assert ds.spent_rho == pytest.approx(led.total["rho"] + r1)
    with pytest.raises(BudgetExceededError, match="lifetime"):
        ds.reserve("r3", life)  # would exceed the lifetime
    loaded = Ledger.load(path)  # the dataset ledger is itself a verifiable ledger
    assert loaded.extra["kind"] == "dataset"
    mechs = [e.mechanism for e in loaded.entries]
    assert "reservation" not in mechs and any(m.startswith("aborted") for m in mechs)
    assert {e.release_id for e in loaded.entries} == {"r1", "r2"}
    with pytest.raises(LedgerError, match="already"):
        ds.reserve("r1", 1e-6)
    with pytest.raises(LedgerError, match="no open reservation"):
        ds.commit("r9", [])
    with pytest.raises(LedgerError, match="lifetime budget"):
        DatasetLedger(path, lifetime_epsilon=5.0, lifetime_delta=1e-9).reserve("r4", 1e-6)


def test_commit_over_reservation_is_recorded_then_refused(tmp_path: Path) -> None:
    ds = DatasetLedger.create(tmp_path / "d.json", lifetime_epsilon=5.0, lifetime_delta=1e-9)
    led = _ledger("big")
    ds.reserve("big", led.total["rho"] / 2)
    with pytest.raises(BudgetExceededError, match="recorded"):
        ds.commit("big", led)
    assert ds.spent_rho == pytest.approx(led.total["rho"])


class _NoLock:
    def acquire(self, *a, **k) -> None:
        pass

    def release(self, *a, **k) -> None:
        pass


def _race(path: str, barrier, results, i: int, locked: bool) -> None:
    ds = DatasetLedger(path)
    read = ds._read

    def slow_read():  # widen the read-modify-write window so a missing lock would show
        entries = read()
        time.sleep(0.3)
        return entries

    ds._read = slow_read
    if not locked:
        ds._lock = _NoLock()
    barrier.wait()
    try:
        ds.reserve(f"release-{i}", 0.6 * ds.lifetime_rho)
        results.put("ok")
    except BudgetExceededError:
        results.put("refused")


def _run_race(path: str, locked: bool) -> list[str]:
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, barrier, results, i, locked)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return sorted(results.get(timeout=5) for _ in range(2))


def test_concurrent_reservations_cannot_both_pass(tmp_path: Path) -> None:
    for round_ in range(2):
        path = str(tmp_path / f"race{round_}.json")
        DatasetLedger.create(path, lifetime_epsilon=1.0, lifetime_delta=1e-9)
        assert _run_race(path, locked=True) == ["ok", "refused"]
        assert len(Ledger.load(path).entries) == 1


def test_race_test_catches_a_missing_lock(tmp_path: Path) -> None:
    """Without the file lock both releases pass: the race test above has teeth."""
    DatasetLedger.create(tmp_path / "nolock.json", lifetime_epsilon=1.0, lifetime_delta=1e-9)
    assert _run_race(str(tmp_path / "nolock.json"), locked=False) == ["ok", "ok"]


def test_the_lifetime_is_read_from_the_ledger_file(tmp_path: Path) -> None:
    path = tmp_path / "life.json"
    DatasetLedger.create(path, lifetime_epsilon=3.0, lifetime_delta=1e-7)
    ds = DatasetLedger(path)  # a config only names the file
    assert ds.lifetime_epsilon == 3.0 and ds.lifetime_delta == 1e-7
    assert DatasetLedger(path, lifetime_epsilon=3.0, lifetime_delta=1e-7).lifetime_rho == ds.lifetime_rho
    with pytest.raises(LedgerError, match="does not exist"):
        DatasetLedger(tmp_path / "missing.json")
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the steward's, private


def test_a_refund_returns_the_reservation_with_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    ds = DatasetLedger.create(path, lifetime_epsilon=1.0, lifetime_delta=1e-9)
    ds.reserve("a", 0.5 * ds.lifetime_rho, detail={"pid": 1, "out": "/x"})
    assert [e.release_id for e in ds.open_reservations()] == ["a"]
    ds.abort("a", refund=True, reason="InputError: value is not one of the declared values")
    assert ds.spent_rho == 0.0 and ds.open_reservations() == []
    entry = Ledger.load(path).entries[0]
    assert entry.mechanism == "aborted-refunded" and entry.rho == 0.0
    assert entry.detail["reason"].startswith("InputError") and entry.detail["out"] == "/x"
    ds.reserve("b", 0.9 * ds.lifetime_rho)  # the refunded budget is available again
    with pytest.raises(LedgerError, match="no open reservation"):
        ds.abort("a", refund=True, reason="twice")

