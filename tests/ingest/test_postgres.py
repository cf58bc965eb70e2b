"""PostgreSQL (and SQLite) as record sources, against a real server (tests/pg_server.py).

Every test below that needs the server gets it from the session fixture ``postgres``
(conftest.py): a throw-away server started as an unprivileged user with an HTCDS-shaped schema
(victims, persons, cases, exploitation types), or the one named by ``PTSYNTH_TEST_PG_URL``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import tomli_w
from typer.testing import CliRunner

import ptsynth
from ptsynth.cli import app
from ptsynth.config import ReleaseConfig
from ptsynth.demo import COLUMNS, demo_config_path, generate_demo
from ptsynth.errors import ConfigError, InputError
from ptsynth.ingest import ErrorReporter, PostgresQuery, SQLiteQuery, database_source, read_records
from ptsynth.ingest.postgres import error_kind
from ptsynth.ingest.sources import RowsDigest
from ptsynth.release.manifest import input_hmac
from ptsynth.schema import Schema

pg_server = pytest.importorskip("pg_server")  # tests/pg_server.py (on sys.path via conftest)

runner = CliRunner()
DEMO_SCHEMA = ReleaseConfig.load(demo_config_path()).schema
HTCDS_SCHEMA = Schema.from_dict(pg_server.HTCDS_COLUMNS, subject_id="victim_id")
N_DEMO = 3_000


def _cli(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(res) -> str:
    """The CLI's error output: exactly one line, starting with ``error:``."""
    lines = [line for line in res.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    return errors[0]


@pytest.fixture
def pg(postgres, monkeypatch, tmp_path):
    """The server, with the steward's password in ``PGPASSWORD`` only: no ``~/.pgpass`` or
    service file of this machine is read."""
    for var in ("PGPASSWORD", "PGSERVICE", "PGUSER", "PGHOST", "PGPORT", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "absent-pgpass"))
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "absent-service-file"))
    monkeypatch.setenv("PGPASSWORD", postgres.password)
    return postgres


@pytest.fixture(scope="module")
def demo(postgres, tmp_path_factory):
    """The same demo rows as Parquet, as a PostgreSQL table with native types (integers, a
    date column) and as a SQLite table."""
    folder = tmp_path_factory.mktemp("pgdemo")
    parquet = folder / "demo.parquet"
    generate_demo(N_DEMO, 5, parquet)
    table = pq.read_table(parquet)
    typed = table.set_column(table.schema.get_field_index("registrationDate"), "registrationDate",
                             pc.cast(table.column("registrationDate"), pa.date32()))
    typed = typed.append_column("ord", pa.array(np.arange(len(typed), dtype=np.int64)))
    pg_server.load_arrow(postgres, "demo", typed)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    postgres.execute(f"CREATE VIEW demo_v AS SELECT {columns} FROM demo ORDER BY ord",
                     f"GRANT SELECT ON demo_v TO {postgres.user}")
    db = folder / "demo.sqlite"
    with sqlite3.connect(db) as con:
        table.to_pandas().to_sql("demo", con, index=False)
    con.close()
    return SimpleNamespace(parquet=parquet, sqlite=db,
                           query=f"SELECT {columns} FROM demo ORDER BY ord")


def _htcds_config(tmp_path: Path, **dataset) -> Path:
    cfg = {
        "dataset": {"name": "htcds-test", "subject_id": "victim_id", **dataset},
        "privacy": {"epsilon": 4.0, "delta": 1e-6},
        "release": {"reporting_length": 2, "k": 3, "synthesizer": "aggregate"},
        "evaluation": {"holdout_fraction": 0.0},
        "columns": pg_server.HTCDS_COLUMNS,
    }
    path = tmp_path / "htcds.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def _backends(server, user: str) -> int:
    with server.admin_connect() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'")
        return int(cur.fetchone()[0])


def _no_backends_left(server) -> bool:
    """Every connection ptsynth opened as the steward has been closed (the backend exits a
    moment after the client's Terminate message)."""
    for _ in range(50):
        if _backends(server, server.user) == 0:
            return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------
# the same records as from a file, in blocks
# ---------------------------------------------------------------------------------------------
def test_streamed_read_equals_the_parquet_read(pg, demo):
    ref = read_records(demo.parquet, DEMO_SCHEMA)
    for source in (PostgresQuery(pg.url, table="demo_v", block_rows=97),
                   PostgresQuery(pg.url, query=demo.query),
                   database_source(pg.url, query=demo.query, block_rows=1000)):
        got = read_records(source, DEMO_SCHEMA)
        assert got.column_names == ref.column_names
        np.testing.assert_array_equal(got.codes, ref.codes)
    assert _no_backends_left(pg)


