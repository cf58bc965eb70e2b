"""A real, throw-away PostgreSQL server for the tests and the benchmark.

Why a real server: the PostgreSQL source's promises (server-side streaming, read-only
transactions, SQLSTATE-only errors, a dropped connection mid-read, credentials from the
environment / ``.pgpass``) only mean something against libpq and a real backend, not a mock.

:func:`temporary_postgres` runs ``initdb`` into a fresh temporary folder, starts the server on a
free loopback port and a private unix socket, and stops it (``pg_ctl stop -m immediate``) and
deletes the folder when the ``with`` block ends, also on failure. PostgreSQL refuses to run as
root, so under root (containers, CI) the server runs as an unprivileged user: ``nobody`` unless
``PTSYNTH_TEST_PG_OS_USER`` names another. The binaries are found in ``PTSYNTH_PG_BIN``, on
``PATH``, or in Debian's ``/usr/lib/postgresql/<version>/bin``.

Password authentication is on (``scram-sha-256`` on TCP and the socket), with a random
superuser password and a random password for the ``steward`` role that the tests log in as, so
a test can check that a password never reaches an output.

:func:`load_htcds` loads an HTCDS-shaped schema (IOM Human Trafficking Case Data Standard 2.0
field names: ``prs_`` person, ``vic_`` victim, ``cas_`` case, exploitation types as one row per
victim and type) with made-up records.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa

#: Debian's layout: /usr/lib/postgresql/<major>/bin.
_DEBIAN_BIN = Path("/usr/lib/postgresql")


def find_bindir() -> Path | None:
    """The folder holding ``initdb``/``pg_ctl``, or None where PostgreSQL is not installed."""
    explicit = os.environ.get("PTSYNTH_PG_BIN")
    if explicit:
        return Path(explicit) if (Path(explicit) / "pg_ctl").exists() else None
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(os.path.realpath(on_path)).parent
    if _DEBIAN_BIN.is_dir():
        versions = sorted((p for p in _DEBIAN_BIN.iterdir() if (p / "bin" / "pg_ctl").exists()),
                          key=lambda p: int(p.name) if p.name.isdigit() else 0)
        if versions:
            return versions[-1] / "bin"
    return None


@dataclass(frozen=True)
class Server:
    """A running server. ``url`` names host, port, database and user but never a password."""

    host: str
    port: int
    socket_dir: Path
    admin_user: str
    admin_password: str
    user: str
    password: str
    database: str

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    def admin_connect(self, database: str | None = None):  # -> adbc_driver_manager.dbapi.Connection
        """A superuser connection in autocommit mode (test set-up only: its URL holds the
        password, which ptsynth itself would refuse)."""
        import adbc_driver_postgresql.dbapi as dbapi

        return dbapi.connect(f"postgresql://{self.admin_user}:{self.admin_password}@{self.host}:"
                             f"{self.port}/{database or self.database}", autocommit=True)

    def execute(self, *statements: str, database: str | None = None) -> None:
        with self.admin_connect(database) as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _os_user() -> pwd.struct_passwd | None:
    """The account the server runs as: None (this process's own) unless we are root."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(os.environ.get("PTSYNTH_TEST_PG_OS_USER", "nobody"))


def _run(cmd: list[str], account: pwd.struct_passwd | None, *, timeout: float = 120) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
           "TZ": "UTC", "HOME": tempfile.gettempdir()}
    kwargs = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid,
                                         "extra_groups": []}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=tempfile.gettempdir(), check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed ({proc.returncode}): "
                           f"{proc.stderr.strip()[-2000:]}")


@contextlib.contextmanager
def temporary_postgres(bindir: Path, *, database: str = "casework") -> Iterator[Server]:
    """Start a private server; stop it and delete its files when the block ends."""
    account = _os_user()
    root = Path(tempfile.mkdtemp(prefix="ptsynth-pg-"))
    data, sock = root / "data", root / "sock"
    started = False
    try:
        sock.mkdir()
        admin_password = secrets.token_urlsafe(18)
        pwfile = root / "pw"
        pwfile.write_text(admin_password + "\n")
        if account is not None:
            for p in (root, sock, pwfile):
                os.chown(p, account.pw_uid, account.pw_gid)
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "ptsynth_admin", "--pwfile", str(pwfile),
              "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], account)
        pwfile.unlink()
        port = _free_port()
        opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=20 "
                "-c shared_buffers=64MB")
        started = True
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", opts,
              "-w", "-t", "60", "start"], account)
        server = Server(host="127.0.0.1", port=port, socket_dir=sock, admin_user="ptsynth_admin",
                        admin_password=admin_password, user="steward",
                        password="pw-" + secrets.token_hex(12), database=database)
        _create_database(server)
        yield server
    finally:
        if started:
            with contextlib.suppress(Exception):
                _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                     account, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _create_database(server: Server) -> None:
    # names and the password are ours (hex / fixed), so plain interpolation is safe here
    server.execute(f"CREATE DATABASE {server.database}",
                   f"CREATE ROLE {server.user} LOGIN PASSWORD '{server.password}'",
                   database="postgres")


