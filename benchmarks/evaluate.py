"""Benchmark: evaluate a 100k-record synthetic table against 100k real ones, under a minute.

Default: a random table with dependencies (27 columns). ``--source demo`` uses the built-in
demo generator (CTDC-like case records, ~97k x 32 encoded columns; ``auto`` = demo when
importable). Synthetic = an independent draw from the same generator, holdout = a tenth-size
third draw. Prints the wall and CPU time, per-step times and peak memory (tracemalloc, RSS).
The machine may be shared: compare CPU time as well as wall time, and run twice.

Reference (2 shared cores, load ~4): demo 47.7 s wall / 21.2 s CPU before the batched
nearest-neighbour search, bitset popcount and Newton-CG; about 16 s wall / 9 s CPU after.

    python benchmarks/evaluate.py [--source random|demo|auto] [--rows 100000] [--html out.html]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from ptsynth.table import ColumnDomain, EncodedTable


def random_tables(n: int, n_cols: int = 27, seed: int = 0) -> tuple[EncodedTable, ...]:
    """Real, synthetic and holdout tables sharing a latent class (so columns depend)."""
    rng = np.random.default_rng(seed)
    kinds = ("categorical", "ordinal", "set_member")
    doms = []
    for j in range(n_cols):
        kind = kinds[j % 3]
        labels = ("1",) if kind == "set_member" else tuple(f"v{i}" for i in range(3 + 5 * j % 17))
        doms.append(ColumnDomain(f"c{j:02d}", labels, kind=kind, quasi_identifier=j < 4,
                                 sensitive=j in (5, 7)))

    def draw(m: int) -> np.ndarray:
        z = rng.integers(0, 6, m)
        cols = [(z * (j + 1) + rng.integers(0, 3, m)) % d.size for j, d in enumerate(doms)]
        return np.stack(cols, 1).astype(np.int16)

    return tuple(EncodedTable(draw(m), tuple(doms)) for m in (n, n, n // 10))


def demo_tables(n: int) -> tuple[EncodedTable, ...] | None:
    try:
        from ptsynth.config import ReleaseConfig
        from ptsynth.demo import demo_config_path, generate_demo
        from ptsynth.ingest import read_records
    except ImportError:
        return None
    schema = ReleaseConfig.load(demo_config_path()).schema
    return tuple(read_records(generate_demo(m, seed), schema)
                 for m, seed in ((n, 1), (n, 2), (n // 10, 3)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--source", choices=("auto", "demo", "random"), default="random")
    ap.add_argument("--target", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--html", default=None)
    args = ap.parse_args()
    tables = demo_tables(args.rows) if args.source in ("auto", "demo") else None
    source = "demo" if tables is not None else "random"
    if tables is None:
        tables = random_tables(args.rows)
    real, syn, hold = tables
    target = args.target or real.column_names[5]
    from ptsynth.evaluate import evaluate

    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    report = evaluate(real, syn, holdout=hold, target=target, seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"source={source} rows={real.n_records} columns={real.n_columns} target={target}")
    print(f"evaluate: {wall:.1f} s wall, {cpu:.1f} s CPU; peak traced memory "
          f"{peak / 2**20:.0f} MiB; "
          f"max RSS {rss:.0f} MiB")
    print("steps (s):", report["timings_s"])
    print("mean TVD by order:", {o: round(v["mean"]["value"], 4)
                                 for o, v in report["utility"]["marginals"]["by_order"].items()})
    if args.json:
        from ptsynth.report import write_json_report

        write_json_report(report, args.json)
    if args.html:
        from ptsynth.report import write_html_report

        write_html_report(report, args.html)


if __name__ == "__main__":
    main()
