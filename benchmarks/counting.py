"""Counting engines compared: the marginals a pgm fit needs, numpy (blocks) vs DuckDB vs Polars.

The task is the one that dominates a large fit: exact marginals of many column sets (the
default: every 1-, 2- and 3-way set of the demo table's 32 encoded columns, 5,456 sets) over
the encoded records. Engines:

* ``numpy-blocks``: :class:`ptsynth.counting.blocks.BlockCounter` (what ptsynth uses);
* ``numpy-per-set``: one ``bincount`` pass per set (the previous implementation);
* ``duckdb``: one ``GROUP BY`` query per set on an in-memory table (multi-threaded);
* ``polars``: one ``group_by().len()`` per set (multi-threaded).

Every engine's counts are checked equal to numpy's. Usage (DuckDB / Polars optional)::

    python benchmarks/counting.py --rows 1000000 --sets 600 [--threads 2]

Prints wall and CPU seconds per engine (CPU includes every thread).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from ptsynth.counting.blocks import BlockCounter, dense_counts
from ptsynth.demo import demo_config_path, generate_demo


def encoded(rows: int) -> tuple[np.ndarray, list[int]]:
    from ptsynth.config import ReleaseConfig
    from ptsynth.ingest import read_records

    cfg = ReleaseConfig.load(demo_config_path())
    table = read_records(generate_demo(rows, 1), cfg.schema)
    return np.ascontiguousarray(table.codes), list(table.sizes)


def column_sets(d: int, limit: int | None) -> list[tuple[int, ...]]:
    sets = [s for k in (1, 2, 3) for s in itertools.combinations(range(d), k)]
    if limit is not None and limit < len(sets):
        pick = np.random.default_rng(0).choice(len(sets), limit, replace=False)
        sets = [sets[i] for i in sorted(pick)]
    return sets


def run_numpy_blocks(codes, sizes, sets):
    return [m.ravel() for m in BlockCounter([codes[:, j] for j in range(codes.shape[1])],
                                            sizes).marginals(sets)]


def run_numpy_per_set(codes, sizes, sets):
    return [dense_counts([codes[:, c] for c in s], [sizes[c] for c in s]) for s in sets]


def _dense(keys: np.ndarray, counts: np.ndarray, shape: list[int]) -> np.ndarray:
    out = np.zeros(int(np.prod(shape)), dtype=np.int64)
    out[keys.astype(np.int64)] = counts
    return out


def _key_sql(s: tuple[int, ...], sizes: list[int]) -> str:
    expr = f"c{s[0]}::BIGINT"
    for c in s[1:]:
        expr = f"({expr}) * {sizes[c]} + c{c}"
    return expr


def run_duckdb(codes, sizes, sets, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads TO {threads}")
    frame = {f"c{j}": codes[:, j] for j in range(codes.shape[1])}
    con.register("t", frame)
    con.execute("CREATE TABLE r AS SELECT * FROM t")
    out = []
    for s in sets:
        k, n = con.execute(f"SELECT {_key_sql(s, sizes)} AS k, count(*) FROM r GROUP BY k"
                           ).fetchnumpy().values()
        out.append(_dense(k, n, [sizes[c] for c in s]))
    return out


def run_polars(codes, sizes, sets, threads):
    import os

    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    df = pl.DataFrame({f"c{j}": codes[:, j].astype(np.int64) for j in range(codes.shape[1])})
    out = []
    for s in sets:
        expr = pl.col(f"c{s[0]}")
        for c in s[1:]:
            expr = expr * sizes[c] + pl.col(f"c{c}")
        g = df.select(expr.alias("k")).group_by("k").len()
        out.append(_dense(g["k"].to_numpy(), g["len"].to_numpy(), [sizes[c] for c in s]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sets", type=int, default=None, help="random subset of the sets")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    codes, sizes = encoded(args.rows)
    sets = column_sets(codes.shape[1], args.sets)
    print(f"{codes.shape[0]:,} records x {codes.shape[1]} columns, {len(sets)} column sets")
    engines = {
        "numpy-blocks": lambda: run_numpy_blocks(codes, sizes, sets),
        "numpy-per-set": lambda: run_numpy_per_set(codes, sizes, sets),
        "duckdb": lambda: run_duckdb(codes, sizes, sets, args.threads),
        "polars": lambda: run_polars(codes, sizes, sets, args.threads),
    }
    reference = None
    print("| engine | wall s | CPU s | equal to numpy |")
    print("|---|---:|---:|---|")
    for name, fn in engines.items():
        w, c = time.perf_counter(), time.process_time()
        try:
            got = fn()
        except ImportError as exc:
            print(f"| {name} | - | - | skipped: {exc.name} not installed |")
            continue
        w, c = time.perf_counter() - w, time.process_time() - c
        if reference is None:
            reference = got
        same = all(np.array_equal(a, b) for a, b in zip(reference, got, strict=True))
        print(f"| {name} | {w:.1f} | {c:.1f} | {same} |")


if __name__ == "__main__":
    main()