@contextlib.contextmanager
def given_server(url: str) -> Iterator[Server]:
    """A server given by ``PTSYNTH_TEST_PG_URL``: ``postgresql://admin:password@host:port/db``
    of a role that may create databases and roles. The tests work in a fresh database and as
    a fresh role there, both dropped at the end."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    server = Server(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                    socket_dir=Path(tempfile.gettempdir()), admin_user=unquote(parts.username or ""),
                    admin_password=unquote(parts.password or ""),
                    user=f"steward_{secrets.token_hex(4)}", password="pw-" + secrets.token_hex(12),
                    database=f"ptsynth_test_{secrets.token_hex(4)}")
    _create_database(server)
    try:
        yield server
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {server.database} WITH (FORCE)",
                       f"DROP ROLE IF EXISTS {server.user}", database=parts.path.lstrip("/") or "postgres")


# --------------------------------------------------------------------------------------------
# An HTCDS-shaped case-management schema with made-up records
# --------------------------------------------------------------------------------------------
GENDERS = ("Feminine", "Masculine", "TransgenderFeminine", "TransgenderMasculine",
           "NonConforming", "NonSpecifiedUnknown")
STATUS = ("PossibleVictimOfTrafficking", "ActualVictimOfTrafficking", "NotAVictimOfTrafficking")
RELATION = ("Familial", "Acquainted", "Unaquainted")
CONTROL = ("PhysicalThreats", "DebtBondage", "FalsePromises", "WithholdsDocuments", "Other")
EXPLOITATION = ("ForcedLabour", "SexualExploitation", "ForcedBegging", "ForcedMarriage", "Other")
CASE_STATUS = ("Active", "FollowUp", "Closed", "ClosedReferred")
CITIZENSHIP = ("UA", "MD", "NG", "PH", "VN", "MX")
AGE_BINS = (0, 12, 18, 25, 35, 50, 120)

HTCDS_DDL = ("""
CREATE TABLE persons (
    person_id text PRIMARY KEY,
    prs_FirstName text NOT NULL,
    prs_Gender text,
    prs_Birthdate date,
    prs_Citizenship text
)""", """
CREATE TABLE victims (
    victim_id text PRIMARY KEY,
    person_id text NOT NULL REFERENCES persons,
    vic_TraffickingStatus text NOT NULL,
    vic_RelationshipToTrafficker text,
    vic_AgeWhenTrafficked integer,
    vic_MethodsOfControl text
)""", """
CREATE TABLE cases (
    case_id bigint PRIMARY KEY,
    victim_id text NOT NULL REFERENCES victims,
    cas_Status text NOT NULL,
    cas_IncomingReferralDate date
)""", """
CREATE TABLE exploitation (
    victim_id text NOT NULL REFERENCES victims,
    vic_TypeOfExploitation text NOT NULL,
    PRIMARY KEY (victim_id, vic_TypeOfExploitation)
)""")

#: The release schema of :data:`HTCDS_JOIN` (public domains: the HTCDS picklists).
HTCDS_COLUMNS = [
    {"name": "victim_id", "kind": "subject_id"},
    {"name": "prs_gender", "kind": "categorical", "values": list(GENDERS), "quasi_identifier": True},
    {"name": "prs_citizenship", "kind": "categorical", "values": list(CITIZENSHIP)},
    {"name": "vic_traffickingstatus", "kind": "categorical", "values": list(STATUS),
     "missing": "forbid"},
    {"name": "vic_relationshiptotrafficker", "kind": "categorical", "values": list(RELATION)},
    {"name": "vic_agewhentrafficked", "kind": "numeric", "bins": list(AGE_BINS)},
    {"name": "vic_methodsofcontrol", "kind": "set", "values": list(CONTROL)},
    {"name": "cas_status", "kind": "categorical", "values": list(CASE_STATUS)},
    {"name": "cas_incomingreferraldate", "kind": "date", "period": "year", "start": 2015,
     "end": 2024},
    {"name": "exploitation", "kind": "set", "values": list(EXPLOITATION)},
]

#: Victims joined to their person, their cases (one row per case: rows of one victim merge by
#: subject id) and their exploitation types aggregated into one ``;``-joined set cell.
HTCDS_JOIN = """
SELECT v.victim_id, p.prs_gender, p.prs_citizenship, v.vic_traffickingstatus,
       v.vic_relationshiptotrafficker, v.vic_agewhentrafficked, v.vic_methodsofcontrol,
       c.cas_status, c.cas_incomingreferraldate, e.exploitation
