"""Peer benchmark: one accuracy metric, wall time and peak memory for every method on the same data.

Why a harness of its own: claims like "as accurate as MST at a tenth of the time" only mean
something when every method sees the same table, is scored by the same code, and runs under the
same limits. Each method runs in a **subprocess** (a crash, a runaway memory use or a time cap
cannot take the harness down, and the kernel reports that process's own peak memory), writes its
synthetic table to a temporary Parquet file, and the parent scores it with :func:`mean_tvd`.

Metric: mean total variation distance between real and synthetic marginals, over 1-, 2- and
3-way column sets (at most ``max_sets`` per order, drawn with a fixed seed), computed on integer
codes under a category mapping shared by both tables (the union of their categories). Also the
SDNist k-marginal score, ``1000 · (1 − mean 2-way TVD)``.

Methods: ``ptsynth-pgm``, ``ptsynth-aggregate`` (ours), ``pacsynth`` (pac-synth's
``DpAggregateSeededSynthesizer``), ``mst``, ``aim`` (SmartNoise Synth), ``gaussian-copula``
(SDV, not DP: a reference) and ``bootstrap`` (a resample of the real rows: the sampling floor,
not DP). δ = 1e-6 for every DP method. Synthetic rows = real rows.

Usage (peers live in /work/peers-venv; methods whose package is missing are skipped with a reason)::

    /work/peers-venv/bin/python benchmarks/peers.py --data ctdc_vp nist adult --epsilon 1 \\
        --methods bootstrap pacsynth mst --timeout 300 --out benchmarks/results/peers.json

Results accumulate in the JSON (a rerun replaces the same data/ε/method entry); the Markdown
table is rewritten beside it. Results are private evaluations (they compare with the real
data): they stay under ``benchmarks/results/`` (git-ignored). Nothing prints a row.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so `import datasets` finds the sibling module, also under pytest
    sys.path.insert(0, str(HERE))

from datasets import MISSING, DatasetUnavailable, from_encoded_table, load, to_encoded_table  # noqa: E402

DELTA = 1e-6
DEFAULT_TIMEOUT_S = 300
#: AIM's own documentation warns of hours; it gets its own (longer) cap.
AIM_TIMEOUT_S = 600
#: Methods that take ε; the others run once per dataset, whatever ``--epsilon`` lists.
DP_METHODS = ("ptsynth-pgm", "ptsynth-aggregate", "pacsynth", "mst", "aim")
NON_DP_METHODS = ("gaussian-copula", "bootstrap")
ALL_METHODS = DP_METHODS + NON_DP_METHODS
#: Python module each method needs (checked in the child's interpreter).
REQUIRES = {
    "ptsynth-pgm": "ptsynth.synth.pgm",
    "ptsynth-aggregate": "ptsynth.synth.aggregate_seeded",
    "pacsynth": "pacsynth",
    "mst": "snsynth",
    "aim": "snsynth",
    "gaussian-copula": "sdv",
    "bootstrap": "numpy",
}
DISTRIBUTION = {
    "ptsynth-pgm": "ptsynth",
    "ptsynth-aggregate": "ptsynth",
    "pacsynth": "pac-synth",
    "mst": "smartnoise-synth",
    "aim": "smartnoise-synth",
    "gaussian-copula": "sdv",
    "bootstrap": "numpy",
}
#: Cell count above which a marginal is counted over its occupied cells (np.unique) instead of
#: a dense bincount, so wide domains (Adult: 85 x 100 x 99) cost memory in rows, not cells.
DENSE_CELL_LIMIT = 1 << 21


# =============================================================================================
# The metric
# =============================================================================================
def shared_codes(
    real: pd.DataFrame, synth: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Integer codes of both tables under one mapping per column (union of their categories).

    Values are compared as strings; NaN/None count as the missing category ``""``.
    """
    if list(real.columns) != list(synth.columns):
        missing = sorted(set(real.columns) - set(synth.columns))
        extra = sorted(set(synth.columns) - set(real.columns))
        if missing or extra:
            raise ValueError(f"column mismatch: missing {missing}, unexpected {extra}")
        synth = synth[list(real.columns)]
    n = len(real)
    r_codes = np.empty((n, real.shape[1]), dtype=np.int64)
    s_codes = np.empty((len(synth), real.shape[1]), dtype=np.int64)
    sizes = []
    for j, c in enumerate(real.columns):
        both = pd.concat([_as_str(real[c]), _as_str(synth[c])], ignore_index=True)
        codes, uniques = pd.factorize(both, sort=True)
        r_codes[:, j] = codes[:n]
        s_codes[:, j] = codes[n:]
        sizes.append(max(len(uniques), 1))
    return r_codes, s_codes, sizes


