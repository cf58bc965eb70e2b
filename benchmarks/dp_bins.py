"""Benchmark: how equal-mass are DP bin edges, and why the exponential mechanism per quantile.

For each numeric column, ``count`` bins over a public range and grid, the budget of one DP-bins
column at ``[release] dp_bins_share`` (default 5%) of the release's ρ, over ``--seeds`` noise
draws (seeded, for measurement only). Methods, same total ρ per column:

* ``em``: ptsynth's step (:mod:`ptsynth.release.dp_bins`): one exponential mechanism per
  quantile over the grid's interior points, then distinct edges (no rounding);
* ``em+round``: the same edges after the rounding to round grid values (what a release uses);
* ``hist``: the alternative: one Gaussian-noise histogram over the grid (σ = 1/√(2ρ)), its
  clipped cumulative sums, each edge where the cumulative share first reaches k/N.

Metrics (private evaluation, against the exact values; nothing printed but aggregates): mean
absolute rank error of an edge, ``|#{x < e} − q n| / n``, and the mean over bins of
``|mass_b − 1/N|``, both as shares of the records with a value.

    python benchmarks/dp_bins.py [--seeds 50] [--epsilon 1] [--share 0.05] [--count 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ptsynth.privacy import Accountant, rho_from_epsilon_delta, seeded_random
from ptsynth.privacy.zcdp import exponential_epsilon
from ptsynth.release.dp_bins import (
    ROUNDING_TOLERANCE,
    ColumnBinsPlan,
    dp_quantile_indices,
    round_edges,
    strictly_increasing,
)
from ptsynth.schema import DPBins


def columns() -> list[tuple[str, np.ndarray, DPBins]]:
    """(name, values with NaN = missing, public grid) for the columns available here."""
    out = []
    from ptsynth.demo import generate_demo

    demo = generate_demo(20_000, 0)
    out.append(("demo age", demo["age"].to_numpy(dtype=float), None))
    try:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).parent))
        import pandas as pd

        from datasets import shared_data_dir

        nist = pd.read_csv(shared_data_dir() / "nist" / "national2019.csv", dtype=str,
                           usecols=["AGEP", "PINCP"])
        out.append(("NIST AGEP", pd.to_numeric(nist["AGEP"], errors="coerce").to_numpy(), None))
        out.append(("NIST PINCP", pd.to_numeric(nist["PINCP"], errors="coerce").to_numpy(), None))
    except (OSError, ValueError, ImportError) as exc:
        print(f"NIST not available ({type(exc).__name__}); demo only")
    grids = {"demo age": DPBins(5, 0, 120, 1.0), "NIST AGEP": DPBins(5, 0, 100, 1.0),
             "NIST PINCP": DPBins(5, -10_000, 1_400_000, 1000.0)}
    return [(n, v, grids[n]) for n, v, _ in out]


def histogram(values: np.ndarray, points: tuple[float, ...]) -> np.ndarray:
    x = values[~np.isnan(values)]
    x = np.clip(x, points[0], np.nextafter(points[-1], -np.inf))
    return np.histogram(x, bins=np.asarray(points))[0].astype(np.int64)


def errors(values: np.ndarray, edges: list[float], count: int) -> tuple[float, float]:
    x = np.sort(values[~np.isnan(values)])
    n = x.size
    ranks = np.searchsorted(x, np.asarray(edges[1:-1]), side="left") / n
    qs = np.arange(1, count) / count
    mass = np.diff(np.concatenate([[0.0], ranks, [1.0]]))
    return float(np.mean(np.abs(ranks - qs))), float(np.mean(np.abs(mass - 1 / count)))


def hist_edges(h: np.ndarray, points: tuple[float, ...], count: int, rho: float,
               rng: np.random.Generator) -> list[float]:
    noisy = np.clip(h + rng.normal(0, np.sqrt(1 / (2 * rho)), h.size), 0, None)
    cum = np.cumsum(noisy) / max(noisy.sum(), 1e-9)
    idx = [int(np.searchsorted(cum, k / count)) + 1 for k in range(1, count)]
    idx = strictly_increasing(sorted(min(max(i, 1), len(points) - 2) for i in idx), len(points))
    return [points[0], *[points[i] for i in idx], points[-1]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--share", type=float, default=0.05)
    ap.add_argument("--rounding", type=float, default=ROUNDING_TOLERANCE,
                    help="rounding tolerance (share of the adjacent bin widths)")
    args = ap.parse_args()
    rho = args.share * rho_from_epsilon_delta(args.epsilon, 1e-6)
    print(f"epsilon {args.epsilon}, delta 1e-6, DP-bins share {args.share}: rho {rho:.3g} per "
          f"column; rounding tolerance {args.rounding}")
    print("\n| column | records with a value | grid cells | method | mean rank error | mean |bin mass - 1/N| | ms per column |")
    print("|---|---|---|---|---|---|---|")
    for name, values, dp in columns():
        points = dp.points()
        h = histogram(values, points)
        count = dp.count
        per_q = rho / (count - 1)
        plan = ColumnBinsPlan(name, count, len(points) - 2, rho, per_q, exponential_epsilon(per_q), "grid")
        res: dict[str, list[tuple[float, float]]] = {"em": [], "em+round": [], "hist": []}
        t = {"em": 0.0, "hist": 0.0}
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            acc = Accountant(args.epsilon, 1e-6, rng=seeded_random(seed))
            idx = strictly_increasing(dp_quantile_indices(h, plan, acc, describe="grid"), len(points))
            t["em"] += time.perf_counter() - t0
            res["em"].append(errors(values, [points[0], *[points[i] for i in idx], points[-1]], count))
            rounded = round_edges(points, idx, args.rounding)
            res["em+round"].append(errors(values, [points[0], *[points[i] for i in rounded],
                                                   points[-1]], count))
            t0 = time.perf_counter()
            edges = hist_edges(h, points, count, rho, np.random.default_rng(seed))
            t["hist"] += time.perf_counter() - t0
            res["hist"].append(errors(values, edges, count))
        for method, r in res.items():
            arr = np.array(r)
            ms = 1000 * t.get(method, t["em"]) / args.seeds
            print(f"| {name} | {int(h.sum())} | {len(points) - 1} | {method} | {arr[:, 0].mean():.4f} | "
                  f"{arr[:, 1].mean():.4f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