def test_postgres_and_sqlite_stream_in_blocks_through_one_path(pg, demo):
    for source in (PostgresQuery(pg.url, table="demo_v", block_rows=97),
                   SQLiteQuery(demo.sqlite, "SELECT * FROM demo", block_rows=97),
                   database_source(f"sqlite:///{demo.sqlite}", table="demo", block_rows=97)):
        stream = source.open(ErrorReporter(source.label, 1))
        sizes = [b.num_rows for b in stream.batches]
        stream.finish()
        assert sum(sizes) == N_DEMO and max(sizes) <= 97 and len(sizes) >= N_DEMO // 97
        np.testing.assert_array_equal(read_records(source, DEMO_SCHEMA).codes,
                                      read_records(demo.parquet, DEMO_SCHEMA).codes)


def test_rows_digest_ignores_blocks_and_driver_types(pg, demo):
    """The digest the manifest's HMAC covers depends on the rows only: not on the block size,
    nor on whether a driver typed a column as a date (PostgreSQL) or as text (SQLite)."""
    digests = set()
    for source in (PostgresQuery(pg.url, table="demo_v", block_rows=97),
                   PostgresQuery(pg.url, table="demo_v", block_rows=5000),
                   SQLiteQuery(demo.sqlite, "SELECT * FROM demo", block_rows=64)):
        read_records(source, DEMO_SCHEMA)
        digests.add(source.fingerprint().rows_digest)
    assert len(digests) == 1 and None not in digests
    fewer = PostgresQuery(pg.url, query=demo.query + " LIMIT 2999")
    read_records(fewer, DEMO_SCHEMA)
    assert fewer.fingerprint().rows_digest not in digests
    table = pq.read_table(demo.parquet)
    whole = RowsDigest(table.column_names)
    for batch in table.to_batches(max_chunksize=1234):
        whole.update(batch)
    assert whole.digest() in digests


def test_join_across_victims_persons_cases_and_exploitation(pg):
    """One record per victim from a four-table join (cases repeat a victim: its rows merge by
    subject id; exploitation types are aggregated into a set cell)."""
    got = read_records(PostgresQuery(pg.url, query=pg_server.HTCDS_JOIN, block_rows=50), HTCDS_SCHEMA)
    rows = pg_server.htcds_records(600, 11)  # what load_htcds put in
    assert got.n_records == len(rows["victims"]) == 600
    person = {p[0]: p for p in rows["persons"]}
    gender = [person[v[1]][2] for v in rows["victims"]]  # victims in order of their first case
    expected = [pg_server.GENDERS.index(g) if g else len(pg_server.GENDERS) for g in gender]
    np.testing.assert_array_equal(got.column("prs_gender"), expected)
    kinds = {}
    for vid, kind in rows["exploitation"]:
        kinds.setdefault(vid, set()).add(kind)
    for kind in pg_server.EXPLOITATION:
        present = [0 if kind in kinds.get(v[0], ()) else 1 for v in rows["victims"]]
        np.testing.assert_array_equal(got.column(f"exploitation={kind}"), present)
    ages = [v[4] for v in rows["victims"]]
    bins = np.asarray(pg_server.AGE_BINS)
    expected_age = [len(bins) - 1 if a is None else int(np.searchsorted(bins, a, side="right") - 1)
                    for a in ages]
    np.testing.assert_array_equal(got.column("vic_agewhentrafficked"), expected_age)


