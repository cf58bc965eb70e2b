"""Scale: wall, CPU and peak memory of whole releases from 20k to 10M records, stage by stage.

Each release runs in its own process under ``/usr/bin/time -v`` (wall, user + system CPU, peak
RSS of exactly that process). Inside it, the release's progress events mark the stages, each
with wall and CPU seconds: ``read`` (validate + encode + merge), ``measure`` (1-way marginals and
the adaptive rounds: counting, scoring, intermediate fits; the aggregate release's noisy
counts), ``fit`` (final estimation), ``sample``, ``protect`` (k-anonymity), ``write``,
``evaluate`` (private report, then the manifest), ``showcase`` (the public page). pac-synth (``--pacsynth-python``: an interpreter with
``pac-synth`` and pandas) runs on the same CSV under the same cap, fit + sample.

The machine is shared: CPU seconds are the figure to compare, wall is reported beside them.
Usage::

    python benchmarks/scale.py --rows 20000 200000 1000000 --synthesizer pgm aggregate \\
        --backend local spark --data-dir /tmp/scale --cap 900 --out benchmarks/results/scale.json

Data are the built-in demo records (``ptsynth demo-data --rows N --seed 1``), generated once per
size into ``--data-dir`` and reused. Prints a markdown table; the JSON keeps every stage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

STAGES = ("read", "measure", "fit", "sample", "protect", "write", "evaluate", "showcase")
#: progress task → reported stage
_TASKS = {"read": "read", "measure": "measure", "estimate": "fit", "sample": "sample",
          "protect": "protect", "write": "write", "evaluate": "evaluate", "showcase": "showcase"}


def child(data: str, out: str, synthesizer: str, backend: str, evaluate: bool,
          marks_path: str) -> None:
    """Run one release in this process and write its stage marks (JSON)."""
    from ptsynth.demo import demo_config_path
    from ptsynth.release.pipeline import release

    marks: list[tuple[str, float, float]] = []

    def on_event(event) -> None:  # noqa: ANN001
        if not event.finished and not event.completed:
            marks.append((event.task, time.perf_counter(), time.process_time()))

    release(data, demo_config_path(), out, overwrite=True, seed=1, synthesizer=synthesizer,
            backend=backend, evaluate_release=evaluate, progress=on_event)
    marks.append(("end", time.perf_counter(), time.process_time()))
    stages: dict[str, list[float]] = {}
    for (task, w0, c0), (_, w1, c1) in zip(marks, marks[1:], strict=False):
        stage = _TASKS.get(task, task)
        acc = stages.setdefault(stage, [0.0, 0.0])
        acc[0] += w1 - w0
        acc[1] += c1 - c0
    Path(marks_path).write_text(json.dumps(stages))


def spark_counts_child(data: str) -> None:
    """The Spark backend's share of a pgm release on its own: read + validate + encode + merge
    + occurrence index, then every 1-, 2- and 3-way marginal in one job (what a fit asks for).
    Its CPU (driver, JVM and Python workers together, from ``time -v``) per row is the
    per-row cost of the Spark side; the driver's part of a release does not grow with rows."""
    import itertools

    from ptsynth.config import ReleaseConfig
    from ptsynth.demo import demo_config_path
    from ptsynth.ingest.spark import SparkSettings, read_spark, spark_session

    cfg = ReleaseConfig.load(demo_config_path())
    spark = spark_session(SparkSettings(master="local[*]"))
    t0 = time.perf_counter()
    records = read_spark(data, cfg.schema, spark)
    t1 = time.perf_counter()
    d = len(records.domains)
    sets = [s for k in (1, 2, 3) for s in itertools.combinations(range(d), k)]
    records.marginals(sets)
    t2 = time.perf_counter()
    print(json.dumps({"records": records.record_count(), "read_wall_s": round(t1 - t0, 1),
                      "count_wall_s": round(t2 - t1, 1), "column_sets": len(sets),
                      "tree_cpu_s": round(tree_cpu_seconds(), 1)}))


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and every live descendant (the JVM and its Python workers,
    which ``time -v`` misses: the JVM is never waited for), from ``/proc``."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = text[text.rindex(")") + 2:].split()
            stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    tree, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(p for p, (ppid, _) in stats.items() if ppid == pid and p not in tree)
    return sum(stats[p][1] for p in tree if p in stats) / tick


def pacsynth_child(data: str, rows: int) -> None:
    """pac-synth's DpAggregateSeededSynthesizer, defaults as in peers.py, ε = 1."""
    import pacsynth as ps
    import pandas as pd

    df = pd.read_csv(data, dtype=str, keep_default_na=False).drop(columns=["caseId"])
    ps.set_number_of_threads(1)
    dataset = ps.Dataset.from_data_frame(df, sensitive_zeros=list(df.columns))
    params = (ps.DpAggregateSeededParametersBuilder().reporting_length(3).epsilon(1.0)
              .delta(1e-6).build())
    synth = ps.DpAggregateSeededSynthesizer(params)
    synth.fit(dataset)
    synth.sample(rows)


