"""Wall time and peak memory of a whole `ptsynth release` on the built-in demo data.

Each release runs as its own process (the real CLI), so the peak RSS is that of the release
alone (``os.wait4``). Usage::

    python benchmarks/release.py --rows 20000 1000000 [--synthesizer aggregate pgm] [--no-evaluate]

Prints a markdown table: rows, synthesizer, evaluate, wall s, peak MB, synthetic rows, ε.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptsynth.demo import demo_config_path, generate_demo


def run_release(data: Path, out: Path, synthesizer: str, evaluate: bool, epsilon: float) -> dict:
    cmd = [
        sys.executable, "-m", "ptsynth.cli", "release", str(data),
        "--config", str(demo_config_path()), "--out", str(out),
        "--synthesizer", synthesizer, "--epsilon", str(epsilon),
    ]
    if not evaluate:
        cmd.append("--no-evaluate")
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    ok = os.waitstatus_to_exitcode(status) == 0
    result = {"wall_s": round(wall, 1), "peak_mb": round(usage.ru_maxrss / 1024), "ok": ok}
    if ok:
        manifest = json.loads((out / "manifest.json").read_text())
        budget = json.loads((out / "budget.json").read_text())
        with open(out / "synthetic.csv") as fh:
            result["synthetic_rows"] = sum(1 for _ in fh) - 1
        result["epsilon"] = budget["total"]["epsilon"]
        result["release_id"] = manifest["release_id"]
    else:
        result["error"] = stderr.strip().splitlines()[-1:] if stderr else ""
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000])
    parser.add_argument("--synthesizer", nargs="+", default=["aggregate"])
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--no-evaluate", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ptsynth-bench-release-"))
    rows_out = []
    try:
        for n in args.rows:
            data = work / f"demo_{n}.csv"
            generate_demo(n, 1, data)
            for synth in args.synthesizer:
                out = work / f"bundle_{n}_{synth}"
                res = run_release(data, out, synth, not args.no_evaluate, args.epsilon)
                rows_out.append({"rows": n, "synthesizer": synth, "evaluate": not args.no_evaluate, **res})
                shutil.rmtree(out, ignore_errors=True)
                print(json.dumps(rows_out[-1]), file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("| rows | synthesizer | evaluate | wall s | peak MB | synthetic rows | ε | status |")
    print("|---:|---|---|---:|---:|---:|---:|---|")
    for r in rows_out:
        print(f"| {r['rows']:,} | {r['synthesizer']} | {r['evaluate']} | {r['wall_s']} | {r['peak_mb']} "
              f"| {r.get('synthetic_rows', '-')} | {r.get('epsilon', float('nan')):.4g} | {'ok' if r['ok'] else r.get('error')} |")


if __name__ == "__main__":
    main()