def _as_str(col: pd.Series) -> pd.Series:
    return col.astype(object).where(col.notna(), MISSING).astype(str)


def column_sets(n_columns: int, order: int, max_sets: int, seed: int) -> list[tuple[int, ...]]:
    """All ``order``-subsets of the columns, or ``max_sets`` of them drawn with ``seed``."""
    sets = list(itertools.combinations(range(n_columns), order))
    if len(sets) > max_sets:
        keep = np.sort(
            np.random.default_rng([seed, order]).choice(len(sets), max_sets, replace=False)
        )
        sets = [sets[i] for i in keep]
    return sets


def marginal_tvd(
    r_codes: np.ndarray, s_codes: np.ndarray, sizes: Sequence[int], cols: Sequence[int]
) -> float:
    """TVD = ½ Σ |p − q| between the real and synthetic distributions on ``cols``."""
    from ptsynth.counting import cell_key

    sub = [int(sizes[c]) for c in cols]
    fr = cell_key(r_codes[:, list(cols)], sub)
    fs = cell_key(s_codes[:, list(cols)], sub)
    n_cells = math.prod(sub)
    if n_cells > DENSE_CELL_LIMIT:  # count over occupied cells only
        _, inv = np.unique(np.concatenate([fr, fs]), return_inverse=True)
        n_cells = int(inv.max()) + 1
        fr, fs = inv[: len(fr)], inv[len(fr) :]
    p = np.bincount(fr, minlength=n_cells) / len(fr)
    q = np.bincount(fs, minlength=n_cells) / len(fs)
    return 0.5 * float(np.abs(p - q).sum())


def mean_tvd(
    real_df: pd.DataFrame,
    synth_df: pd.DataFrame,
    orders: Sequence[int] = (1, 2, 3),
    max_sets: int = 400,
    seed: int = 0,
) -> dict:
    """Mean marginal TVD per order, overall, 3-way, and SDNist's k-marginal score (2-way).

    ``overall`` is the mean over every scored column set of every order (pooled, so an order
    with more sets weighs more), i.e. "mean TVD over all 1-, 2- and 3-way marginals".
    Returns plain floats (JSON-ready). Raises ``ValueError`` on an empty table.
    """
    if len(real_df) == 0 or len(synth_df) == 0:
        raise ValueError("cannot score an empty table")
    r_codes, s_codes, sizes = shared_codes(real_df, synth_df)
    by_order: dict[str, float] = {}
    n_sets: dict[str, int] = {}
    pooled: list[float] = []
    for k in orders:
        if k > r_codes.shape[1]:
            continue
        tvds = [
            marginal_tvd(r_codes, s_codes, sizes, cols)
            for cols in column_sets(r_codes.shape[1], k, max_sets, seed)
        ]
        by_order[str(k)] = float(np.mean(tvds))
        n_sets[str(k)] = len(tvds)
        pooled.extend(tvds)
    out = {
        "tvd_by_order": by_order,
        "n_sets": n_sets,
        "overall": float(np.mean(pooled)),
        "tvd_3way": by_order.get("3"),
        "k_marginal": None if "2" not in by_order else 1000.0 * (1.0 - by_order["2"]),
        "max_sets": max_sets,
        "seed": seed,
    }
    return out


