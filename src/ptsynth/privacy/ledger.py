"""The privacy ledger: every measurement, hash-chained, in a schema-versioned ``budget.json``.

Why: a release's privacy claim must be checkable by someone who did not run it (CI, an auditor,
the data steward). The ledger lists every measurement (query, mechanism, sensitivity and norm,
noise scale, ρ, its own (ε, δ), the random source and whether it was seeded, UTC time) and the
totals, states the privacy unit, the neighbouring relation and the ρ→(ε, δ) conversion.

Format (``schema_version`` 1)::

    {"schema_version": 1, "privacy_unit": ..., "neighbouring": ..., "conversion": ...,
     "release_id": ..., "total": {"epsilon", "delta", "rho"}, "target": {...} | null,
     "entries": [{"index", "release_id", "query", "mechanism", "sensitivity",
                  "sensitivity_norm", "noise_scale", "rho", "epsilon", "delta",
                  "random_source", "seeded", "time", "hash"}, ...]}

A dataset-level ledger (:class:`DatasetLedger`) uses the same format plus ``"kind": "dataset"``
and ``"lifetime"``; its reservations are entries with mechanism ``"reservation"``.

Tamper evidence: ``hash = sha256(previous hash + canonical JSON of the entry without "hash")``
(the first entry chains from 64 zeros; canonical = sorted keys, no spaces, ASCII). Loading
verifies the chain, that ``total.rho`` equals the sum of the entries' ρ and that
``total.epsilon == ε(total.rho, total.delta)`` (relative tolerance 1e-9). The chain has no secret
key: it detects edits and accidents, not a forger who recomputes every hash — publish the last
hash (e.g. in the release manifest) to anchor it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ptsynth.errors import BudgetExceededError, ConfigError, LedgerError
from ptsynth.privacy.zcdp import (
    CONVERSION,
    NEIGHBOURING,
    PRIVACY_UNIT,
    SPEND_RTOL,
    epsilon_from_rho_delta,
    rho_from_epsilon_delta,
)

__all__ = [
    "SCHEMA_VERSION",
    "BudgetCheck",
    "DatasetLedger",
    "Ledger",
    "LedgerEntry",
    "assert_budget",
    "check_budget",
]

SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64
#: Relative tolerance of the totals check on load.
LOAD_RTOL = 1e-9
LEDGER_FILENAME = "budget.json"

RESERVATION = "reservation"
#: A release that failed after measuring, on a decision taken from its DP outputs: charged.
ABORTED = "aborted reservation (counted as spent: data may have been touched)"
#: A release that failed before its bundle was in place, publishing nothing: refunded (ρ = 0).
REFUNDED = "aborted-refunded"


def utc_now() -> str:
    """A precise time stamp (UTC, ISO 8601), for the steward's private dataset ledger."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_date() -> str:
    """The time stamp of a *public* ledger entry: the date only. Finer times would publish the
    gaps between measurements, which are data-dependent compute times (a side channel)."""
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class LedgerEntry:
    """One measurement (or, in a dataset ledger, one reservation)."""

    index: int
    release_id: str | None
    query: str
    mechanism: str
    sensitivity: float | None
    sensitivity_norm: str | None
    noise_scale: float | None
    rho: float
    epsilon: float
    delta: float
    random_source: str
    seeded: bool
    time: str
    hash: str = ""
    #: Optional structured facts (a dataset ledger's reservation: owner process, output path,
    #: how it was settled). Omitted from the JSON and the hash when ``None``.
    detail: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The entry as a dict without its hash (what the hash covers)."""
        d = self.to_dict()
        d.pop("hash")
        return d

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["detail"] is None:
            del d["detail"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LedgerEntry:
        names = {f.name for f in fields(cls)} - {"detail"}
        missing = names - set(d)
        if missing:
            raise LedgerError(f"ledger entry misses field(s) {sorted(missing)}")
        extra = set(d) - names - {"detail"}
        if extra:
            raise LedgerError(f"ledger entry has unknown field(s) {sorted(extra)}")
        return cls(**d)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(previous: str, entry: LedgerEntry) -> str:
    """sha256(previous hash + canonical JSON of the entry without its hash), hex."""
    return hashlib.sha256((previous + _canonical(entry.body())).encode("ascii")).hexdigest()


def chain(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """Entries re-indexed ``0..n-1`` and re-hashed in order."""
    out, prev = [], GENESIS_HASH
    for i, e in enumerate(entries):
        e = replace(e, index=i, hash="")
        e = replace(e, hash=entry_hash(prev, e))
        out.append(e)
        prev = e.hash
    return out


def _close(a: float, b: float, rtol: float = LOAD_RTOL) -> bool:
    return abs(a - b) <= rtol * max(abs(a), abs(b)) or abs(a - b) <= 1e-300


@dataclass
class Ledger:
    """A verified list of measurements with totals; see the module docstring for the format."""

    entries: list[LedgerEntry]
    total: dict[str, float]
    target: dict[str, float] | None = None
    release_id: str | None = None
    schema_version: int = SCHEMA_VERSION
    privacy_unit: str = PRIVACY_UNIT
    neighbouring: str = NEIGHBOURING
    conversion: str = CONVERSION
    #: other top-level keys (e.g. a dataset ledger's ``kind`` and ``lifetime``), kept verbatim
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entries(
        cls,
        entries: list[LedgerEntry],
        *,
        delta: float,
        target: dict[str, float] | None = None,
        release_id: str | None = None,
        extra: dict[str, Any] | None = None,
        privacy_unit: str = PRIVACY_UNIT,
    ) -> Ledger:
        """Chain ``entries`` and compute totals: ρ adds up (zCDP), ε is converted at ``delta``."""
        chained = chain(list(entries))
        rho = math.fsum(e.rho for e in chained)
        total = {"epsilon": epsilon_from_rho_delta(rho, delta), "delta": float(delta), "rho": rho}
        return cls(chained, total, target, release_id, extra=dict(extra or {}),
                   privacy_unit=privacy_unit)

    @property
    def head_hash(self) -> str:
        """Hash of the last entry (anchor it elsewhere, e.g. in the manifest)."""
        return self.entries[-1].hash if self.entries else GENESIS_HASH

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema_version": self.schema_version,
            "privacy_unit": self.privacy_unit,
            "neighbouring": self.neighbouring,
            "conversion": self.conversion,
            "release_id": self.release_id,
            "total": dict(self.total),
            "target": None if self.target is None else dict(self.target),
        }
        d.update(self.extra)
        d["entries"] = [e.to_dict() for e in self.entries]
        return d

    def write(self, path: str | Path, *, mode: int = 0o644) -> Path:
        """Write atomically (temporary file in the same folder, fsync, rename) with file
        ``mode`` (0644: a release's public ledger; 0600: a private dataset ledger)."""
        path = Path(path)
        if path.is_dir():
            path = path / LEDGER_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        """Read and verify a ledger (a file, or a folder holding ``budget.json``).

        Raises :class:`LedgerError` saying what is wrong: missing, not JSON, unknown schema
        version, missing fields, broken hash chain, or totals inconsistent with the entries.
        """
        path = Path(path)
        if path.is_dir():
            path = path / LEDGER_FILENAME
        if not path.is_file():
            raise LedgerError(f"ledger file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LedgerError(f"ledger {path} is not readable JSON ({type(exc).__name__})") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "ledger") -> Ledger:
        """Build and verify a ledger from its JSON dict (see :meth:`load`)."""
        if not isinstance(data, dict):
            raise LedgerError(f"{source}: top level is not a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise LedgerError(
                f"{source}: unknown schema_version {version!r} (this ptsynth reads {SCHEMA_VERSION})"
            )
        required = ("privacy_unit", "neighbouring", "conversion", "total", "entries")
        missing = [k for k in required if k not in data]
        if missing:
            raise LedgerError(f"{source}: missing key(s) {missing}")
        total = data["total"]
        if not isinstance(total, dict) or any(
            not isinstance(total.get(k), (int, float)) or isinstance(total.get(k), bool)
            for k in ("epsilon", "delta", "rho")
        ):
            raise LedgerError(f"{source}: total must hold numeric epsilon, delta and rho")
        if not isinstance(data["entries"], list):
            raise LedgerError(f"{source}: entries must be a list")
        try:
            entries = [LedgerEntry.from_dict(e) for e in data["entries"]]
        except LedgerError as exc:
            raise LedgerError(f"{source}: {exc}") from None
        except TypeError:
            raise LedgerError(f"{source}: an entry is not a JSON object") from None
        prev = GENESIS_HASH
        for i, e in enumerate(entries):
            if e.index != i:
                raise LedgerError(f"{source}: entry {i} has index {e.index} (entries reordered or removed)")
            if not isinstance(e.rho, (int, float)) or not math.isfinite(e.rho) or e.rho < 0:
                raise LedgerError(f"{source}: entry {i} has an invalid rho")
            expect = entry_hash(prev, e)
            if e.hash != expect:
                raise LedgerError(f"{source}: hash chain broken at entry {i} (entry or order altered)")
            prev = e.hash
        rho_sum = math.fsum(e.rho for e in entries)
        if not _close(float(total["rho"]), rho_sum):
            raise LedgerError(
                f"{source}: total.rho={total['rho']!r} differs from the sum of entry rho ({rho_sum!r})"
            )
        try:
            eps = epsilon_from_rho_delta(float(total["rho"]), float(total["delta"]))
        except ValueError:
            raise LedgerError(f"{source}: total.delta / total.rho out of range") from None
        if not _close(float(total["epsilon"]), eps):
            raise LedgerError(
                f"{source}: total.epsilon={total['epsilon']!r} is not epsilon(total.rho, "
                f"total.delta)={eps!r}"
            )
        known = {"schema_version", "privacy_unit", "neighbouring", "conversion", "release_id",
                 "total", "target", "entries"}
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(
            entries=entries,
            total={k: float(total[k]) for k in ("epsilon", "delta", "rho")},
            target=data.get("target"),
            release_id=data.get("release_id"),
            schema_version=version,
            privacy_unit=data["privacy_unit"],
            neighbouring=data["neighbouring"],
            conversion=data["conversion"],
            extra=extra,
        )


# ---------------------------------------------------------------------------------------------
# Dataset-level lifetime ledger
# ---------------------------------------------------------------------------------------------
class DatasetLedger:
    """The lifetime budget of one dataset across all its releases, in a file-locked ledger.

    The file holds the lifetime budget itself (written once by :meth:`create`, ``ptsynth budget
    init``), so a release config only names the file. A release :meth:`reserve` s its whole ρ
    before measuring; the reservation is refused when ``spent + reserved + ρ`` would exceed the
    lifetime ρ. Then it :meth:`commit` s its actual entries (replacing the reservation) or
    :meth:`abort` s: refunded (ρ = 0, marked ``aborted-refunded`` with the reason) when it
    published nothing and no decision was taken from its DP outputs, charged otherwise. Every
    read-modify-write holds an exclusive ``filelock.FileLock(path + ".lock")``, so two concurrent
    releases can never both pass a budget that fits only one. The file is private (mode 0600):
    it is the steward's, with exact times and the owner of each reservation.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        lifetime_epsilon: float | None = None,
        lifetime_delta: float | None = None,
        lock_timeout: float = 60.0,
        must_exist: bool = True,
    ) -> None:
        self.path = Path(path)
        #: A release opens its dataset ledger with ``must_exist=True`` (the default): a moved,
        #: deleted or mistyped ledger path must not silently start a fresh lifetime budget.
        self.must_exist = bool(must_exist)
        self._lock = FileLock(str(self.path) + ".lock", timeout=lock_timeout)
        self._lifetime: tuple[float, float] | None = None
        if lifetime_epsilon is not None or lifetime_delta is not None:
            if lifetime_epsilon is None or lifetime_delta is None:
                raise ConfigError("give both lifetime_epsilon and lifetime_delta, or neither "
                                  "(then they are read from the ledger file)", key="lifetime")
            self._lifetime = _check_lifetime(lifetime_epsilon, lifetime_delta)
        elif self.must_exist:
            with self._locked():
                self._read()  # reads the stored lifetime

    @property
    def lifetime_epsilon(self) -> float:
        return self._known_lifetime()[0]

    @property
    def lifetime_delta(self) -> float:
        return self._known_lifetime()[1]

    @property
    def lifetime_rho(self) -> float:
        return rho_from_epsilon_delta(*self._known_lifetime())

    @property
    def lifetime(self) -> dict[str, float]:
        return {"epsilon": self.lifetime_epsilon, "delta": self.lifetime_delta,
                "rho": self.lifetime_rho}

    def _known_lifetime(self) -> tuple[float, float]:
        if self._lifetime is None:
            with self._locked():
                self._read()
        if self._lifetime is None:
            raise LedgerError(f"{self.path}: no lifetime budget known (create the ledger with "
                              "`ptsynth budget init`)")
        return self._lifetime

    # -- file I/O (call with the lock held) ------------------------------------------------------
    def _read(self) -> list[LedgerEntry]:
        if not self.path.exists():
            if self.must_exist:
                raise LedgerError(
                    f"dataset ledger {self.path} does not exist; refusing to start a fresh lifetime "
                    f"budget implicitly. Create it once with `ptsynth budget init {self.path} "
                    "--lifetime-epsilon E --lifetime-delta D`"
                )
            return []
        led = Ledger.load(self.path)
        stored = led.extra.get("lifetime")
        if led.extra.get("kind") != "dataset" or not isinstance(stored, dict):
            raise LedgerError(f"{self.path}: not a dataset ledger (kind/lifetime missing)")
        try:
            found = _check_lifetime(stored.get("epsilon"), stored.get("delta"))
        except (ConfigError, TypeError, ValueError):
            raise LedgerError(f"{self.path}: its lifetime budget is invalid") from None
        if self._lifetime is None:
            self._lifetime = found
        elif not (_close(found[0], self._lifetime[0]) and _close(found[1], self._lifetime[1])):
            raise LedgerError(
                f"{self.path}: the stored lifetime budget (epsilon={found[0]}, delta={found[1]}) "
                f"differs from the one given (epsilon={self._lifetime[0]}, "
                f"delta={self._lifetime[1]}); a lifetime budget is never changed implicitly"
            )
        return led.entries

    def _write(self, entries: list[LedgerEntry]) -> None:
        Ledger.from_entries(
            entries, delta=self.lifetime_delta, target=self.lifetime,
            extra={"kind": "dataset", "lifetime": self.lifetime},
        ).write(self.path, mode=0o600)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the exclusive file lock for one read-modify-write."""
        try:
            self._lock.acquire()
        except Timeout:
            raise LedgerError(f"could not lock {self.path} (another release holds it)") from None
        try:
            yield
        finally:
            self._lock.release()

    # -- public API -----------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, lifetime_epsilon: float, lifetime_delta: float) -> DatasetLedger:
        """Write a new, empty dataset ledger holding the lifetime budget; refuse to overwrite one."""
        ledger = cls(path, lifetime_epsilon=lifetime_epsilon, lifetime_delta=lifetime_delta,
                     must_exist=False)
        with ledger._locked():
            if ledger.path.exists():
                raise LedgerError(f"{ledger.path} already exists; a lifetime ledger is never reset")
            ledger.path.parent.mkdir(parents=True, exist_ok=True)
            ledger._write([])
        ledger.must_exist = True
        return ledger

    def ledger(self) -> Ledger:
        """The current verified ledger (an empty one if the file does not exist yet)."""
        with self._locked():
            entries = self._read()
        return Ledger.from_entries(
            entries, delta=self.lifetime_delta, target=self.lifetime,
            extra={"kind": "dataset", "lifetime": self.lifetime},
        )

    @property
    def spent_rho(self) -> float:
        """ρ spent or reserved so far (open reservations and charged aborts included)."""
        return self.ledger().total["rho"]

    def open_reservations(self) -> list[LedgerEntry]:
        """Reservations not yet committed nor aborted (running releases, or killed ones)."""
        return [e for e in self.ledger().entries if e.mechanism == RESERVATION]

    def reserve(self, release_id: str, rho: float, *, detail: dict[str, Any] | None = None) -> None:
        """Reserve ``rho`` for ``release_id``, or raise :class:`BudgetExceededError`.

        ``detail`` (e.g. the owner process and the output folder) is kept with the reservation,
        so that :mod:`ptsynth.release.recovery` can settle it if the release is killed.
        """
        rho = float(rho)
        if not math.isfinite(rho) or rho <= 0:
            raise ValueError("rho must be finite and positive")
        release_id = str(release_id)
        with self._locked():
            entries = self._read()
            if any(e.release_id == release_id for e in entries):
                raise LedgerError(f"release id {release_id!r} already appears in {self.path}")
            spent = math.fsum(e.rho for e in entries)
            if spent + rho > self.lifetime_rho * (1 + SPEND_RTOL):
                raise BudgetExceededError(
                    f"release {release_id!r} needs rho={rho:.6g} but only "
                    f"{max(0.0, self.lifetime_rho - spent):.6g} of the dataset's lifetime budget "
                    f"rho={self.lifetime_rho:.6g} (epsilon={self.lifetime_epsilon}, "
                    f"delta={self.lifetime_delta:g}) remains; nothing was measured"
                )
            entries.append(
                LedgerEntry(
                    index=len(entries), release_id=release_id,
                    query=f"reservation for release {release_id}", mechanism=RESERVATION,
                    sensitivity=None, sensitivity_norm=None, noise_scale=None, rho=rho,
                    epsilon=epsilon_from_rho_delta(rho, self.lifetime_delta),
                    delta=self.lifetime_delta, random_source="none (no data touched)",
                    seeded=False, time=utc_now(), detail=dict(detail) if detail else None,
                )
            )
            self._write(entries)

    def _reservation(self, entries: list[LedgerEntry], release_id: str) -> int:
        idx = [i for i, e in enumerate(entries)
               if e.release_id == release_id and e.mechanism == RESERVATION]
        if not idx:
            raise LedgerError(f"no open reservation for release {release_id!r} in {self.path}")
        return idx[0]

    def commit(self, release_id: str, entries: list[LedgerEntry] | Ledger) -> None:
        """Replace the reservation with the release's actual entries.

        If they cost more than was reserved they are still recorded (the data was used), and
        :class:`BudgetExceededError` is raised afterwards.
        """
        release_id = str(release_id)
        new = list(entries.entries if isinstance(entries, Ledger) else entries)
        with self._locked():
            current = self._read()
            i = self._reservation(current, release_id)
            reserved = current[i].rho
            used = math.fsum(e.rho for e in new)
            mine = [replace(e, release_id=release_id) for e in new]
            current = current[:i] + current[i + 1:] + mine
            self._write(current)
        if used > reserved * (1 + SPEND_RTOL):
            raise BudgetExceededError(
                f"release {release_id!r} spent rho={used:.6g}, more than its reservation "
                f"{reserved:.6g}; the actual spend was recorded"
            )

    def abort(self, release_id: str, *, refund: bool, reason: str) -> None:
        """Settle a failed release's reservation.

        ``refund=True``: nothing was published and no decision was taken from a DP output, so
        the reservation is returned (ρ = 0, mechanism ``aborted-refunded``). Otherwise it stays
        counted as spent. ``reason`` (an error's type and rule, never a record value) is kept
        with the entry.
        """
        release_id = str(release_id)
        with self._locked():
            current = self._read()
            i = self._reservation(current, release_id)
            entry = current[i]
            detail = {**(entry.detail or {}), "reason": str(reason), "settled": utc_now()}
            if refund:
                current[i] = replace(entry, mechanism=REFUNDED, rho=0.0, epsilon=0.0,
                                     query=f"{entry.query}: refunded (nothing published)",
                                     detail=detail)
            else:
                current[i] = replace(entry, mechanism=ABORTED, detail=detail)
            self._write(current)


def _check_lifetime(epsilon: Any, delta: Any) -> tuple[float, float]:
    try:
        eps, dlt = float(epsilon), float(delta)
    except (TypeError, ValueError):
        raise ConfigError("must be numbers", key="lifetime") from None
    if not (math.isfinite(eps) and eps > 0):
        raise ConfigError("must be finite and positive", key="lifetime_epsilon")
    if not 0 < dlt < 1:
        raise ConfigError("must lie strictly between 0 and 1", key="lifetime_delta")
    return eps, dlt


# ---------------------------------------------------------------------------------------------
# CI checks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BudgetCheck:
    """Outcome of :func:`check_budget`: ``status`` 0 within, 1 over, 2 missing / invalid /
    tampered / a seeded test ledger. ``open_reservations``: a dataset ledger's reservations of
    releases still running or killed (see ``ptsynth budget recover``)."""

    status: int
    message: str
    ledger: Ledger | None
    open_reservations: tuple[LedgerEntry, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == 0

    @property
    def seeded(self) -> bool:
        return self.ledger is not None and any(e.seeded for e in self.ledger.entries)


#: What ``budget check`` says of a ledger whose noise came from a seeded generator.
SEEDED_MESSAGE = (
    "seeded test bundle: not for release (its noise came from a seeded generator, so anyone "
    "who learns the seed can remove it)"
)


def check_budget(
    path: str | Path, max_epsilon: float, max_delta: float | None = None, *,
    allow_seeded: bool = False,
) -> BudgetCheck:
    """Verify the ledger at ``path`` and compare its totals with a maximum (ε, δ).

    Without ``max_delta`` the ledger's own (ε, δ) must satisfy ``ε <= max_epsilon``. With
    ``max_delta``, the ledger's ρ is converted at ``max_delta`` (a ρ-zCDP guarantee holds at every
    δ) and that ε must be ``<= max_epsilon``. Relative tolerance 1e-9. A ledger with seeded
    entries fails (status 2) unless ``allow_seeded`` (test pipelines).
    """
    try:
        led = Ledger.load(path)
    except LedgerError as exc:
        return BudgetCheck(2, f"invalid ledger: {exc}", None)
    open_res = tuple(e for e in led.entries if e.mechanism == RESERVATION)
    if any(e.seeded for e in led.entries) and not allow_seeded:
        return BudgetCheck(2, SEEDED_MESSAGE, led, open_res)
    rho, eps, delta = led.total["rho"], led.total["epsilon"], led.total["delta"]
    if max_delta is None:
        at_delta, eps_at = delta, eps
    else:
        at_delta = float(max_delta)
        if not 0 < at_delta < 1:
            return BudgetCheck(2, "max_delta must be in (0, 1)", led, open_res)
        eps_at = epsilon_from_rho_delta(rho, at_delta)
    within = eps_at <= float(max_epsilon) * (1 + LOAD_RTOL)
    msg = (
        f"{'within' if within else 'OVER'} budget: rho={rho:.6g} gives epsilon={eps_at:.6g} at "
        f"delta={at_delta:g} (maximum epsilon {max_epsilon:g}); {len(led.entries)} entries"
    )
    if open_res:
        msg += (f"; {len(open_res)} open reservation(s) counted as spent (running, or killed: "
                "`ptsynth budget recover` settles those of dead runs)")
    return BudgetCheck(0 if within else 1, msg, led, open_res)


def assert_budget(
    path: str | Path, *, max_epsilon: float, max_delta: float | None = None,
    allow_seeded: bool = False,
) -> Ledger:
    """:func:`check_budget` for pytest: returns the ledger, or raises ``AssertionError``."""
    res = check_budget(path, max_epsilon, max_delta, allow_seeded=allow_seeded)
    if res.status != 0:
        raise AssertionError(f"privacy budget check failed for {path}: {res.message}")
    assert res.ledger is not None
    return res.ledger