FROM victims v
JOIN persons p ON p.person_id = v.person_id
JOIN cases c ON c.victim_id = v.victim_id
LEFT JOIN (SELECT victim_id, string_agg(vic_typeofexploitation, ';'
                  ORDER BY vic_typeofexploitation) AS exploitation
           FROM exploitation GROUP BY victim_id) e ON e.victim_id = v.victim_id
ORDER BY c.case_id
"""


def htcds_records(n_victims: int, seed: int) -> dict[str, list[tuple]]:
    """Made-up rows of the four tables (not people): each victim has 1–2 cases that agree on
    every victim-level field, so the join merges into one record per victim."""
    rng = np.random.default_rng(seed)

    def pick(values: tuple[str, ...], p_missing: float = 0.0) -> list[str | None]:
        idx = rng.integers(0, len(values), n_victims)
        miss = rng.random(n_victims) < p_missing
        return [None if m else values[i] for i, m in zip(idx, miss, strict=True)]

    persons, victims, cases, exploitation = [], [], [], []
    gender, citizen = pick(GENDERS, 0.05), pick(CITIZENSHIP, 0.1)
    status, relation = pick(STATUS), pick(RELATION, 0.2)
    ages = rng.integers(8, 70, n_victims)
    age_missing = rng.random(n_victims) < 0.1
    years = rng.integers(2015, 2025, n_victims)
    case_id = 1000
    for i in range(n_victims):
        pid, vid = f"P{i:07d}", f"V{i:07d}"
        birth = None if age_missing[i] else f"{int(years[i]) - int(ages[i])}-06-15"
        persons.append((pid, f"Firstname{secrets.token_hex(3)}", gender[i], birth, citizen[i]))
        control = [c for c in CONTROL if rng.random() < 0.3]
        victims.append((vid, pid, status[i], relation[i], None if age_missing[i] else int(ages[i]),
                        ";".join(control) or None))
        referral = f"{int(years[i])}-{int(rng.integers(1, 13)):02d}-01"
        for _ in range(1 + int(rng.random() < 0.3)):
            case_id += int(rng.integers(1, 4))
            cases.append((case_id, vid, CASE_STATUS[int(rng.integers(0, 4))]
                          if not cases or cases[-1][1] != vid else cases[-1][2], referral))
        for kind in EXPLOITATION:
            if rng.random() < 0.35:
                exploitation.append((vid, kind))
    return {"persons": persons, "victims": victims, "cases": cases, "exploitation": exploitation}


#: Arrow types of the four tables' columns, matching :data:`HTCDS_DDL` (ADBC's bulk COPY needs
#: the exact types).
_ARROW = {
    "persons": [("person_id", pa.string()), ("prs_firstname", pa.string()), ("prs_gender", pa.string()),
                ("prs_birthdate", pa.date32()), ("prs_citizenship", pa.string())],
    "victims": [("victim_id", pa.string()), ("person_id", pa.string()),
                ("vic_traffickingstatus", pa.string()), ("vic_relationshiptotrafficker", pa.string()),
                ("vic_agewhentrafficked", pa.int32()), ("vic_methodsofcontrol", pa.string())],
    "cases": [("case_id", pa.int64()), ("victim_id", pa.string()), ("cas_status", pa.string()),
              ("cas_incomingreferraldate", pa.date32())],
    "exploitation": [("victim_id", pa.string()), ("vic_typeofexploitation", pa.string())],
}


def load_htcds(server: Server, n_victims: int = 600, seed: int = 11) -> dict[str, list[tuple]]:
    """Create the four tables, load made-up rows and let the ``steward`` role read them only."""
    rows = htcds_records(n_victims, seed)
    with server.admin_connect() as conn, conn.cursor() as cur:
        for statement in HTCDS_DDL:
            cur.execute(statement)
        for table, values in rows.items():
            fields = _ARROW[table]
            columns = list(zip(*values, strict=True))
            arrays = [pa.array([None if v is None else (date.fromisoformat(v) if t == pa.date32() else v)
                                for v in col], t) for col, (_, t) in zip(columns, fields, strict=True)]
            cur.adbc_ingest(table, pa.table(arrays, names=[n for n, _ in fields]), mode="append")
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {server.user}")
    return rows


def load_arrow(server: Server, name: str, table: pa.Table) -> None:
    """Create table ``name`` from an Arrow table (column names kept as they are, types mapped
    by the driver: text, bigint, date, …) and let the ``steward`` role read it."""
    with server.admin_connect() as conn, conn.cursor() as cur:
        cur.adbc_ingest(name, table, mode="create")
        cur.execute(f"GRANT SELECT ON {name} TO {server.user}")