# =============================================================================================
# Runners (executed in the child process)
# =============================================================================================
def _limit_threads(threads: int) -> None:
    n = str(threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "RAYON_NUM_THREADS", "NUMEXPR_NUM_THREADS"):  # fmt: skip
        os.environ[var] = n
    os.environ["XLA_FLAGS"] = (
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={threads}"
    )
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def run_bootstrap(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Resample the real rows with replacement: the accuracy a perfect model of the data gets."""
    rng = np.random.default_rng(spec["seed"])
    return df.iloc[rng.integers(0, len(df), size=spec["rows"])].reset_index(drop=True)


def run_gaussian_copula(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """SDV GaussianCopula, every column categorical. Not DP: a non-private reference."""
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    metadata = Metadata.load_from_dict(
        {"tables": {"data": {"columns": {c: {"sdtype": "categorical"} for c in df.columns}}}}
    )
    np.random.seed(spec["seed"])  # noqa: NPY002  (SDV samples from numpy's global state)
    model = GaussianCopulaSynthesizer(metadata)
    model.fit({"data": df})  # SDV 2 takes and returns {table name: DataFrame}
    out = model.sample(num_rows=spec["rows"])
    return out["data"] if isinstance(out, dict) else out


def run_pacsynth(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """pac-synth with defaults (reporting length 3, prioritize long, uncontrolled fabrication).

    ``sensitive_zeros`` names every column: by default pac-synth treats "0" as absent.
    """
    import pacsynth as ps

    ps.set_number_of_threads(spec["threads"])
    dataset = ps.Dataset.from_data_frame(df, sensitive_zeros=list(df.columns))
    params = (
        ps.DpAggregateSeededParametersBuilder()
        .reporting_length(3)
        .epsilon(spec["epsilon"])
        .delta(spec["delta"])
        .build()
    )
    synth = ps.DpAggregateSeededSynthesizer(params)
    synth.fit(dataset)
    raw = synth.sample(spec["rows"])
    return pd.DataFrame(raw[1:], columns=raw[0])[list(df.columns)]


def _run_smartnoise(kind: str, df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    from snsynth import Synthesizer

    np.random.seed(spec["seed"])  # noqa: NPY002  (MST/AIM draw noise from the global state)
    synth = Synthesizer.create(kind, epsilon=float(spec["epsilon"]), delta=float(spec["delta"]))
    synth.fit(df, categorical_columns=list(df.columns), preprocessor_eps=0.0)
    out = synth.sample(spec["rows"])
    return out if isinstance(out, pd.DataFrame) else pd.DataFrame(list(out), columns=df.columns)


def run_mst(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """SmartNoise MST (private-pgm), all columns categorical."""
    return _run_smartnoise("mst", df, spec)


def run_aim(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """SmartNoise AIM with its defaults (2-way workload, max model size 80)."""
    return _run_smartnoise("aim", df, spec)


def _run_ptsynth(synth_factory, df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    from ptsynth.privacy import Accountant, seeded_random

    nullable = spec.get("nullable")
    table = to_encoded_table(df, spec.get("domains"), None if nullable is None else set(nullable))
    accountant = Accountant(spec["epsilon"], spec["delta"], rng=seeded_random(spec["seed"]))
    model = synth_factory().fit(table, accountant)
    return from_encoded_table(model.sample(spec["rows"], seeded_random(spec["seed"] + 1)))


def run_ptsynth_pgm(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    from ptsynth.synth.pgm import PGMSynthesizer

    return _run_ptsynth(PGMSynthesizer, df, spec)


def run_ptsynth_aggregate(df: pd.DataFrame, spec: dict) -> pd.DataFrame:
    from ptsynth.synth.aggregate_seeded import AggregateSeededSynthesizer

    return _run_ptsynth(AggregateSeededSynthesizer, df, spec)


RUNNERS = {
    "ptsynth-pgm": run_ptsynth_pgm,
    "ptsynth-aggregate": run_ptsynth_aggregate,
    "pacsynth": run_pacsynth,
    "mst": run_mst,
    "aim": run_aim,
    "gaussian-copula": run_gaussian_copula,
    "bootstrap": run_bootstrap,
}


def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def child_main(spec_path: str) -> int:
    """Run one method as described by the JSON spec; write the synthetic Parquet and a result JSON."""
    spec = json.loads(Path(spec_path).read_text())
    _limit_threads(spec["threads"])
    result: dict = {"status": "ok"}
    try:
        import importlib.util

        module = REQUIRES[spec["method"]]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            result = {"status": f"skipped: {module} not installed in {sys.executable}"}
        else:
            df = pd.read_parquet(spec["real"])
            result["rss_before_fit_mb"] = _maxrss_mb()
            t0 = time.perf_counter()
            synth = RUNNERS[spec["method"]](df, spec)
            result["fit_sample_s"] = time.perf_counter() - t0
            synth = synth.astype(object).where(synth.notna(), MISSING).astype(str)
            synth.to_parquet(spec["synth"], index=False)
            result["synth_rows"] = len(synth)
            with contextlib.suppress(Exception):
                from importlib.metadata import version

                result["version"] = version(DISTRIBUTION[spec["method"]])
    except Exception as exc:  # a peer's failure is a result, not a crash of the harness
        # The message may quote data values: it goes to the private log only, never the report.
        traceback.print_exc()
        result = {"status": f"error: {type(exc).__name__} (see log)"}
    result["peak_rss_self_mb"] = _maxrss_mb()
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


# =============================================================================================
# The parent: data, subprocesses, scoring, reports
# =============================================================================================
def run_one(
    method: str,
    data_name: str,
    real_path: Path,
    real: pd.DataFrame,
    domains: dict | None,
    epsilon: float | None,
    nullable: list[str] | None = None,
    *,
    python: str,
    timeout: float,
    seed: int,
    threads: int,
    max_sets: int,
    workdir: Path,
    log_dir: Path,
) -> dict:
    """Run ``method`` in a child process under ``timeout`` and score its output."""
    tag = f"{data_name}_{method}_eps{epsilon if epsilon is not None else 'na'}"
    spec = {
        "method": method,
        "real": str(real_path),
        "synth": str(workdir / f"{tag}.parquet"),
        "result": str(workdir / f"{tag}.json"),
        "epsilon": epsilon,
        "delta": DELTA,
        "seed": seed,
        "rows": len(real),
        "threads": threads,
        "domains": domains,
        "nullable": nullable,
    }
    spec_path = workdir / f"{tag}.spec.json"
    spec_path.write_text(json.dumps(spec))
    row: dict = {
        "data": data_name,
        "epsilon": epsilon,
        "delta": DELTA if method in DP_METHODS else None,
        "method": method,
        "dp": method in DP_METHODS,
        "rows": len(real),
        "timeout_s": timeout,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{tag}.log"
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = _spawn([python, str(Path(__file__).resolve()), "--child", str(spec_path)], log)
        status, rusage = _wait(proc.pid, timeout)
    row["process_s"] = time.perf_counter() - t0
    row["peak_mb"] = rusage.ru_maxrss / 1024.0 if rusage is not None else None
    if status == "timeout":
        row["status"] = "timeout"
        return row
    result_path = Path(spec["result"])
    if not result_path.is_file():
        row["status"] = f"error: child exited with status {status} (see log)"
        return row
    result = json.loads(result_path.read_text())
    row.update({k: v for k, v in result.items() if k != "peak_rss_self_mb"})
    row["time_s"] = result.get("fit_sample_s")
    if row["status"] != "ok":
        if row["status"].startswith("skipped"):
            row["peak_mb"] = None
        return row
    synth = pd.read_parquet(spec["synth"])
    try:
        row.update(mean_tvd(real, synth, max_sets=max_sets, seed=seed))
    except ValueError as exc:
        row["status"] = f"error scoring: {exc}"
    return row


def _spawn(argv: list[str], log):
    import subprocess

    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(pid: int, timeout: float):
    """Wait for ``pid`` up to ``timeout`` s; return (exit status | "timeout", its own rusage).

    ``os.wait4`` gives the peak RSS of this very child (not the max over all children so far).
    """
    deadline = time.monotonic() + timeout
    while True:
        done, status, rusage = os.wait4(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), rusage
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # the child's own session: only what we started
            _, _, rusage = os.wait4(pid, 0)
            return "timeout", rusage
        time.sleep(0.1)


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown_table(rows: list[dict]) -> str:
    """The results as one Markdown table (data, ε, method, TVD by order, overall, k-marginal, ...)."""
    head = ("| data | ε | method | TVD 1-way | TVD 2-way | TVD 3-way | overall | k-marginal "
            "| time s | peak MB | status |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        t = r.get("tvd_by_order", {})
        lines.append(
            "| "
            + " | ".join(
                [
                    r["data"],
                    _fmt(r.get("epsilon"), 1) if r.get("epsilon") is not None else "-",
                    r["method"],
                    _fmt(t.get("1")),
                    _fmt(t.get("2")),
                    _fmt(t.get("3")),
                    _fmt(r.get("overall")),
                    _fmt(r.get("k_marginal"), 0),
                    _fmt(r.get("time_s"), 1),
                    _fmt(r.get("peak_mb"), 0),
                    r.get("status", "-"),
                ]
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def _sort_key(r: dict):
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    return (r["data"], -1 if r.get("epsilon") is None else r["epsilon"], order.get(r["method"], 99))


def _merge(out: Path, new_rows: list[dict], fresh: bool) -> list[dict]:
    rows: list[dict] = []
    if out.is_file() and not fresh:
        with contextlib.suppress(Exception):
            rows = json.loads(out.read_text()).get("results", [])
    keys = {(r["data"], r.get("epsilon"), r["method"]) for r in new_rows}
    rows = [r for r in rows if (r["data"], r.get("epsilon"), r["method"]) not in keys] + new_rows
    return sorted(rows, key=_sort_key)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", default=["ctdc_vp", "nist", "adult"])
    ap.add_argument("--epsilon", nargs="+", type=float, default=[1.0])
    ap.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=ALL_METHODS)
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="wall cap per run, s")
    ap.add_argument("--aim-timeout", type=float, default=AIM_TIMEOUT_S, help="wall cap for AIM, s")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "peers.json")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the method processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="threads per method (shared machines)")
    ap.add_argument("--max-sets", type=int, default=400)
    ap.add_argument("--fresh", action="store_true", help="discard earlier results in --out")
    args = ap.parse_args(argv)

    new_rows: list[dict] = []
    data_meta: dict = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ptsynth-peers-") as tmp:
        workdir = Path(tmp)
        for name in args.data:
            try:
                bench = load(name)
            except DatasetUnavailable as exc:
                print(f"skipping dataset {name}: {exc}", file=sys.stderr)
                continue
            real = bench.frame
            real_path = workdir / f"{name}.parquet"
            real.to_parquet(real_path, index=False)
            data_meta[name] = {
                "rows": len(real),
                "columns": list(real.columns),
                "domain_source": bench.domain_source,
                "notes": bench.notes,
            }
            for method in args.methods:
                epsilons = args.epsilon if method in DP_METHODS else [None]
                for eps in epsilons:
                    timeout = args.aim_timeout if method == "aim" else args.timeout
                    row = run_one(
                        method, name, real_path, real, bench.domains, eps,
                        None if bench.nullable is None else sorted(bench.nullable),
                        python=args.python, timeout=timeout, seed=args.seed,
                        threads=args.threads, max_sets=args.max_sets, workdir=workdir,
                        log_dir=args.out.parent / "logs",
                    )  # fmt: skip
                    new_rows.append(row)
                    print(markdown_table([row]).splitlines()[-1], flush=True)

    rows = _merge(args.out, new_rows, args.fresh)
    meta = {
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "delta": DELTA,
        "metric": "mean TVD of marginals, shared category mapping, <= max_sets sets per order",
        "max_sets": args.max_sets,
        "seed": args.seed,
        "threads": args.threads,
        "python": args.python,
        "machine": f"{platform.platform()}; {os.cpu_count()} CPUs",
        "note": "private evaluation (compares with real data): keep under benchmarks/results/",
    }
    previous = {}
    if args.out.is_file() and not args.fresh:
        with contextlib.suppress(Exception):
            previous = json.loads(args.out.read_text()).get("datasets", {})
    report = {"meta": meta, "datasets": {**previous, **data_meta}, "results": rows}
    args.out.write_text(json.dumps(report, indent=2))
    table = markdown_table(rows)
    args.out.with_suffix(".md").write_text(
        f"# Peer benchmark\n\nδ = {DELTA} for DP methods; rows = real rows; "
        f"{args.threads} thread(s) per method; time = fit + sample (s); "
        "peak MB = the method process's peak RSS (imports included).\n\n" + table
    )
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