def test_types_without_a_plain_arrow_form_are_read_as_text(pg):
    """uuid ids, numeric ages and enum picklists validate like text; an array in a declared
    column is refused by kind, an undeclared one is ignored."""
    pg.execute(
        "CREATE TYPE case_status AS ENUM ('Active', 'FollowUp', 'Closed', 'ClosedReferred')",
        "CREATE TABLE typed (id uuid, age numeric(5,1), status case_status, tags text[], flag boolean)",
        "INSERT INTO typed SELECT gen_random_uuid(), (g % 60) + 0.5, "
        "(ARRAY['Active','Closed']::case_status[])[1 + g % 2], ARRAY['a','b'], g % 3 = 0 "
        "FROM generate_series(1, 200) g",
        f"GRANT SELECT ON typed TO {pg.user}",
    )
    schema = Schema.from_dict([
        {"name": "id", "kind": "subject_id"},
        {"name": "age", "kind": "numeric", "bins": [0, 18, 120]},
        {"name": "status", "kind": "categorical", "values": list(pg_server.CASE_STATUS)},
        {"name": "flag", "kind": "categorical", "values": ["false", "true"]},
    ], subject_id="id", extra_columns="ignore")
    got = read_records(PostgresQuery(pg.url, table="typed"), schema)
    g = np.arange(1, 201)
    assert got.n_records == 200  # 200 distinct uuids
    np.testing.assert_array_equal(got.column("age"), ((g % 60) + 0.5 >= 18).astype(int))
    np.testing.assert_array_equal(got.column("status"), np.where(g % 2 == 0, 0, 2))
    np.testing.assert_array_equal(got.column("flag"), (g % 3 == 0).astype(int))
    with_tags = Schema.from_dict([{"name": "tags", "kind": "set", "values": ["a", "b"]}],
                                 extra_columns="ignore")
    with pytest.raises(InputError, match="column 'tags': column type is not supported"):
        read_records(PostgresQuery(pg.url, table="typed"), with_tags)


def test_queries_run_read_only(postgres, monkeypatch, tmp_path):
    """Even a role that may write (the superuser) cannot write through ptsynth."""
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    monkeypatch.setenv("PGPASSWORD", postgres.admin_password)
    admin = f"postgresql://{postgres.admin_user}@{postgres.host}:{postgres.port}/{postgres.database}"
    before = _backends(postgres, postgres.admin_user)
    query = ("INSERT INTO exploitation VALUES ('V0000000', 'Other') ON CONFLICT DO NOTHING "
             "RETURNING victim_id")
    with pytest.raises(InputError, match="READ ONLY transaction; SQLSTATE 25006"):
        read_records(PostgresQuery(admin, query=query), HTCDS_SCHEMA)
    with postgres.admin_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM exploitation WHERE victim_id = 'V0000000' AND "
                    "vic_typeofexploitation = 'Other'")
        assert cur.fetchone()[0] == sum(1 for v, k in pg_server.htcds_records(600, 11)["exploitation"]
                                        if v == "V0000000" and k == "Other")
    for _ in range(50):  # our own admin connection above is the only one left
        if _backends(postgres, postgres.admin_user) <= before:
            break
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# errors: the kind, never the server's text; exit 2 and no bundle through the CLI
# ---------------------------------------------------------------------------------------------
MISMATCH_MIDWAY = pg_server.HTCDS_JOIN.replace(
    "v.vic_agewhentrafficked,",
    "(CASE WHEN c.case_id > 1500 THEN p.prs_gender ELSE '30' END)::integer AS vic_agewhentrafficked,")


@pytest.mark.parametrize(("query", "expected"), [
    ("SELEC victim_id FROM victims", "syntax error; SQLSTATE 42601"),
    ("SELECT * FROM no_such_table", "undefined table; SQLSTATE 42P01"),
    ("SELECT * FROM victims WHERE victim_id = 5", "type mismatch?); SQLSTATE 42883"),
    ("SELECT victim_id, person_id AS victim_id FROM victims", "columns 1 and 2 have the same name"),
    # fails on the server after rows were sent; its message would quote the value ("Feminine")
    (MISMATCH_MIDWAY, "invalid text representation (a type mismatch); SQLSTATE 22P02"),
])
def test_database_errors_name_the_kind_only(pg, query, expected):
    with pytest.raises(InputError) as info:
        read_records(PostgresQuery(pg.url, query=query, block_rows=20), HTCDS_SCHEMA)
    text = str(info.value)
    assert expected in text
    assert text.startswith(f"file PostgreSQL query on database {pg.database}")
    for secret in (pg.password, str(pg.port), "Feminine", "no_such_table", "SELEC", "victims"):
        assert secret not in text
    assert info.value.__context__ is None and info.value.__cause__ is None
    assert _no_backends_left(pg)


def test_schema_type_mismatch_names_row_and_column_not_the_value(pg):
    query = pg_server.HTCDS_JOIN.replace("v.vic_agewhentrafficked,",
                                         "p.prs_gender AS vic_agewhentrafficked,")
    with pytest.raises(InputError) as info:
        read_records(PostgresQuery(pg.url, query=query, block_rows=7), HTCDS_SCHEMA)
    text = str(info.value)
    # the join's rows in case order; the first with a gender is the first bad one
    rows = pg_server.htcds_records(600, 11)
    gender = {p[0]: p[2] for p in rows["persons"]}
    person = {v[0]: v[1] for v in rows["victims"]}
    genders = [gender[person[c[1]]] for c in rows["cases"]]
    first = next(i for i, g in enumerate(genders) if g is not None) + 1
    bad = sum(g is not None for g in genders)
    assert (f"row {first}, column 'vic_agewhentrafficked': value is not a number "
            f"(and {bad - 1} more problems of this kind)") in text
    assert not any(g in text for g in pg_server.GENDERS)


