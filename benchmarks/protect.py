"""What k-anonymity enforcement costs: utility before/after, and time and memory at scale.

A *private evaluation*: it compares synthetic records with the real ones, so it prints
aggregate figures only (mean TVDs, blank shares, numbers of categories), never a record or a
value. Usage::

    python benchmarks/protect.py utility --data demo ctdc_vp --seeds 1 2 --epsilon 1
    python benchmarks/protect.py scale --rows 1000000 10000000

``utility``: per dataset and seed, the configured synthesizer is fitted at ``--epsilon`` on all
records (seeded), the DP record count of records is sampled ("before"), and each enforcement
method is applied to that same sample ("after"): ``suppress`` (suppression and dropping only:
the earlier method), ``redraw`` (whole records redrawn from the model, then suppression),
``no-rebalance`` (the default without its last step, :mod:`ptsynth.release.rebalance`),
``default`` (:data:`ptsynth.release.protect.STEPS`). Structural zeros of the schema are
passed, as the release pipeline does. Printed per method: mean 3-way TVD to the
real records over all column triples (the private report's figure) and over the QI triples
only, mean 1-way TVD of the QI columns, the largest rise of a QI column's blank share (points),
categories with at least 2k real records absent after (and before) enforcement, the share of
records changed, and CPU / wall seconds of the enforcement.

``scale``: synthetic-like records (sampled from a model fitted on the demo data) at each size,
enforced in a fresh process that loads them from disk (in place, as the release pipeline does;
``--copy`` for a copy); prints wall and CPU seconds of the enforcement and that process's peak
RSS (``VmHWM``) next to its RSS once the table is loaded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ptsynth.config import ReleaseConfig
from ptsynth.counting import cell_key, n_cells
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.release import pipeline
from ptsynth.release.protect import (
    STEPS,
    check_k_anonymity,
    enforce_k_anonymity,
    model_redraw,
)
from ptsynth.table import EncodedTable

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PTSYNTH_SHARED_DATA", REPO.parent / "shared" / "data"))
CONFIGS = {"demo": REPO / "configs" / "ctdc_demo.toml", "ctdc_vp": REPO / "configs" / "ctdc_vp.toml"}
METHODS = {"suppress": (), "redraw": ("redraw",),
           "no-rebalance": tuple(s for s in STEPS if s != "rebalance"), "default": STEPS}


def _data_path(name: str, work: Path) -> Path:
    if name == "demo":
        from ptsynth.demo import generate_demo

        path = work / "demo_20000_seed1.csv"
        if not path.exists():
            generate_demo(20_000, 1, path)
        return path
    path = SHARED / "ctdc_vp" / "CTDC_VPsynthetic_condensed.csv"
    if not path.exists():
        raise SystemExit(f"{path} not found (set PTSYNTH_SHARED_DATA)")
    return path


def fit(name: str, seed: int, epsilon: float, work: Path):
    """(config, real table, fitted synthesizer, rng) — the model is fitted on all records."""
    cfg = ReleaseConfig.load(CONFIGS[name])
    rng = seeded_random(seed)
    real = pipeline.read(_data_path(name, work), cfg)
    acc = Accountant(epsilon, cfg.privacy.delta, rng=rng, release_id=f"bench-{name}-{seed}")
    synth = pipeline.measure(cfg, real, acc)
    return cfg, real, synth, rng


# -- metrics (aggregates only) -------------------------------------------------------------------
def _counts(codes: np.ndarray, cols: tuple[int, ...], sizes: list[int]) -> np.ndarray:
    return np.bincount(cell_key(codes[:, list(cols)], [sizes[c] for c in cols]),
                       minlength=n_cells([sizes[c] for c in cols]))


def mean_tvd(real: EncodedTable, synth: EncodedTable, sets: list[tuple[int, ...]]) -> float:
    sizes = list(real.sizes)
    out = []
    for cols in sets:
        a, b = _counts(real.codes, cols, sizes), _counts(synth.codes, cols, sizes)
        out.append(0.5 * float(np.abs(a / max(a.sum(), 1) - b / max(b.sum(), 1)).sum()))
    return float(np.mean(out)) if out else 0.0


def utility(real: EncodedTable, synth: EncodedTable, qi: list[int], k: int) -> dict:
    d = real.n_columns
    res = {
        "tvd3_all": mean_tvd(real, synth, list(itertools.combinations(range(d), 3))),
        "tvd3_qi": mean_tvd(real, synth, list(itertools.combinations(qi, 3))),
        "tvd1_qi": mean_tvd(real, synth, [(j,) for j in qi]),
    }
    blank, lost = {}, 0
    for j in qi:
        dom = real.domains[j]
        mc = dom.missing_code
        blank[dom.name] = float((synth.codes[:, j] == mc).mean()) if mc is not None else 0.0
        cr = np.bincount(real.codes[:, j], minlength=dom.size)
        cs = np.bincount(synth.codes[:, j], minlength=dom.size)
        lost += int(sum(1 for v in range(dom.size) if v != mc and cr[v] >= 2 * k and cs[v] == 0))
    res["blank"], res["lost"] = blank, lost
    return res


def run_utility(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="ptsynth-bench-protect-"))
    rows = []
    for name in args.data:
        for seed in args.seeds:
            cfg, real, synth, rng = fit(name, seed, args.epsilon, work)
            k, L = args.k, args.reporting_length
            qi = list(real.indices(cfg.schema.quasi_identifiers))
            before = pipeline.synthesize(cfg, synth, rng, [])
            ub = utility(real, before, qi, k)
            viol = check_k_anonymity(before, qi, k=k, reporting_length=L)["rows_affected"]
            for method in args.methods:
                erng = seeded_random(1000 + seed)
                redraw = model_redraw(synth, erng)
                c0, w0 = time.process_time(), time.perf_counter()
                after, rep = enforce_k_anonymity(before, qi, k=k, reporting_length=L, rng=erng,
                                                 redraw=redraw, steps=METHODS[method],
                                                 structural_zeros=cfg.schema.structural_zeros)
                cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                ua = utility(real, after, qi, k)
                rise = max(ua["blank"][c] - ub["blank"][c] for c in ub["blank"])
                row = {
                    "data": name, "seed": seed, "method": method, "records": before.n_records,
                    "violating_before": viol / before.n_records,
                    "tvd3_all_before": ub["tvd3_all"], "tvd3_all_after": ua["tvd3_all"],
                    "tvd3_qi_before": ub["tvd3_qi"], "tvd3_qi_after": ua["tvd3_qi"],
                    "tvd1_qi_before": ub["tvd1_qi"], "tvd1_qi_after": ua["tvd1_qi"],
                    "max_blank_rise_points": 100 * rise,
                    "blank_before": ub["blank"], "blank_after": ua["blank"],
                    "lost_before": ub["lost"], "lost_after": ua["lost"],
                    "records_changed": rep["records_changed_share"],
                    "recoded": rep["recoded_cells_total"], "copied": rep["records_copied"],
                    "aggregated": rep["records_aggregated"], "redrawn": rep["records_redrawn"],
                    "rebalanced": rep["records_rebalanced"],
                    "suppressed": rep["suppressed_cells"], "dropped": rep["dropped_records"],
                    "cpu_s": cpu, "wall_s": wall,
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    print(f"k = {args.k}, reporting length {args.reporting_length}, epsilon {args.epsilon}\n")
    print("| data | seed | method | violating before | 3-way TVD all: before → after (Δ) | "
          "3-way TVD QI | 1-way TVD QI | max blank rise (pt) | categories ≥2k lost | "
          "records changed | CPU s | wall s |")
    print("|---|---:|---|---:|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        delta = r["tvd3_all_after"] / r["tvd3_all_before"] - 1
        print(f"| {r['data']} | {r['seed']} | {r['method']} | {r['violating_before']:.1%} | "
              f"{r['tvd3_all_before']:.4f} → {r['tvd3_all_after']:.4f} ({delta:+.1%}) | "
              f"{r['tvd3_qi_before']:.3f} → {r['tvd3_qi_after']:.3f} | "
              f"{r['tvd1_qi_before']:.3f} → {r['tvd1_qi_after']:.3f} | "
              f"{r['max_blank_rise_points']:.2f} | {r['lost_after']} (before {r['lost_before']}) | "
              f"{r['records_changed']:.1%} | {r['cpu_s']:.2f} | {r['wall_s']:.2f} |")


# -- scale -------------------------------------------------------------------------------------
def _vm(field: str) -> float:
    """This process's ``VmHWM`` (peak) or ``VmRSS`` in MB, from /proc (Linux). Why not
    ``ru_maxrss``: it keeps the pre-exec peak of the forking parent's pages."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(path: str, k: int, L: int, in_place: bool) -> None:
    """Runs in its own process: load the table, enforce, print timings as JSON."""
    data = np.load(path, allow_pickle=False)
    meta = json.loads(Path(path + ".json").read_text())
    from ptsynth.synth.persist import domains_from_doc

    domains = domains_from_doc(meta["domains"])
    table = EncodedTable(data, domains)
    qi = meta["qi"]
    rss_loaded = _vm("VmRSS")
    c0, w0 = time.process_time(), time.perf_counter()
    out, rep = enforce_k_anonymity(table, qi, k=k, reporting_length=L, rng=seeded_random(7),
                                   in_place=in_place)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    c1, w1 = time.process_time(), time.perf_counter()
    check = check_k_anonymity(out, qi, k=k, reporting_length=L)
    print(json.dumps({
        "cpu_s": cpu, "wall_s": wall, "check_cpu_s": time.process_time() - c1,
        "check_wall_s": time.perf_counter() - w1, "rss_loaded_mb": rss_loaded,
        "peak_mb": _vm("VmHWM"), "ok": check["ok"], "violating_before": rep["violating_share_before"],
        "records_changed": rep["records_changed_share"], "rounds": rep["rounds"],
        "suppressed": rep["suppressed_cells"], "dropped": rep["dropped_records"],
    }))


