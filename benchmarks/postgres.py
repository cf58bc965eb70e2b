"""PostgreSQL vs Parquet: read + validate + encode time and peak memory of the same records.

The made-up demo records (``ptsynth.demo.generate_demo``, public and seeded) are written to
Parquet and loaded into a PostgreSQL table with native types (integers, a ``date`` column),
then read with ``read_records`` against the demo schema, each run in a fresh subprocess:

* ``parquet``: the Parquet file (row groups streamed);
* ``postgres``: ``ptsynth.PostgresQuery`` (ADBC driver, ``COPY … (FORMAT binary)`` to Arrow,
  READ ONLY transaction), what ptsynth uses;
* ``postgres-psycopg``: the same query through a psycopg 3 server-side (named) cursor,
  ``fetchmany`` blocks turned into Arrow columns: the alternative we measured against (only
  where psycopg is installed; it is not a dependency);
* ``sqlite`` (``--sqlite``): ``ptsynth.SQLiteQuery`` on the same rows.

Reported per source: median of ``--repeat`` runs of the wall time and the reading process's CPU
time (user + system, from ``getrusage`` around the read: the server's own CPU is not included,
but on one machine it competes for the same cores and shows in the wall time), and the reading
process's peak RSS (``VmHWM``: its own high-water mark, imports included; ``ru_maxrss`` of a
child would include this parent's pages at fork time). The server is the throw-away one of
``tests/pg_server.py`` (started as an unprivileged user, stopped and deleted afterwards), or the
one named by ``PTSYNTH_TEST_PG_URL``.

    python benchmarks/postgres.py                      # 1M rows, 3 runs each
    python benchmarks/postgres.py --rows 100000 --repeat 1 --sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

_READ = """
import json, resource, sys, time
from ptsynth.config import ReleaseConfig
from ptsynth.demo import demo_config_path
from ptsynth.ingest import PostgresQuery, SQLiteQuery, read_records
kind, target, query = sys.argv[1], sys.argv[2], sys.argv[3]
schema = ReleaseConfig.load(demo_config_path()).schema
if kind == "parquet":
    source = target
elif kind == "postgres":
    source = PostgresQuery(target, query=query)
elif kind == "sqlite":
    source = SQLiteQuery(target, query)
else:
    sys.path.insert(0, sys.argv[4])
    from postgres import PsycopgQuery
    source = PsycopgQuery(target, query)
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def peak_mb():  # this process's own high-water mark (ru_maxrss would include the parent's
    with open("/proc/self/status") as fh:  # pages at fork time)
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before = peak_mb()
t, c = time.perf_counter(), cpu()
table = read_records(source, schema)
print(json.dumps({"wall_s": time.perf_counter() - t, "cpu_s": cpu() - c, "peak_mb": peak_mb(),
                  "imports_mb": before, "records": table.n_records,
                  "codes": table.codes.sum(dtype="int64").item()}))