def test_subject_merge_conflict_names_the_column_never_the_id(pg):
    query = pg_server.HTCDS_JOIN.replace(
        "c.cas_status,", "CASE WHEN c.case_id % 2 = 0 THEN 'Active' ELSE 'Closed' END AS cas_status,")
    with pytest.raises(InputError) as info:
        read_records(PostgresQuery(pg.url, query=query), HTCDS_SCHEMA)
    text = str(info.value)
    assert "column 'cas_status'" in text and "row " in text
    assert "V0" not in text and "P0" not in text


@pytest.mark.parametrize("case", ["bad sql", "missing table", "db type mismatch", "schema type mismatch"])
def test_cli_errors_exit_2_with_one_line_and_no_bundle(pg, tmp_path, case):
    config = _htcds_config(tmp_path)
    out = tmp_path / "bundle"
    option, value, expected = {
        "bad sql": ("--query", "SELEC * FROM victims", "syntax error; SQLSTATE 42601"),
        "missing table": ("--table", "no_such_table", "undefined table; SQLSTATE 42P01"),
        "db type mismatch": ("--query", MISMATCH_MIDWAY, "SQLSTATE 22P02"),
        "schema type mismatch": ("--query", pg_server.HTCDS_JOIN.replace(
            "v.vic_agewhentrafficked,", "p.prs_gender AS vic_agewhentrafficked,"),
            "value is not a number"),
    }[case]
    res = _cli("release", pg.url, option, value, "--config", config, "--out", out, "--seed", "1")
    assert res.exit_code == 2, res.output
    line = _one_line_error(res)
    assert expected in line and pg.password not in res.output and "Feminine" not in res.output
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")] == []
    res = _cli("validate", pg.url, option, value, "--config", config)
    assert res.exit_code == 2 and expected in _one_line_error(res)


def _terminate_backends(server) -> None:
    with server.admin_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE usename = '{server.user}' AND pid <> pg_backend_pid()")
        cur.fetchall()


#: Valid HTCDS-shaped rows, far more than any socket buffer holds, so the server is still sending
#: when the first block arrives.
ENDLESS = ("SELECT 'V' || g AS victim_id, 'Feminine' AS prs_gender, 'UA' AS prs_citizenship, "
           "'ActualVictimOfTrafficking' AS vic_traffickingstatus, NULL AS vic_relationshiptotrafficker, "
           "30 AS vic_agewhentrafficked, 'DebtBondage' AS vic_methodsofcontrol, 'Active' AS cas_status, "
           "DATE '2020-01-01' AS cas_incomingreferraldate, 'ForcedLabour' AS exploitation "
           "FROM generate_series(1, 3000000) g")


def test_connection_dropped_mid_read_library(pg, tmp_path):
    """The backend is terminated from a second connection after the first (tiny) block: the
    release fails with the kind of error, writes no bundle and leaves no staging folder."""
    events = []

    def progress(event):
        events.append(event)
        if event.task == "read" and event.completed and len(events) < 50 and not getattr(progress, "done", False):
            progress.done = True
            _terminate_backends(pg)

    out = tmp_path / "bundle"
    with pytest.raises(InputError) as info:
        ptsynth.release(PostgresQuery(pg.url, query=ENDLESS, block_rows=500),
                        _htcds_config(tmp_path), out, seed=1, progress=progress)
    assert getattr(progress, "done", False)
    text = str(info.value)
    assert re.search(r"the database failed while the query's rows were read \((the server ended "
                     r"the connection|the connection to the server was lost)", text), text
    assert pg.password not in text
    assert not out.exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")] == []
    assert pg.password not in repr(events)


