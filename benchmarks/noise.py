"""Noise throughput: ptsynth's exact discrete Gaussian vs diffprivlib and OpenDP.

Why: exact samplers are often dismissed as slow. This prints a markdown table of noisy integer
cells per second (one process, one thread) for ptsynth (σ = 0.5, 1, 10, 1000, 1e4; secure
``os.urandom`` and seeded PCG64), diffprivlib ``GaussianDiscrete`` (one ``randomise`` call per
value) and OpenDP ``make_gaussian`` on a vector of integers, where those are importable.

Run::

    /work/peers-venv/bin/python benchmarks/noise.py      # with the peers
    python benchmarks/noise.py                           # ptsynth only

Peer sample counts are small (their per-value cost is ~20-60 µs) so the whole run stays under a
minute. ``cells/s`` is wall-clock; ``cpu cells/s`` uses process CPU time, which is steadier on a
busy machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

try:
    import ptsynth  # noqa: F401
except ImportError:  # running from a checkout with another interpreter (e.g. the peers' venv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ptsynth.privacy import sample_discrete_gaussian, secure_random, seeded_random

SIGMAS = (0.5, 1.0, 10.0, 1000.0, 1e4)


def timed(fn: Callable[[], object], n: int, repeat: int = 2) -> tuple[float, float]:
    """Best (wall, cpu) cells/s over ``repeat`` runs of ``fn`` producing ``n`` cells."""
    best_wall = best_cpu = 0.0
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        best_wall, best_cpu = max(best_wall, n / w), max(best_cpu, n / max(c, 1e-9))
    return best_wall, best_cpu


def bench_ptsynth(n: int) -> list[tuple[str, float, int, float, float]]:
    rows = []
    for label, make in (("secure", secure_random), ("seeded", lambda: seeded_random(0))):
        rng = make()
        for sigma in SIGMAS:
            sample_discrete_gaussian(1000, sigma, rng)  # warm up
            wall, cpu = timed(lambda s=sigma, r=rng: sample_discrete_gaussian(n, s, r), n)
            rows.append((f"ptsynth ({label})", sigma, n, wall, cpu))
    return rows


def bench_diffprivlib(n: int) -> list[tuple[str, float, int, float, float]]:
    try:
        from diffprivlib.mechanisms import GaussianDiscrete
    except ImportError:
        return []
    rows = []
    for sigma, cells in ((10.0, n), (1000.0, max(n // 10, 100))):  # ~1.7 ms/value at σ=1000
        mech = GaussianDiscrete(epsilon=0.5, delta=1e-6, sensitivity=1)
        mech._scale = sigma  # benchmark at the same σ as ours
        wall, cpu = timed(lambda m=mech, k=cells: [m.randomise(0) for _ in range(k)], cells, 1)
        rows.append(("diffprivlib GaussianDiscrete", sigma, cells, wall, cpu))
    return rows


def bench_opendp(n: int) -> list[tuple[str, float, int, float, float]]:
    try:
        import opendp.prelude as dp
    except ImportError:
        return []
    dp.enable_features("contrib")
    rows = []
    for sigma in (10.0, 1000.0):
        meas = dp.m.make_gaussian(
            dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=sigma
        )
        wall, cpu = timed(lambda m=meas, d=[0] * n: m(d), n, repeat=1)
        rows.append(("opendp make_gaussian (int vector)", sigma, n, wall, cpu))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1_000_000, help="cells per ptsynth run")
    ap.add_argument("--peer-cells", type=int, default=10_000, help="cells per peer run")
    args = ap.parse_args(argv)
    rows = bench_ptsynth(args.cells)
    rows += bench_diffprivlib(args.peer_cells)
    rows += bench_opendp(args.peer_cells)
    print("| sampler | σ | cells | cells/s (wall) | cells/s (cpu) | µs/cell (cpu) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, sigma, n, wall, cpu in rows:
        print(f"| {name} | {sigma:g} | {n:,} | {wall:,.0f} | {cpu:,.0f} | {1e6 / cpu:.3f} |")


if __name__ == "__main__":
    main()
