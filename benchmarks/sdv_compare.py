"""DPSynthesizer (ε = 1) next to SDV's GaussianCopula (no privacy): SDV quality score and TVD.

What it measures, on the CTDC victim-perpetrator table (``../shared/data/ctdc_vp``) or the
built-in demo data: ``ptsynth.DPSynthesizer`` fitted with the public domains of a preset config
(``configs/ctdc_vp.toml``: the distinct values of that public release) at ε = 1, δ = 1e-6, and
SDV's ``GaussianCopulaSynthesizer`` fitted on the same records without any privacy. Both are
scored against the real records in the released shape (one row per person, public labels):

* SDV's quality score (``sdv.evaluation.evaluate_quality`` with the released ``metadata.json``
  form) and its two properties. SDMetrics leaves missing values out of its column scores,
  which hides most of a flag column ("1" or blank), so the score is also given with missing
  counted as a value of its own (``(missing)``);
* the mean total variation distance of 1-, 2- and 3-way marginals (``benchmarks/peers.py``'s
  ``mean_tvd``: missing is a value; at most 400 column sets per order, fixed seed).

This is a **private evaluation** (it compares with the real records): it prints aggregate
figures only, never a row. Times are wall and CPU seconds of fit + sample; DPSynthesizer figures are medians over seeds
(GaussianCopula is fitted once: SDV fits it deterministically and samples with a fixed seed).

    .venv/bin/python benchmarks/sdv_compare.py [--data ctdc_vp|demo] [--seeds 0 1 2]
        [--epsilon 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from datasets import DatasetUnavailable, shared_data_dir  # noqa: E402
from peers import mean_tvd  # noqa: E402

DELTA = 1e-6


def load(name: str, rows: int) -> tuple[pd.DataFrame, object]:
    """The records and the release config holding their public domains."""
    import ptsynth
    from ptsynth.demo import demo_config_path

    if name == "demo":
        return ptsynth.generate_demo(rows, 0), ptsynth.ReleaseConfig.load(demo_config_path())
    path = shared_data_dir() / "ctdc_vp" / "CTDC_VPsynthetic_condensed.csv"
    if not path.is_file():
        raise DatasetUnavailable(f"file not found: {path}")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    return frame, ptsynth.ReleaseConfig.load(HERE.parent / "configs" / "ctdc_vp.toml")


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: object) -> dict[str, float]:
    from sdv.evaluation import evaluate_quality

    out = {}
    for label, (r, s) in {
        "": (real, synthetic),
        " (missing as a value)": (_missing_as_value(real), _missing_as_value(synthetic)),
    }.items():
        report = evaluate_quality(r, s, metadata, verbose=False)
        out[f"sdv_quality{label}"] = float(report.get_score())
        for prop, score in report.get_properties().itertuples(index=False):
            out[f"{prop.lower().replace(' ', '_')}{label}"] = float(score)
    return out


def _missing_as_value(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), "(missing)")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(data: str, seeds: list[int], epsilon: float, rows: int) -> dict:
    from sdv.single_table import GaussianCopulaSynthesizer

    from ptsynth import DPSynthesizer

    frame, config = load(data, rows)
    results: dict[str, list[dict]] = {"DPSynthesizer": [], "GaussianCopula": []}
    real = metadata = None
    for seed in seeds:
        t, c = time.perf_counter(), _cpu()
        dp = DPSynthesizer(config, epsilon=epsilon, delta=DELTA, seed=seed).fit(frame)
        if real is None:
            real = dp.released_shape(frame)  # private: used for scoring only
            metadata = dp.get_metadata()
        synthetic = dp.sample(len(real))
        timing = {"seconds": time.perf_counter() - t, "cpu_seconds": _cpu() - c,
                  "spent_epsilon": dp.get_budget().total["epsilon"]}
        results["DPSynthesizer"].append({**timing, **score(real, synthetic, metadata)})

    # Once: SDV fits a Gaussian copula deterministically and samples with a fixed seed.
    t, c = time.perf_counter(), _cpu()
    copula = GaussianCopulaSynthesizer(metadata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # SDV's transformers want object columns, not categoricals with missing values
        copula.fit({metadata.to_dict()["tables"].popitem()[0]: real.astype(object)})
        copy = next(iter(copula.sample(len(real)).values()))
    timing = {"seconds": time.perf_counter() - t, "cpu_seconds": _cpu() - c}
    results["GaussianCopula"].append({**timing, **score(real, copy, metadata)})
    return {
        "data": data, "epsilon": epsilon, "delta": DELTA, "seeds": seeds,
        "persons": "private (not printed)",
        "median": {m: {k: float(np.median([r[k] for r in rs])) for k in rs[0]}
                   for m, rs in results.items()},
        "runs": results,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def score(real: pd.DataFrame, synthetic: pd.DataFrame, metadata: object) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas deprecations inside SDMetrics
        out = quality(real, synthetic, metadata)
    tvd = mean_tvd(real.astype(object), synthetic.astype(object))
    out.update({f"tvd_{k}way": v for k, v in tvd["tvd_by_order"].items()})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", choices=("ctdc_vp", "demo"), default="ctdc_vp")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--rows", type=int, default=20_000, help="demo data only")
    ap.add_argument("--json", type=Path, help="write the figures here (a private evaluation)")
    args = ap.parse_args(argv)
    try:
        out = run(args.data, args.seeds, args.epsilon, args.rows)
    except DatasetUnavailable as exc:
        print(f"skipped: {exc}")
        return 0
    keys = ["sdv_quality", "column_shapes", "column_pair_trends",
            "sdv_quality (missing as a value)", "tvd_1way", "tvd_2way", "tvd_3way",
            "seconds", "cpu_seconds"]
    print(f"{args.data}: epsilon={args.epsilon:g}, delta={DELTA:g}, medians over seeds "
          f"{args.seeds}; peak RSS {out['peak_rss_mb']:.0f} MB")
    print("| metric | " + " | ".join(out["median"]) + " |")
    print("|---|" + "---|" * len(out["median"]))
    for key in keys:
        cells = [f"{out['median'][m][key]:.4f}" if "second" not in key
                 else f"{out['median'][m][key]:.1f}" for m in out["median"]]
        print(f"| {key} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
