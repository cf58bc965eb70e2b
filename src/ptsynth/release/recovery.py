"""Settling what killed releases leave behind: open reservations and staging folders.

Why: a release can die where no handler runs (``kill -9``, a power cut). It then leaves its
reservation open in the dataset ledger (counted as spent) and a hidden staging folder beside its
bundle (possibly a complete bundle with the private provenance key). Each release therefore
records who it is — process id, the process's start time (so a reused pid is not mistaken for
it), host, output folder, staging folder — in its reservation and in its staging folder.

Rules:

* a reservation of a process that is still running is left alone;
* a reservation of a dead process is **refunded** when no bundle of that release is in place
  (nothing was published: the bundle is moved into place only after the ledger is committed,
  so an open reservation with no bundle means the run never published), and **charged** when a
  bundle of that release exists (cannot happen in a normal run; settled conservatively);
* a staging folder of a dead process is deleted (it was never published).

Only the same host can tell whether a process is alive; reservations from another host are
settled only with ``force=True``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ptsynth.privacy.ledger import DatasetLedger, LedgerEntry

#: Name of the owner file inside a staging folder (removed before the bundle is moved in place).
OWNER_FILE = ".ptsynth-owner.json"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell reused pids apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22 (starttime) counted after the ")" closing the command name
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def owner(*, out_dir: Path, staging: Path, release_id: str) -> dict[str, Any]:
    """Who a running release is: stored with its reservation and in its staging folder."""
    pid = os.getpid()
    return {"pid": pid, "started": _start_time(pid), "host": socket.gethostname(),
            "out": str(Path(out_dir).resolve()), "staging": str(Path(staging).resolve()),
            "release_id": release_id}


def alive(info: dict[str, Any]) -> bool | None:
    """True/False for a process on this host; None when it ran on another host."""
    if info.get("host") != socket.gethostname():
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    started = info.get("started")
    return started is None or _start_time(pid) == started


def write_owner_file(staging: Path, info: dict[str, Any]) -> None:
    (staging / OWNER_FILE).write_text(json.dumps(info), encoding="utf-8")


def sweep_staging(out_dir: str | Path) -> list[Path]:
    """Delete staging and backup folders of dead runs beside ``out_dir``; return what went.

    Staging folders are named ``.<bundle name>.<random>`` and hold an owner file; backups of
    replaced bundles (``.<name>.old-<random>``) are left by a run killed mid-replacement.
    """
    out_dir = Path(out_dir)
    parent = out_dir.parent
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for path in parent.glob(f".{out_dir.name}.*"):
        if not path.is_dir():
            continue
        info_path = path / OWNER_FILE
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # not ours, or from a run that died before writing it: leave it
        if alive(info) is False:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@dataclass(frozen=True)
class Settlement:
    """What :func:`recover` did with one open reservation."""

    release_id: str
    action: str  # "running" | "refunded" | "charged" | "skipped: other host" | "skipped: unknown owner"
    reason: str


def _bundle_in_place(out: str | None, release_id: str) -> bool:
    if not out:
        return False
    manifest = Path(out) / "manifest.json"
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("release_id") == release_id
    except (OSError, ValueError, AttributeError):
        return False


def recover(ledger_path: str | Path, *, force: bool = False) -> list[Settlement]:
    """Settle the open reservations of dead runs in a dataset ledger (see the module doc)."""
    ledger = DatasetLedger(ledger_path)
    out: list[Settlement] = []
    for entry in ledger.open_reservations():
        out.append(_settle(ledger, entry, force=force))
    return out


def _settle(ledger: DatasetLedger, entry: LedgerEntry, *, force: bool) -> Settlement:
    rid = str(entry.release_id)
    info = entry.detail or {}
    state = alive(info) if info else None
    if state is True:
        return Settlement(rid, "running", "its process is still running")
    if state is None and not force:
        why = "ran on another host" if info else "the reservation names no owner process"
        return Settlement(rid, "skipped: " + ("other host" if info else "unknown owner"),
                          f"{why}; pass --force once you know it is not running")
    if _bundle_in_place(info.get("out"), rid):
        reason = "run ended after its bundle was in place: charged"
        ledger.abort(rid, refund=False, reason=reason)
        return Settlement(rid, "charged", reason)
    staging = info.get("staging")
    if staging:
        shutil.rmtree(staging, ignore_errors=True)
    reason = "run ended (killed) before its bundle was in place: nothing published"
    ledger.abort(rid, refund=True, reason=reason)
    return Settlement(rid, "refunded", reason)
