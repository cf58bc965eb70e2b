"""Benchmark: do declared structural zeros (known zeros) make the synthetic data more accurate?

Data (``--data``): ``demo``, ptsynth's generated records (CTDC-like, no privacy concern), whose
codebook implies public structure: ``ageBroad → majorityStatus`` (bands 0--8 and 9--17 are
minors), the registration quarter lies in the year of registration (``registrationDate →
yearOfRegistration``), and the exact age's bins exclude the age bands and majority status they do
not overlap. ``nist``: NIST's national2019 excerpt with ``configs/nist_acs2019.toml``, whose data
dictionary says marital status, income decile and industry are "N/A" (missing) under 15 / 16
years: a person in the age bin [0, 10) holds none of their values. Every record satisfies the
structure (ingest checks). Variants, same data, same seeds:

* ``pgm``: no structure declared;
* ``pgm+zeros``: the structure declared: known zeros in the model (columns in a zero not
  compressed);
* ``pgm+cliques``: the same cliques and no compression for those columns, but no zero fixed:
  isolates the effect of the zeros themselves from the model-structure change;
* ``aggregate`` / ``aggregate+zeros``: the SDS-style synthesizer without / with the structure.

Reported per variant (mean over seeds): mean TVD of 1-, 2- and 3-way marginals (400 sets per
order at most, fixed seed), the mean TVD on the column sets the zeros span (where the effect is),
the share of synthetic records holding an impossible combination, and wall / CPU seconds of fit +
sample (pgm: the model's own draws, without the sampler's guard that would replace a record in
a zero). Prints a Markdown table; nothing here prints a record.

    python benchmarks/known_zeros.py [--data demo|nist] [--rows 20000] [--seeds 0 1] [--epsilon 1]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Sequence

import numpy as np

from ptsynth.config import ReleaseConfig
from ptsynth.counting import marginal_counts
from ptsynth.demo import AGE_BANDS, AGE_BINS, demo_config_path, generate_demo
from ptsynth.ingest import read_records
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.schema import bin_labels
from ptsynth.structure import violations, zero_cliques
from ptsynth.synth.aggregate_seeded import AggregateSeededSynthesizer
from ptsynth.synth.pgm import PGMSynthesizer
from ptsynth.table import EncodedTable

#: Age band → (lowest, highest) age, as the demo generator draws them.
_BAND_RANGE = dict(zip(AGE_BANDS, [(0, 8), (9, 17), (18, 20), (21, 23), (24, 26), (27, 29),
                                   (30, 38), (39, 47), (48, 75)], strict=True))


def demo_structure() -> dict:
    """The public structure of the demo codebook, as ``[[hierarchies]]`` / ``[[constraints]]``."""
    years = [str(y) for y in range(2002, 2024)]
    bins = bin_labels(AGE_BINS)
    constraints = []
    for label, lo, hi in zip(bins, AGE_BINS[:-1], AGE_BINS[1:], strict=True):
        far = [b for b, (a, z) in _BAND_RANGE.items() if z < lo or a >= hi]
        if far:
            constraints.append({"name": f"age {label} vs band", "forbid": {"age": [label],
                                                                           "ageBroad": far}})
    constraints.append({"name": "young ages are minors",
                        "forbid": {"age": [b for b, hi in zip(bins, AGE_BINS[1:], strict=True) if hi <= 18],
                                   "majorityStatus": ["Adult"]}})
    constraints.append({"name": "older ages are adults",
                        "forbid": {"age": [b for b, lo in zip(bins, AGE_BINS[:-1], strict=True) if lo >= 18],
                                   "majorityStatus": ["Minor"]}})
    return {
        "hierarchies": [
            {"column": "ageBroad", "parent": "majorityStatus",
             "map": {b: ("Minor" if b in ("0--8", "9--17") else "Adult") for b in AGE_BANDS}},
            {"column": "registrationDate", "parent": "yearOfRegistration",
             "groups": {y: [f"{y}-Q{q}" for q in range(1, 5)] for y in years}},
        ],
        "constraints": constraints,
    }


def nist_structure(cfg: ReleaseConfig) -> dict:
    """From NIST's data dictionary: MSP, PINCP_DECILE and INDP_CAT are N/A under 15 / 16."""
    return {"constraints": [
        {"name": f"no {col} under 10", "forbid": {"AGEP": ["[0, 10)"],
                                                 col: list(cfg.schema.column(col).values)}}
        for col in ("MSP", "PINCP_DECILE", "INDP_CAT")
    ]}


def structured_config(name: str = "demo") -> ReleaseConfig:
    from pathlib import Path

    path = (demo_config_path() if name == "demo"
            else Path(__file__).resolve().parents[1] / "configs" / "nist_acs2019.toml")
    cfg = ReleaseConfig.load(path)
    data = cfg.to_dict()
    data.update(demo_structure() if name == "demo" else nist_structure(cfg))
    return ReleaseConfig.from_dict(data)