def test_connection_dropped_mid_read_cli(pg, tmp_path, monkeypatch):
    from ptsynth.ingest import encode

    add = encode.BlockEncoder.add

    def add_then_drop(self, batch):
        add(self, batch)
        if self.n_rows == batch.num_rows:  # after the first block
            _terminate_backends(pg)

    monkeypatch.setattr(encode.BlockEncoder, "add", add_then_drop)
    out = tmp_path / "bundle"
    res = _cli("release", pg.url, "--query", ENDLESS, "--config", _htcds_config(tmp_path),
               "--out", out, "--seed", "1")
    assert res.exit_code == 2, res.output
    assert re.search("server ended the connection|connection to the server was lost",
                     _one_line_error(res))
    assert not out.exists() and [p for p in tmp_path.iterdir() if p.name.startswith(".bundle")] == []
    assert _no_backends_left(pg)


# ---------------------------------------------------------------------------------------------
# credentials: from the environment, .pgpass or a service file; never in any output
# ---------------------------------------------------------------------------------------------
def _bundle_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in folder.rglob("*")
                     if p.is_file())


def test_release_from_postgres_leaks_no_credential(pg, tmp_path):
    out = tmp_path / "bundle"
    res = _cli("release", pg.url, "--query", pg_server.HTCDS_JOIN, "--config", _htcds_config(tmp_path),
               "--out", out, "--seed", "3")
    assert res.exit_code == 0, res.output
    text = _bundle_text(out)
    for secret in (pg.password, pg.url, f"{pg.host}:{pg.port}", pg.admin_password):
        assert secret not in text and secret not in res.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["kind"] == "postgresql"
    # the steward can check which input a bundle came from: same query, same rows, same key
    key = bytes.fromhex(json.loads((out / "report.json").read_text())["provenance"]["key"])
    again = input_hmac(PostgresQuery(pg.url, query=pg_server.HTCDS_JOIN), key)
    assert again["hmac_sha256"] == manifest["input"]["hmac_sha256"]
    other = input_hmac(PostgresQuery(pg.url, query=pg_server.HTCDS_JOIN + " LIMIT 10"), key)
    assert other["hmac_sha256"] != manifest["input"]["hmac_sha256"]
    assert _no_backends_left(pg)


def test_pgpass_and_config_source_leak_nothing(pg, tmp_path, monkeypatch):
    """Password in ~/.pgpass only; the source in the config's [dataset.source]; progress
    events, every bundle file and the manifest's public config hold no credential, URL or query."""
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{pg.host}:{pg.port}:{pg.database}:{pg.user}:{pg.password}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    config = _htcds_config(tmp_path, source={"url": pg.url, "query": pg_server.HTCDS_JOIN})
    events = []
    out = tmp_path / "bundle"
    rel = ptsynth.release(None, config, out, seed=5, progress=events.append)
    assert rel.manifest["config"]["dataset"]["source"] == {
        "kind": "postgresql", "query": "withheld (identified by input.hmac_sha256)"}
    text = _bundle_text(out) + repr(events) + repr(rel.warnings)
    for secret in (pg.password, pg.url, f"{pg.host}:{pg.port}", "string_agg"):
        assert secret not in text
    res = _cli("validate", "--config", config)
    assert res.exit_code == 0 and "600 persons" in res.output, res.output


def test_service_file(pg, tmp_path, monkeypatch):
    monkeypatch.delenv("PGPASSWORD")
    service = tmp_path / "pg_service.conf"
    service.write_text(f"[casework]\nhost={pg.host}\nport={pg.port}\ndbname={pg.database}\n"
                       f"user={pg.user}\npassword={pg.password}\n")
    service.chmod(0o600)
    monkeypatch.setenv("PGSERVICEFILE", str(service))
    source = PostgresQuery("postgresql://?service=casework", table="victims")
    assert source.label == "PostgreSQL table victims on service casework"
    schema = Schema.from_dict([{"name": "victim_id", "kind": "subject_id"},
                               {"name": "vic_traffickingstatus", "kind": "categorical",
                                "values": list(pg_server.STATUS)}],
                              subject_id="victim_id", extra_columns="ignore")
    assert read_records(source, schema).n_records == 600
    monkeypatch.setenv("PGSERVICE", "casework")
    assert read_records(PostgresQuery("postgresql://", table="victims"), schema).n_records == 600


def test_password_in_a_url_is_refused_and_never_echoed(pg, tmp_path):
    config = _htcds_config(tmp_path)
    for url in (f"postgresql://{pg.user}:{pg.password}@{pg.host}:{pg.port}/{pg.database}",
                f"{pg.url}?password={pg.password}"):
        res = _cli("validate", url, "--table", "victims", "--config", config)
        assert res.exit_code == 2
        assert "holds a password" in _one_line_error(res) and pg.password not in res.output
        with pytest.raises(ConfigError) as info:
            PostgresQuery(url, table="victims")
        assert pg.password not in str(info.value)
    bad = _htcds_config(tmp_path, source={"url": f"{pg.url}?password={pg.password}", "table": "victims"})
    res = _cli("validate", "--config", bad)
    assert res.exit_code == 2 and "holds a password" in res.output and pg.password not in res.output