def run_scale(args: argparse.Namespace) -> None:
    from ptsynth.synth.persist import domains_to_doc

    work = Path(tempfile.mkdtemp(prefix="ptsynth-bench-protect-scale-"))
    cfg, real, synth, rng = fit("demo", 1, args.epsilon, work)
    qi = list(real.indices(cfg.schema.quasi_identifiers))
    print("| rows | violating before | records changed | enforce wall s | enforce CPU s | "
          "CPU µs/row | check CPU s | table MB | RSS after loading MB | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.rows:
        path = work / f"synthetic_{n}.npy"
        parts, have = [], 0
        while have < n:
            m = min(1_000_000, n - have)
            parts.append(np.asarray(synth.sample(m, rng).codes, dtype=np.int16))
            have += m
        codes = np.concatenate(parts)
        del parts
        np.save(path, codes)
        Path(str(path) + ".json").write_text(json.dumps(
            {"domains": domains_to_doc(real.domains), "qi": qi}))
        table_mb = codes.nbytes / 2**20
        del codes
        proc = subprocess.Popen([sys.executable, __file__, "_child", str(path), str(args.k),
                                 str(args.reporting_length), "0" if args.copy else "1"],
                                stdout=subprocess.PIPE, text=True)
        _, status, _usage = os.wait4(proc.pid, 0)
        out = proc.stdout.read() if proc.stdout else ""
        path.unlink()
        if os.waitstatus_to_exitcode(status) != 0:
            print(f"| {n:,} | failed (exit {os.waitstatus_to_exitcode(status)}) |")
            continue
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {n:,} | {r['violating_before']:.2%} | {r['records_changed']:.2%} | "
              f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {1e6 * r['cpu_s'] / n:.2f} | "
              f"{r['check_cpu_s']:.1f} | {table_mb:.0f} | {r['rss_loaded_mb']:.0f} | "
              f"{r['peak_mb']:.0f} |",
              flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    u = sub.add_parser("utility")
    u.add_argument("--data", nargs="+", default=["demo", "ctdc_vp"], choices=sorted(CONFIGS))
    u.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    u.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    s = sub.add_parser("scale")
    s.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    s.add_argument("--copy", action="store_true",
                   help="enforce on a copy of the table (default: in place, as the pipeline)")
    for p in (u, s):
        p.add_argument("--epsilon", type=float, default=1.0)
        p.add_argument("--k", type=int, default=10)
        p.add_argument("--reporting-length", type=int, default=3)
    args = parser.parse_args()
    (run_utility if args.command == "utility" else run_scale)(args)


if __name__ == "__main__":
    main()