"""


class PsycopgQuery:
    """The alternative to ADBC, for the comparison only: a psycopg 3 named (server-side) cursor
    in a READ ONLY transaction, ``fetchmany`` blocks turned column by column into Arrow."""

    def __init__(self, url: str, query: str, block_rows: int = 1 << 16) -> None:
        self.url, self.query, self.block_rows, self.label = url, query, block_rows, "psycopg"

    def open(self, rep):  # -> RecordStream
        import psycopg
        import pyarrow as pa

        from ptsynth.ingest.sources import RecordStream, _sql_column

        rep.row_offset = 1
        conn = psycopg.connect(self.url)
        conn.read_only = True
        cur = conn.cursor(name="ptsynth_bench")
        cur.itersize = self.block_rows
        cur.execute(self.query)
        rows = cur.fetchmany(self.block_rows)
        names = [d.name for d in cur.description]

        def batches():
            nonlocal rows
            try:
                while rows:
                    cols = list(zip(*rows, strict=True))
                    yield pa.RecordBatch.from_arrays([_sql_column(c) for c in cols], names=names)
                    rows = cur.fetchmany(self.block_rows)
            finally:
                cur.close()
                conn.close()

        return RecordStream(names, batches(), pa.schema([(n, pa.large_string()) for n in names]))


def run(*args: str) -> dict:
    """One read in a fresh interpreter: its JSON line (times, peak RSS from /proc VmHWM)."""
    proc = subprocess.run([sys.executable, "-c", _READ, *args], stdout=subprocess.PIPE, text=True,
                          check=False)
    if proc.returncode:
        raise SystemExit(f"benchmark step {args[0]} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def server():
    import pg_server

    url = os.environ.get("PTSYNTH_TEST_PG_URL")
    if url:
        with pg_server.given_server(url) as srv:
            yield srv
        return
    bindir = pg_server.find_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found (install postgresql or set PTSYNTH_PG_BIN)")
    with pg_server.temporary_postgres(bindir) as srv:
        yield srv


def main(argv: list[str] | None = None) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    import pg_server
    from ptsynth.demo import COLUMNS, generate_demo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sqlite", action="store_true", help="also SQLiteQuery on the same rows")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    try:
        import psycopg  # noqa: F401
        psycopg_ok = True
    except ImportError:
        psycopg_ok = False
    results = []
    with tempfile.TemporaryDirectory(prefix="ptsynth-pgbench-") as tmp, server() as srv:
        parquet = Path(tmp) / "demo.parquet"
        generate_demo(args.rows, 1, parquet)
        table = pq.read_table(parquet)
        typed = table.set_column(table.schema.get_field_index("registrationDate"), "registrationDate",
                                 pc.cast(table.column("registrationDate"), pa.date32()))
        t = time.perf_counter()
        pg_server.load_arrow(srv, "demo", typed)
        load_s = time.perf_counter() - t
        sources = [("parquet", str(parquet), "")]
        query = "SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM demo"
        os.environ["PGPASSWORD"] = srv.password  # for the subprocesses; never in a URL
        sources.append(("postgres", srv.url, query))
        if psycopg_ok:
            sources.append(("postgres-psycopg", srv.url, query))
        if args.sqlite:
            db = Path(tmp) / "demo.sqlite"
            with sqlite3.connect(db) as con:
                table.to_pandas().to_sql("demo", con, index=False, chunksize=100_000)
            con.close()
            sources.append(("sqlite", str(db), "SELECT * FROM demo"))
        del table, typed
        print(f"{args.rows:,} demo rows; loaded into PostgreSQL in {load_s:.1f} s; "
              f"median of {args.repeat} runs")
        print("| source | wall s | CPU s (reader) | peak RSS MB | of which imports MB | records |")
        print("|---|---:|---:|---:|---:|---:|")
        check = None
        for kind, target, sql in sources:
            out = [run(kind, target, sql, str(Path(__file__).parent)) for _ in range(args.repeat)]
            if check is None:
                check = (out[0]["records"], out[0]["codes"])
            assert all((r["records"], r["codes"]) == check for r in out), f"{kind}: different codes"
            row = {"source": kind, "rows": args.rows,
                   "wall_s": statistics.median(r["wall_s"] for r in out),
                   "cpu_s": statistics.median(r["cpu_s"] for r in out),
                   "peak_mb": statistics.median(r["peak_mb"] for r in out),
                   "imports_mb": statistics.median(r["imports_mb"] for r in out),
                   "records": out[0]["records"], "runs": out}
            results.append(row)
            print(f"| {kind} | {row['wall_s']:.2f} | {row['cpu_s']:.2f} | {row['peak_mb']:.0f} | "
                  f"{row['imports_mb']:.0f} | {row['records']:,} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"),
                                         "load_s": load_s, "results": results}, indent=2))


if __name__ == "__main__":
    main()