def test_wrong_or_missing_password(pg, tmp_path, monkeypatch):
    config = _htcds_config(tmp_path)
    monkeypatch.setenv("PGPASSWORD", "not-" + pg.password)
    res = _cli("validate", pg.url, "--query", pg_server.HTCDS_JOIN, "--config", config)
    assert res.exit_code == 2
    line = _one_line_error(res)
    assert "cannot connect to the PostgreSQL server (authentication failed" in line
    assert pg.password not in res.output and pg.user not in line and str(pg.port) not in line
    monkeypatch.delenv("PGPASSWORD")
    res = _cli("validate", pg.url, "--query", pg_server.HTCDS_JOIN, "--config", config)
    assert res.exit_code == 2 and "none was found" in _one_line_error(res)


# ---------------------------------------------------------------------------------------------
# SQLite through the same path and the same CLI
# ---------------------------------------------------------------------------------------------
def test_sqlite_url_from_cli_and_config(demo, tmp_path):
    res = _cli("validate", f"sqlite:///{demo.sqlite}", "--table", "demo", "--config", demo_config_path())
    assert res.exit_code == 0, res.output
    n = read_records(demo.parquet, DEMO_SCHEMA).n_records
    assert f"ok: {n} persons" in res.output
    res = _cli("validate", f"sqlite:///{demo.sqlite}", "--query", "SELECT * FROM nothing",
               "--config", demo_config_path())
    assert res.exit_code == 2 and "SQL query failed (OperationalError)" in _one_line_error(res)
    res = _cli("validate", str(demo.parquet), "--table", "demo", "--config", demo_config_path())
    assert res.exit_code == 2 and "--table" in _one_line_error(res)
    # a relative sqlite path in [dataset.source] is taken relative to the config's folder
    data = tomllib.loads(demo_config_path().read_text())
    data["dataset"]["source"] = {"url": f"sqlite:///{demo.sqlite.name}", "table": "demo"}
    config = demo.sqlite.parent / "with_source.toml"
    config.write_text(tomli_w.dumps(data))
    res = _cli("validate", "--config", config)
    assert res.exit_code == 0 and f"ok: {n} persons" in res.output, res.output


# ---------------------------------------------------------------------------------------------
# without a server: URLs, table names, error kinds
# ---------------------------------------------------------------------------------------------
def test_urls_and_table_names_are_checked_before_connecting():
    assert PostgresQuery("postgresql://u@db.example.org:5433/casework", table="public.victims"
                         ).sql == "SELECT * FROM public.victims"
    assert "db.example.org" not in repr(PostgresQuery("postgresql://u@db.example.org/x", table="v"))
    for bad in ("victims; DROP TABLE cases", "a.b.c", "1victims", 'v"x'):
        with pytest.raises(ConfigError, match="table name"):
            PostgresQuery("postgresql://u@h/db", table=bad)
    with pytest.raises(ConfigError, match="exactly one"):
        PostgresQuery("postgresql://u@h/db", table="v", query="SELECT 1")
    with pytest.raises(ConfigError, match="exactly one"):
        PostgresQuery("postgresql://u@h/db")
    with pytest.raises(ConfigError, match="postgresql://"):
        database_source("mysql://u@h/db", table="v")
    assert PostgresQuery("postgresql://u@h/db", query="SELECT 1 ;  ").sql == "SELECT 1"


def test_error_kind_never_carries_the_message():
    class Fake(Exception):
        sqlstate = "22P02"

    assert error_kind(Fake('invalid input syntax for type integer: "Jane Doe"')) == \
        "invalid text representation (a type mismatch); SQLSTATE 22P02"
    assert error_kind(OSError("ERROR: division by zero: secret. SQLSTATE: 22012")) == \
        "division by zero; SQLSTATE 22012"
    assert error_kind(RuntimeError('FATAL: password authentication failed for user "jane"')) == \
        "authentication failed: check the password in PGPASSWORD, ~/.pgpass or the service file"
    assert error_kind(ValueError("something 'Jane Doe' happened")) == "ValueError"
    assert error_kind(type("E", (Exception,), {"sqlstate": "XX999"})("Jane")) == \
        "internal error of the server; SQLSTATE XX999"
