"""The private evaluation of a very large release, on fixed-size random samples.

Why: the utility and risk figures compare the synthetic records with the real ones (marginals,
nearest neighbours, attacks, a classifier): their cost grows with the records, while their
precision is bounded by the number of column sets and attacks they evaluate, not by the
millions of records. Above :data:`EVAL_MAX_RECORDS` records, the real records, the holdout and
the synthetic records are each evaluated on a uniform random sample of that many, and the
report says so, with the sampling error of its main figure:

* ``tvd_sampling_error[k]``: the expected total variation distance between a sample and the
  table it was drawn from, for the evaluated k-way column sets (mean over at most
  :data:`ERROR_SETS` of them), ``½ Σ_cells sqrt(2 p (1 - p) / (π s)) · sqrt(1 - s / N)`` for
  the real and the synthetic sample combined in quadrature: a reported mean TVD is the
  population's within about this much;
* ``proportion_standard_error``: ``0.5 / sqrt(s)``, the largest standard error of a share
  estimated on the sample (exact-match rates, attack success rates).

Real records are chosen by a keyed PRF of their content (:mod:`ptsynth.counting.prf`), so the
local and the Spark backends evaluate the same sample. Everything here is private (it reads the
real records); it never affects what is released.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ptsynth.counting.blocks import BlockCounter
from ptsynth.evaluate.stats import column_sets
from ptsynth.evaluate.utility import TVD_ORDERS
from ptsynth.table import EncodedTable

#: Records of each kind (real, holdout, synthetic) above which the evaluation samples.
EVAL_MAX_RECORDS = 100_000
#: Column sets per order used to estimate the sampling error of the mean TVD.
ERROR_SETS = 50


def evaluation_key(seed: int) -> tuple[int, int]:
    """The (public) PRF key of the evaluation's samples: a function of its seed only."""
    return (0x5EED_0000_0000_0000 | (int(seed) & 0xFFFF_FFFF), 0x0E7A_1000_0000_0000)


def expected_tvd(table: EncodedTable, population: int, sets: list[tuple[int, ...]]) -> float:
    """Mean over ``sets`` of E[TVD(sample, population)] for a uniform sample ``table`` of
    ``population`` records (normal approximation, finite-population corrected)."""
    s = table.n_records
    if s == 0 or s >= population or not sets:
        return 0.0
    counter = BlockCounter([table.codes[:, j] for j in range(table.n_columns)], table.sizes)
    fpc = 1.0 - s / population
    values = []
    for counts in counter.marginals(sets):
        p = counts.ravel() / s
        values.append(0.5 * float(np.sum(np.sqrt(2.0 * p * (1.0 - p) / (math.pi * s) * fpc))))
    return float(np.mean(values))


def sampling_section(
    real: EncodedTable, real_population: int, synthetic: EncodedTable,
    synthetic_population: int, holdout: EncodedTable | None, holdout_population: int | None,
    *, seed: int, max_records: int = EVAL_MAX_RECORDS,
) -> dict[str, Any]:
    """What was sampled, and the sampling error of the figures (see the module docstring)."""
    sampled = (real.n_records < real_population
               or synthetic.n_records < synthetic_population
               or (holdout is not None and holdout_population is not None
                   and holdout.n_records < holdout_population))
    section: dict[str, Any] = {
        "visibility": "private",
        "sampled": bool(sampled),
        "max_records": int(max_records),
        "records": {
            "real": {"evaluated": real.n_records, "population": int(real_population)},
            "synthetic": {"evaluated": synthetic.n_records,
                          "population": int(synthetic_population)},
        },
    }
    if holdout is not None and holdout_population is not None:
        section["records"]["holdout"] = {"evaluated": holdout.n_records,
                                         "population": int(holdout_population)}
    if not sampled:
        section["note"] = "every record was evaluated"
        return section
    errors = {}
    for order in TVD_ORDERS:
        if order > real.n_columns:
            continue
        sets, _ = column_sets(real.n_columns, order, ERROR_SETS, seed)
        e_real = expected_tvd(real, real_population, sets)
        e_syn = expected_tvd(synthetic, synthetic_population, sets)
        errors[str(order)] = float(math.hypot(e_real, e_syn))
    smallest = min(real.n_records, synthetic.n_records)
    section["tvd_sampling_error"] = errors
    section["proportion_standard_error"] = 0.5 / math.sqrt(max(smallest, 1))
    section["note"] = (
        f"records were evaluated on uniform random samples of at most {max_records} of each "
        "kind; a mean TVD differs from the full tables' by about tvd_sampling_error (expected "
        "TVD from sampling alone), a share by at most proportion_standard_error (one standard "
        "error)"
    )
    return section