def _time_v(cmd: list[str], cap: float) -> dict:
    """Run ``cmd`` under ``/usr/bin/time -v`` with a wall cap; wall, CPU, peak RSS."""
    start = time.perf_counter()
    # Its own process group: at the cap the release under `time` is killed with it, so it
    # cannot keep running into the next measurement.
    proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"ok": False, "status": f"over the {cap:g} s cap", "wall_s": cap}

    def grab(pattern: str) -> str | None:
        m = re.search(pattern, err)
        return m.group(1) if m else None

    wall = grab(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)")
    secs = 0.0
    if wall:
        for part in wall.split(":"):
            secs = secs * 60 + float(part)
    cpu = float(grab(r"User time \(seconds\): (\S+)") or 0) + float(
        grab(r"System time \(seconds\): (\S+)") or 0)
    rss = int(grab(r"Maximum resident set size \(kbytes\): (\d+)") or 0)
    ok = proc.returncode == 0
    last = [ln for ln in out.splitlines() + err.splitlines()
            if "Error" in ln or "error" in ln][-1:]
    return {"ok": ok, "status": "ok" if ok else f"exit {proc.returncode}: {''.join(last)[:200]}",
            "wall_s": round(secs or time.perf_counter() - start, 1), "cpu_s": round(cpu, 1),
            "peak_mib": round(rss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--synthesizer", nargs="+", default=["pgm"])
    parser.add_argument("--backend", nargs="+", default=["local"])
    parser.add_argument("--no-evaluate", action="store_true")
    parser.add_argument("--data-dir", type=Path, default=Path("benchmarks/results/scale-data"))
    parser.add_argument("--cap", type=float, default=900.0, help="wall-clock cap per run (s)")
    parser.add_argument("--pacsynth-python", default=None,
                        help="interpreter with pac-synth and pandas (skipped when absent)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--pacsynth-child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--spark-counts-child", nargs=1, help=argparse.SUPPRESS)
    parser.add_argument("--spark-counts", action="store_true",
                        help="also time the Spark side alone (read + all marginals) per size")
    args = parser.parse_args()
    if args.child:
        data, out, synth, backend, evaluate, marks = args.child
        child(data, out, synth, backend, evaluate == "1", marks)
        return
    if args.spark_counts_child:
        spark_counts_child(args.spark_counts_child[0])
        return
    if args.pacsynth_child:
        pacsynth_child(args.pacsynth_child[0], int(args.pacsynth_child[1]))
        return

    args.data_dir.mkdir(parents=True, exist_ok=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else []
    for n in args.rows:
        data = args.data_dir / f"demo_{n}.csv"
        if not data.exists():
            subprocess.run([sys.executable, "-m", "ptsynth.cli", "demo-data", "--rows", str(n),
                            "--seed", "1", "-o", str(data)], check=True, capture_output=True)
        runs = [(s, b) for s in args.synthesizer for b in args.backend]
        for synth, backend in runs:
            out = args.data_dir / f"bundle_{n}_{synth}_{backend}"
            marks = args.data_dir / f"marks_{n}_{synth}_{backend}.json"
            marks.unlink(missing_ok=True)
            cmd = [sys.executable, __file__, "--child", str(data), str(out), synth, backend,
                   "0" if args.no_evaluate else "1", str(marks)]
            res = _time_v(cmd, args.cap)
            res.update({"rows": n, "method": f"ptsynth-{synth}", "backend": backend,
                        "evaluate": not args.no_evaluate})
            if marks.exists():
                res["stages"] = {k: [round(v[0], 1), round(v[1], 1)]
                                 for k, v in json.loads(marks.read_text()).items()}
            shutil.rmtree(out, ignore_errors=True)
            _record(results, res, args.out)
        if args.spark_counts:
            res = _time_v([sys.executable, __file__, "--spark-counts-child", str(data)],
                          args.cap)
            res.update({"rows": n, "method": "spark read + all marginals", "backend": "spark",
                        "evaluate": False})
            _record(results, res, args.out)
        if args.pacsynth_python:
            cmd = [args.pacsynth_python, __file__, "--pacsynth-child", str(data), str(n)]
            env_ok = subprocess.run([args.pacsynth_python, "-c", "import pacsynth, pandas"],
                                    capture_output=True).returncode == 0
            res = (_time_v(cmd, args.cap) if env_ok
                   else {"ok": False, "status": "skipped: pac-synth not importable"})
            res.update({"rows": n, "method": "pac-synth", "backend": "local", "evaluate": False})
            _record(results, res, args.out)
    print(table(results))


def _record(results: list[dict], res: dict, out: Path) -> None:
    key = (res["rows"], res["method"], res["backend"], res["evaluate"])
    results[:] = [r for r in results
                  if (r["rows"], r["method"], r["backend"], r["evaluate"]) != key]
    results.append(res)
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps(res), file=sys.stderr, flush=True)


def table(results: list[dict]) -> str:
    head = ("| rows | method | backend | eval | wall s | CPU s | CPU µs/row | peak MiB | "
            + " | ".join(f"{s} (CPU s)" for s in STAGES) + " | status |")
    lines = [head, "|" + "---:|" * 3 + "---|" + "---:|" * (4 + len(STAGES)) + "---|"]
    for r in sorted(results, key=lambda r: (r["method"], r["backend"], r["rows"])):
        st = r.get("stages", {})
        per_row = (f"{1e6 * r['cpu_s'] / r['rows']:.1f}" if r.get("ok") and r.get("cpu_s")
                   else "-")
        lines.append(
            f"| {r['rows']:,} | {r['method']} | {r['backend']} | {'yes' if r['evaluate'] else 'no'}"
            f" | {r.get('wall_s', '-')} | {r.get('cpu_s', '-')} | {per_row}"
            f" | {r.get('peak_mib', '-')} | "
            + " | ".join(str(st[s][1]) if s in st else "-" for s in STAGES)
            + f" | {r['status']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    main()
