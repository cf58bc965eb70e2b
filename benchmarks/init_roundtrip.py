"""`ptsynth init` as a new user would run it, on every public table: init, confirm, release.

For each table: ``ptsynth init`` proposes a config (kinds, domains, QIs) from the file, the
"steward" confirms it unchanged (``domains_confirmed = true``: acceptable here only because these
are public releases), a seeded release runs with the proposed config (default synthesizer), and
the synthetic file is compared with the input:

* **vocabulary**: per column, every synthetic value must be one the input uses (categorical and
  ordinal: the input's cells; set columns: the input's members; numeric / date columns: the
  config's public bin / period labels). A flag stays ``1``/blank, a code stays a code.
* **utility**: mean total variation distance of 1-, 2- and 3-way marginals between the input
  (decoded through the same schema, so numbers are in the same bins) and the synthetic file,
  ``benchmarks/peers.py:mean_tvd`` (at most 400 column sets per order, seed 0).

Usage::

    python benchmarks/init_roundtrip.py [--tables ctdc_vp nist_ma2019 ...] [--epsilon 1] [--seed 0]

Prints one Markdown row per table (rows x columns released, kinds, 3-way TVD, wall and CPU
seconds). Nothing here prints a row or a value of the data.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import shared_data_dir  # noqa: E402

#: table key → path under the shared data folder
TABLES: dict[str, str] = {
    "ctdc_vp": "ctdc_vp/CTDC_VPsynthetic_condensed.csv",
    "nist_national2019": "nist/national2019.csv",
    "nist_ma2019": "nist/ma2019.csv",
    "adult": "adult/adult.csv",
    **{f"sds_{p.stem.removeprefix('test_')}": f"sds_format_cases/{p.name}" for p in (
        Path("test_block.csv"), Path("test_data_block.csv"), Path("test_data_block_multi_value.csv"),
        Path("test_duplicated_id_missing_id.csv"), Path("test_duplicated_id_valid.csv"),
        Path("test_multi_value_column_joiner.csv"), Path("test_noise_aggregator.csv"))},
}


@dataclass
class RoundTrip:
    table: str
    rows: int = 0
    released_columns: int = 0
    left_out: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    qi: int = 0
    synthetic_rows: int = 0
    validated: bool = False
    vocabulary_problems: list[str] = field(default_factory=list)
    tvd: dict | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None


def confirm(config: Path) -> None:
    """The steward's confirmation, done blindly (public data only)."""
    text = config.read_text(encoding="utf-8")
    config.write_text(re.sub(r"(?m)^domains_confirmed = false$", "domains_confirmed = true", text),
                      encoding="utf-8")


def _cells(series: pd.Series) -> set[str]:
    return set(series.fillna("").astype(str).str.strip()) - {""}


def vocabulary_problems(schema, raw: pd.DataFrame, synthetic: pd.DataFrame) -> list[str]:
    """Names of columns whose synthetic values fall outside what the input (or, for numeric and
    date columns, the public labels) uses; a column name only, never a value."""
    bad = []
    for col in schema.data_columns:
        if col.name not in synthetic.columns:
            bad.append(col.name)
            continue
        out = _cells(synthetic[col.name])
        if col.kind == "set":
            members = {m.strip() for v in _cells(raw[col.name]) for m in v.split(col.delimiter)}
            members = {col.mapping.get(m, m) for m in members} - {""} - set(col.missing_values)
            got = {m for v in out for m in v.split(col.delimiter)}
            ok = got <= members
        elif col.kind in ("numeric", "date"):
            ok = out <= set(col.labels)
        else:
            seen = {col.mapping.get(v, v) for v in _cells(raw[col.name])}
            ok = out <= seen
        if not ok:
            bad.append(col.name)
    return bad


def round_trip(table: str, path: Path, work: Path, *, epsilon: float, seed: int,
               max_sets: int = 400) -> RoundTrip:
    import ptsynth
    from peers import mean_tvd
    from ptsynth.config import ReleaseConfig
    from ptsynth.ingest import read_records
    from ptsynth.ingest.propose import init_config

    res = RoundTrip(table)
    cfg_path = work / f"{table}.toml"
    start, cpu = time.perf_counter(), time.process_time()
    try:
        starter = init_config(path, cfg_path)
        res.left_out = sum(r.kind == "left out" for r in starter.review)
        confirm(cfg_path)
        cfg = ReleaseConfig.load(cfg_path)
        res.released_columns = len(cfg.schema.data_columns)
        res.qi = sum(c.quasi_identifier for c in cfg.schema.data_columns)
        for c in cfg.schema.columns:
            res.kinds[c.kind] = res.kinds.get(c.kind, 0) + 1
        decoded = cfg.schema.decode(read_records(path, cfg.schema))  # the proposal accepts its data
        res.validated = True
        rel = ptsynth.release(path, cfg, work / f"{table}-bundle", epsilon=epsilon, seed=seed,
                              evaluate_release=False)
        synthetic = pd.read_csv(work / f"{table}-bundle" / "synthetic.csv", dtype=str,
                                keep_default_na=False)
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        raw.columns = [c.strip() for c in raw.columns]
        res.rows, res.synthetic_rows = len(raw), len(rel.synthetic)
        res.vocabulary_problems = vocabulary_problems(cfg.schema, raw, synthetic)
        if len(synthetic) and len(decoded):
            res.tvd = mean_tvd(decoded.astype(str), synthetic[list(decoded.columns)].astype(str),
                               max_sets=max_sets, seed=0)
    except Exception as exc:  # noqa: BLE001 - a benchmark row says what failed, not a traceback
        res.error = f"{type(exc).__name__}: {getattr(exc, 'rule', None) or str(exc)[:200]}"
    res.wall_s = round(time.perf_counter() - start, 1)
    res.cpu_s = round(time.process_time() - cpu, 1)
    return res


def markdown(results: list[RoundTrip]) -> str:
    head = ("| table | rows | released cols (left out) | kinds | QI | synthetic rows | vocabulary "
            "| TVD 1/2/3-way | wall s | CPU s |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in results:
        if r.error:
            state = "validated; " if r.validated else ""
            lines.append(f"| {r.table} | {r.rows} | {r.released_columns} ({r.left_out}) | - | {r.qi} | - "
                         f"| {state}not released: {r.error} | - | {r.wall_s} | {r.cpu_s} |")
            continue
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.kinds.items()))
        t = (r.tvd or {}).get("tvd_by_order", {})
        tvd = "/".join(f"{t[k]:.3f}" if k in t else "-" for k in ("1", "2", "3"))
        vocab = "ok" if not r.vocabulary_problems else "DIFFERS: " + ", ".join(r.vocabulary_problems)
        lines.append(f"| {r.table} | {r.rows} | {r.released_columns} ({r.left_out}) | {kinds} | {r.qi} "
                     f"| {r.synthetic_rows} | {vocab} | {tvd} | {r.wall_s} | {r.cpu_s} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="+", default=list(TABLES))
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    root = shared_data_dir()
    results = []
    with tempfile.TemporaryDirectory(prefix="ptsynth-init-roundtrip-") as tmp:
        for name in args.tables:
            path = root / TABLES[name]
            if not path.is_file():
                print(f"skip {name}: {path} not found", file=sys.stderr)
                continue
            r = round_trip(name, path, Path(tmp), epsilon=args.epsilon, seed=args.seed)
            print(markdown([r]).splitlines()[-1], file=sys.stderr)
            results.append(r)
    print(f"epsilon {args.epsilon}, seed {args.seed}\n")
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))


if __name__ == "__main__":
    main()
