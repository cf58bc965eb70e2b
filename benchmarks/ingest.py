"""Ingest at scale: time and peak memory of ``generate_demo`` and ``read_records``.

Each step runs in a fresh subprocess so its peak RSS (``os.wait4``; imports included) is its own.
The data are the made-up demo records (public, seeded), written to a temporary directory that
is removed afterwards; nothing here reads sensitive records.

    python benchmarks/ingest.py                 # 20k and 1M rows, CSV
    python benchmarks/ingest.py --large         # also 5M rows
    python benchmarks/ingest.py --format parquet --rows 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_GENERATE = """
import sys, time
from ptsynth.demo import generate_demo
t = time.perf_counter()
generate_demo(int(sys.argv[1]), 1, sys.argv[2])
print(time.perf_counter() - t)
"""

_READ = """
import sys, time
from ptsynth.config import ReleaseConfig
from ptsynth.demo import demo_config_path
from ptsynth.ingest import read_records
schema = ReleaseConfig.load(demo_config_path()).schema
t = time.perf_counter()
table = read_records(sys.argv[1], schema)
print(time.perf_counter() - t, table.n_records)
"""


def run(code: str, *args: str) -> tuple[list[str], float]:
    """Run ``code`` in a fresh interpreter; its stdout fields and its peak RSS in MB."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"benchmark step failed with exit code {proc.returncode}")
    return out.split(), usage.ru_maxrss / 1024  # Linux: kB


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[20_000, 1_000_000])
    ap.add_argument("--large", action="store_true", help="also 5,000,000 rows")
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    sizes = list(args.rows) + ([5_000_000] if args.large else [])
    results = []
    print("| rows | format | generate s | generate peak MB | read s | read peak MB | records |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="ptsynth-ingest-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"demo_{n}.{args.format}"
            (gen_s,), gen_mb = run(_GENERATE, str(n), str(path))
            (read_s, records), read_mb = run(_READ, str(path))
            row = {"rows": n, "format": args.format, "generate_s": float(gen_s),
                   "generate_peak_mb": gen_mb, "read_s": float(read_s), "read_peak_mb": read_mb,
                   "records": int(records), "file_mb": path.stat().st_size / 2**20}
            results.append(row)
            print(f"| {n:,} | {args.format} | {row['generate_s']:.2f} | {gen_mb:.0f} | "
                  f"{row['read_s']:.2f} | {read_mb:.0f} | {row['records']:,} |", flush=True)
            path.unlink()
    if args.json:
        args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2))


if __name__ == "__main__":
    main()
