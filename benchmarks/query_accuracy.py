"""Which answer source is most accurate for which count query: the measurement behind the rule.

For each dataset and synthesizer a seeded release is made (no private evaluation, no holdout),
random count queries of 1-4 columns are drawn (half of them with an OR of two values in one
column), and every source that can answer a query is compared with the count on the real
records: the released DP aggregates (only where they were measured with noise), the published
graphical model's expected count, and the synthetic records. It prints, per (data,
synthesizer, length, OR): the number of queries, each source's mean absolute error and the
empirical coverage of its 95% interval, and the source :func:`ptsynth.query.count` picks.

Queries are drawn from real records (every value of the selection is one a record holds), so
most have a non-zero count, as the questions people ask do. This compares with the real
records, so it is a *private evaluation*: it prints aggregate error figures only, never a
count, a value or a row. Usage::

    python benchmarks/query_accuracy.py --data demo ctdc_vp --synthesizer pgm aggregate \\
        --epsilon 1 --queries 400 [--calibrate]

``--calibrate`` also prints the constants of the interval formulas that would give 95%
coverage on each dataset (``MODEL_EXTRAPOLATION``, ``SYNTHETIC_DISPERSION`` in
:mod:`ptsynth.query`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ptsynth  # noqa: E402
from datasets import shared_data_dir  # noqa: E402
from ptsynth.ingest import read_records  # noqa: E402
from ptsynth.query import Z95, QueryEngine, Selection, SyntheticCounter  # noqa: E402
from ptsynth.release.bundle import Bundle  # noqa: E402

DATA = {
    "ctdc_vp": ("ctdc_vp/CTDC_VPsynthetic_condensed.csv", "configs/ctdc_vp.toml"),
    "nist": ("nist/national2019.csv", "configs/nist_acs2019.toml"),
    "adult": ("adult/adult.csv", "configs/adult.toml"),
}


def data_and_config(name: str, work: Path) -> tuple[Path, Path]:
    if name == "demo":
        from ptsynth.demo import demo_config_path, generate_demo

        path = work / "demo.csv"
        if not path.exists():
            generate_demo(20_000, 3, path)
        return path, demo_config_path()
    rel, cfg = DATA[name]
    path = shared_data_dir() / rel
    if not path.is_file():
        raise FileNotFoundError(f"{name}: not found at {path}")
    return path, REPO / cfg


def bundle_for(name: str, synth: str, epsilon: float, work: Path) -> tuple[Bundle, Path, float]:
    data, cfg = data_and_config(name, work)
    out = work / f"{name}-{synth}-eps{epsilon:g}"
    seconds = float("nan")
    if not (out / "manifest.json").exists():
        t0 = time.perf_counter()
        ptsynth.release(data, cfg, out, seed=1, overwrite=True, evaluate_release=False,
                        synthesizer=synth, epsilon=epsilon)
        seconds = time.perf_counter() - t0
    return Bundle.load(out), data, seconds


def draw_queries(engine: QueryEngine, codes: np.ndarray, n: int, seed: int) -> list[Selection]:
    """Selections whose values a random real record holds (an OR adds one other value)."""
    cols = engine.columns
    names = list(cols.specs)
    rng = np.random.default_rng(seed)
    out: list[Selection] = []
    tries = 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        ell = int(rng.integers(1, min(4, len(names)) + 1))
        use_or = bool(rng.integers(0, 2))
        chosen = [str(c) for c in rng.choice(names, size=ell, replace=False)]
        i = int(rng.integers(codes.shape[0]))
        values = []
        for c in chosen:
            spec = cols.specs[c]
            if spec.kind == "set":
                held = [v for v in spec.values if codes[i, cols.enc_index[spec.member_name(v)]] == 0]
            else:
                j = cols.enc_index[c]
                code = int(codes[i, j])
                dom = cols.domains[j]
                held = [] if code == dom.missing_code else [dom.labels[code]]
            if not held:
                break
            values.append([str(rng.choice(held))])
        if len(values) != ell:
            continue
        if use_or:
            t = int(rng.integers(ell))
            others = [v for v in cols.labels(chosen[t]) if v not in values[t]]
            if not others:
                continue
            values[t].append(str(rng.choice(others)))
        out.append(cols.selection(cols.term(c, v) for c, v in zip(chosen, values, strict=True)))
    return out


def evaluate(bundle: Bundle, data: Path, n_queries: int, seed: int) -> list[dict]:
    engine = QueryEngine(bundle)
    real = read_records(data, bundle.schema)
    truth = SyntheticCounter(real.codes, real.domains, real.n_records)
    rows = []
    for sel in draw_queries(engine, real.codes, n_queries, seed):
        rec = {"len": sel.length, "or": sel.has_or, "truth": truth.raw(sel),
               "rule": engine.estimate(sel).source}
        for source in ("dp_aggregate", "model", "synthetic"):
            try:
                est = engine.estimate(sel, source=source)
            except ValueError:
                continue
            if est.suppressed:
                rec[source] = {"suppressed": True}
                continue
            rec[source] = {"value": est.value, "low": est.low, "high": est.high,
                           "basis": est.basis, "floor": est.floor}
        rows.append(rec)
    return rows


def summarise(rows: list[dict], label: str) -> list[str]:
    lines = []
    for ell in (1, 2, 3, 4):
        for use_or in (False, True):
            rs = [r for r in rows if r["len"] == ell and r["or"] == use_or]
            if not rs:
                continue
            cells = []
            for source in ("dp_aggregate", "model", "synthetic"):
                got = [(r[source], r["truth"]) for r in rs if source in r and "value" in r[source]]
                if not got:
                    cells += ["", ""]
                    continue
                err = [abs(a["value"] - t) for a, t in got]
                cover = [a["low"] <= t <= a["high"] for a, t in got]
                cells += [f"{np.mean(err):.1f} ({len(got)})", f"{np.mean(cover):.2f}"]
            # head to head: the most accurate source on the queries every source answers
            answered = [s_ for s_ in ("dp_aggregate", "model", "synthetic")
                        if any(s_ in r and "value" in r[s_] for r in rs)]
            shared = [r for r in rs if all(s_ in r and "value" in r[s_] for s_ in answered)]
            maes = {s_: float(np.mean([abs(r[s_]["value"] - r["truth"]) for r in shared]))
                    for s_ in answered} if shared else {}
            best = (min(maes, key=maes.get) + " (" + " vs ".join(f"{maes[s_]:.0f}" for s_ in maes)
                    + f", n={len(shared)})") if maes else "-"
            picks = {}
            for r in rs:
                picks[r["rule"]] = picks.get(r["rule"], 0) + 1
            rule = ", ".join(f"{k} {v}" for k, v in sorted(picks.items(), key=lambda x: -x[1]))
            lines.append(f"| {label} | {ell} | {'yes' if use_or else 'no'} | {len(rs)} | "
                         + " | ".join(cells) + f" | {best} | {rule} |")
    return lines


def calibration(rows: list[dict]) -> dict[str, float]:
    """Constants that would give each interval 95% coverage on these queries."""
    need_model, need_syn, need_syn_all = [], [], []
    for r in rows:
        m = r.get("model")
        if m and "value" in m and m["basis"] == "extrapolated":
            e = abs(m["value"] - r["truth"]) / Z95
            need_model.append(math.sqrt(max(e * e - m["floor"] ** 2, 0.0) / max(m["value"], 1.0)))
        s = r.get("synthetic")
        if s and "value" in s:
            u = abs(s["value"] - r["truth"]) / Z95 / math.sqrt(s["value"] + 1.0)
            need_syn_all.append(u)
            if r["rule"] == "synthetic":
                need_syn.append(u)
    out = {}
    if need_model:
        out["MODEL_EXTRAPOLATION (p95, extrapolated model answers)"] = float(
            np.percentile(need_model, 95))
    if need_syn:
        out["dispersion (p95, answers the rule takes from synthetic rows)"] = float(
            np.percentile(need_syn, 95))
    if need_syn_all:
        out["SYNTHETIC_DISPERSION (p95, every synthetic answer)"] = float(
            np.percentile(need_syn_all, 95))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["demo", "ctdc_vp"])
    parser.add_argument("--synthesizer", nargs="+", default=["pgm", "aggregate"])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None,
                        help="folder for the releases (reused if present; default: a temp dir)")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write the per-query errors here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ptsynth-query-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    header = ("| data / synthesizer | columns | OR | queries | dp_aggregate MAE (n) | cover | "
              "model MAE (n) | cover | synthetic MAE (n) | cover | best on shared queries (MAE) | rule picks |")
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    report: dict = {}
    for name in args.data:
        for synth in args.synthesizer:
            try:
                bundle, data, seconds = bundle_for(name, synth, args.epsilon, work)
            except FileNotFoundError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                continue
            t0 = time.process_time()
            rows = evaluate(bundle, data, args.queries, args.seed)
            cpu = time.process_time() - t0
            print(f"{name}/{synth}: {len(rows)} queries, {cpu:.1f} s CPU"
                  + (f", release {seconds:.0f} s" if math.isfinite(seconds) else ""),
                  file=sys.stderr)
            lines += summarise(rows, f"{name} / {synth}")
            report[f"{name}/{synth}"] = rows
            if args.calibrate:
                for key, value in calibration(rows).items():
                    print(f"  calibration {name}/{synth}: {key} = {value:.2f}", file=sys.stderr)
    print(f"epsilon = {args.epsilon:g}, seeded releases, {args.queries} queries per bundle")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
