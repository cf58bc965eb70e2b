"""Estimator choice, measured: ptsynth's numpy mirror descent against private-pgm's ``mbi``.

Why this exists: issue 5 asks to write the graphical-model estimator over numpy/scipy unless a
light, maintained library is clearly faster, and to measure before choosing. Both estimators get
the *same* noisy measurements (those of a ptsynth ``pgm`` fit at epsilon = 1, seed 0, over the
model's compressed codes) and the same DP total, start cold, and run the same number of
mirror-descent iterations. Reported per run: wall seconds (mbi's first call includes JAX's
compilation, so it is run twice), the Gaussian loss ``sum_r 1/2 ||(mu_r - y_r) / sigma_r||^2``
of the returned model (the quantity both minimise; lower is better) and the peak RSS of the
process that ran it.

    /work/peers-venv/bin/python benchmarks/estimator.py --data ctdc_vp nist adult --iters 250 1000

Runs where ``mbi`` is not installed report it as skipped. Loads the real tables from
``../shared/data`` (skipped with a reason where absent); prints only aggregate figures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _limit_threads() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _measurements(data: str):
    """The noisy measurements, model sizes and DP total of a ptsynth pgm fit (epsilon 1, seed 0)."""
    import datasets as ds
    from ptsynth.privacy import Accountant, seeded_random
    from ptsynth.synth.pgm import PGMSynthesizer

    bench = ds.load(data)
    table = ds.to_encoded_table(bench.frame, bench.domains, bench.nullable)
    synth = PGMSynthesizer().fit(table, Accountant(1.0, 1e-6, rng=seeded_random(0)))
    sizes = tuple(c.size for c in synth.compression_)
    return synth.measurements_, sizes, float(synth.total_)


def _loss(measurements, project) -> float:
    """Gaussian loss of a model given ``project(clique) -> counts in the clique's axis order``."""
    import numpy as np

    out = 0.0
    for m in measurements:
        mu = np.asarray(project(m.clique), dtype=np.float64).reshape(m.values.shape)
        out += 0.5 * float(np.sum(m.weight * (mu - m.values) ** 2))
    return out


def _run_ptsynth(data: str, iters: int, queue) -> None:
    _limit_threads()
    from ptsynth.synth.graphical.estimation import MirrorDescentEstimator

    measurements, sizes, total = _measurements(data)
    t0 = time.perf_counter()
    model = MirrorDescentEstimator(sizes).fit(measurements, iters=iters, total=total)
    seconds = time.perf_counter() - t0
    loss = _loss(measurements, model.project)
    queue.put({"seconds": seconds, "loss": loss, "peak_mb": _peak_mb()})


def _run_mbi(data: str, iters: int, queue) -> None:
    _limit_threads()
    try:
        import jax.numpy as jnp
        import numpy as np
        from mbi import Domain, LinearMeasurement
        from mbi.estimation import mirror_descent
    except ImportError as exc:
        queue.put({"skipped": f"{exc.name} not installed"})
        return
    measurements, sizes, total = _measurements(data)
    names = [f"c{j:03d}" for j in range(len(sizes))]
    domain = Domain(names, sizes)
    linear = []
    for m in measurements:
        scale = np.sqrt(np.broadcast_to(m.weight, m.values.shape)).ravel()  # 1 / sigma per cell
        s = jnp.asarray(scale)
        linear.append(
            LinearMeasurement(
                jnp.asarray(m.values.ravel() * scale),
                tuple(names[v] for v in m.clique),
                stddev=1.0,
                query=lambda f, s=s: f.datavector(flatten=True) * s,
            )
        )
    times = []
    for _ in range(2):  # the first call compiles
        t0 = time.perf_counter()
        mrf = mirror_descent(domain, linear, known_total=total, iters=iters)
        np.asarray(mrf.project(linear[0].clique).datavector())  # wait for the result
        times.append(time.perf_counter() - t0)

    def project(clique):
        return np.asarray(mrf.project(tuple(names[v] for v in clique)).datavector(flatten=False))

    loss = _loss(measurements, project)
    queue.put(
        {"seconds": times[1], "first_call_s": times[0], "loss": loss, "peak_mb": _peak_mb()}
    )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


RUNNERS = {"ptsynth": _run_ptsynth, "mbi": _run_mbi}


def run(method: str, data: str, iters: int, timeout: float) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=RUNNERS[method], args=(data, iters, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        return {"status": f"timeout ({timeout:.0f} s)"}
    if queue.empty():
        return {"status": f"error (exit {proc.exitcode})"}
    out = queue.get()
    out["status"] = out.pop("skipped", "ok")
    return out


def _cell(row: dict, key: str, fmt: str) -> str:
    return fmt.format(row[key]) if key in row else ""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["ctdc_vp", "nist", "adult"])
    ap.add_argument("--iters", nargs="+", type=int, default=[250, 1000])
    ap.add_argument("--methods", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args(argv)
    import datasets as ds

    print("| data | iterations | estimator | seconds | first call s | loss | peak MB | status |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for data in args.data:
        try:
            ds.load(data)
        except ds.DatasetUnavailable as exc:
            print(f"| {data} | | | | | | | skipped: {exc} |")
            continue
        for iters in args.iters:
            for method in args.methods:
                r = run(method, data, iters, args.timeout)
                print(
                    f"| {data} | {iters} | {method} | {_cell(r, 'seconds', '{:.1f}')} | "
                    f"{_cell(r, 'first_call_s', '{:.1f}')} | {_cell(r, 'loss', '{:.1f}')} | "
                    f"{_cell(r, 'peak_mb', '{:.0f}')} | {r['status']} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