def records(name: str, rows: int, cfg: ReleaseConfig) -> EncodedTable:
    if name == "demo":
        return read_records(generate_demo(rows, 0), cfg.schema)
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from datasets import shared_data_dir

    return read_records(shared_data_dir() / "nist" / "national2019.csv", cfg.schema)


def mean_tvd(real: EncodedTable, synth: EncodedTable, sets: Sequence[Sequence[int]]) -> float:
    out = []
    for s in sets:
        a = marginal_counts(real, tuple(s)).ravel() / real.n_records
        b = marginal_counts(synth, tuple(s)).ravel() / synth.n_records
        out.append(0.5 * np.abs(a - b).sum())
    return float(np.mean(out))


def column_sets(d: int, k: int, cap: int = 400) -> list[tuple[int, ...]]:
    sets = list(itertools.combinations(range(d), k))
    if len(sets) > cap:
        pick = np.random.default_rng(k).choice(len(sets), cap, replace=False)
        sets = [sets[i] for i in sorted(pick)]
    return sets


class _CliquesOnly(PGMSynthesizer):
    """The zero cliques and uncompressed columns of ``pgm+zeros``, but no cell fixed at zero."""

    def _known_zeros(self, domains):
        tables = super()._known_zeros(domains)
        self.zero_tables_ = {c: np.zeros_like(t) for c, t in tables.items()}
        return self.zero_tables_


def run(variant: str, table: EncodedTable, zeros, seed: int, epsilon: float):
    acc = Accountant(epsilon, 1e-6, rng=seeded_random(seed))
    t0, c0 = time.perf_counter(), time.process_time()
    if variant.startswith("pgm"):
        cls = _CliquesOnly if variant == "pgm+cliques" else PGMSynthesizer
        synth = cls(structural_zeros=zeros if variant != "pgm" else ())
    else:
        synth = AggregateSeededSynthesizer(
            reporting_length=3, k=10, structural_zeros=zeros if variant.endswith("zeros") else ())
    synth.fit(table, acc)
    rng = seeded_random(seed + 100)
    if variant.startswith("pgm"):  # the model's own draws, without the sampler's guard
        sample = EncodedTable(synth._draw(table.n_records, rng), table.domains)
    else:
        sample = synth.sample(table.n_records, rng)
    return sample, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", choices=["demo", "nist"], default="demo")
    ap.add_argument("--rows", type=int, default=20_000, help="demo rows")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--epsilon", type=float, default=1.0)
    ap.add_argument("--variants", nargs="+",
                    default=["pgm", "pgm+zeros", "pgm+cliques", "aggregate", "aggregate+zeros"])
    args = ap.parse_args()
    cfg = structured_config(args.data)
    table = records(args.data, args.rows, cfg)  # ingest refuses any violation
    zeros = cfg.schema.structural_zeros
    names = [d.name for d in table.domains]
    zero_sets = zero_cliques(zeros, names)
    orders = {k: column_sets(table.n_columns, k) for k in (1, 2, 3)}
    print(f"{args.data}: {table.n_records} records x {table.n_columns} encoded columns; "
          f"{len(zeros)} structural-zero boxes over {len(zero_sets)} column sets "
          f"({', '.join(' x '.join(names[j] for j in c) for c in zero_sets)}); epsilon {args.epsilon}")
    rows = []
    for variant in args.variants:
        res = []
        for seed in args.seeds:
            sample, wall, cpu = run(variant, table, zeros, seed, args.epsilon)
            res.append({
                **{f"tvd{k}": mean_tvd(table, sample, sets) for k, sets in orders.items()},
                "tvd_zero_sets": mean_tvd(table, sample, zero_sets),
                "violating": float(violations(zeros, sample.codes, names).mean()),
                "wall": wall, "cpu": cpu,
            })
            print(variant, seed, {k: round(v, 4) if isinstance(v, float) else v
                                  for k, v in res[-1].items()}, flush=True)
        rows.append((variant, {k: float(np.mean([r[k] for r in res])) for k in res[0]}
                     | {"sd3": float(np.std([r["tvd3"] for r in res]))}))
    print(f"\nmean over seeds {args.seeds}; pgm records are the model's own draws (no guard)")
    print("| variant | 1-way | 2-way | 3-way (sd) | zero column sets | records in a zero | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for variant, m in rows:
        print(f"| {variant} | {m['tvd1']:.4f} | {m['tvd2']:.4f} | {m['tvd3']:.4f} ({m['sd3']:.4f}) | "
              f"{m['tvd_zero_sets']:.4f} | {100 * m['violating']:.2f}% | {m['wall']:.0f} | {m['cpu']:.0f} |")


if __name__ == "__main__":
    main()
