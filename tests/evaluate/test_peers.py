"""Same definition, same number: cross-checks against SDMetrics and Anonymeter.

Run where the peers are installed, e.g.
``PYTHONPATH=src /work/peers-venv/bin/python -m pytest tests/test_evaluate_peers.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ptsynth.evaluate.attacks import inference, linkability
from ptsynth.evaluate.stats import residual_risk, wilson
from ptsynth.evaluate.utility import combination_metrics
from ptsynth.table import ColumnDomain, EncodedTable

CAT = ColumnDomain("cat", ("a", "b", "c", "d"), allows_missing=False)
CAT2 = ColumnDomain("cat2", ("x", "y", "z"), allows_missing=False)
ORD = ColumnDomain("ord", tuple(str(i) for i in range(8)), kind="ordinal", allows_missing=False)
ORD2 = ColumnDomain("ord2", tuple(str(i) for i in range(6)), kind="ordinal", allows_missing=False)
DOMS = (CAT, CAT2, ORD, ORD2)


def _pair(seed: int = 0, n: int = 500) -> tuple[EncodedTable, EncodedTable]:
    rng = np.random.default_rng(seed)

    def make(shift: float) -> np.ndarray:
        o = np.clip(rng.normal(3.5 + shift, 2, n).round(), 0, 7).astype(int)
        o2 = np.clip((o * 0.6 + rng.normal(0, 1, n)).round(), 0, 5).astype(int)
        c = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
        c2 = (c + rng.integers(0, 2, n)) % 3
        return np.stack([c, c2, o, o2], 1)

    return EncodedTable(make(0), DOMS), EncodedTable(make(0.7), DOMS)


def _frame(t: EncodedTable, *, labels: bool) -> pd.DataFrame:
    df = pd.DataFrame(t.codes, columns=t.column_names)
    if labels:
        for d in t.domains:
            if d.kind == "categorical":
                df[d.name] = np.asarray(d.labels, dtype=object)[df[d.name]]
    return df


def test_sdmetrics_column_shapes_and_pair_trends() -> None:
    sdm_single = pytest.importorskip("sdmetrics.single_column")
    sdm_pairs = pytest.importorskip("sdmetrics.column_pairs")
    real, syn = _pair()
    m = combination_metrics(real, syn, reporting_length=2, k=1, max_sets=400, seed=0)
    shapes = {s["column"]: s["value"] for s in m["shapes"]}
    r, s = _frame(real, labels=True), _frame(syn, labels=True)
    assert shapes["cat"] == pytest.approx(sdm_single.TVComplement.compute(r["cat"], s["cat"]))
    assert shapes["ord"] == pytest.approx(sdm_single.KSComplement.compute(r["ord"], s["ord"]))
    trends = {tuple(t["columns"]): t for t in m["trends"]}
    corr = sdm_pairs.CorrelationSimilarity.compute(r[["ord", "ord2"]], s[["ord", "ord2"]],
                                                   coefficient="Pearson")
    assert trends[("ord", "ord2")]["value"] == pytest.approx(corr)
    cont = sdm_pairs.ContingencySimilarity.compute(r[["cat", "cat2"]], s[["cat", "cat2"]])
    assert trends[("cat", "cat2")]["value"] == pytest.approx(cont)


def test_anonymeter_rates_and_risk() -> None:
    conf = pytest.importorskip("anonymeter.stats.confidence")
    a, c = conf.success_rate(500, 130, 0.95), conf.success_rate(500, 90, 0.95)
    wa, wc = wilson(130, 500), wilson(90, 500)
    assert wa["value"] == pytest.approx(a.value) and wa["error"] == pytest.approx(a.error)
    ours = residual_risk(wa, wc)
    theirs = conf.residual_success(a, c).to_risk()
    assert ours["value"] == pytest.approx(theirs.value)
    assert ours["ci"] == pytest.approx(list(theirs.ci))


# Prime-sized ordered domains: sums of |a−b|/range rarely tie, so nearest neighbours are unique
# and both implementations must pick the same records.
PRIMES = (47, 53, 59, 61, 67, 71)
NUM_DOMS = tuple(ColumnDomain(f"n{i}", tuple(str(v) for v in range(p)), kind="numeric",
                              allows_missing=False) for i, p in enumerate(PRIMES))
SECRET = ColumnDomain("secret", ("s0", "s1", "s2"), allows_missing=False)


def _numeric_tables(n: int = 300) -> tuple[EncodedTable, EncodedTable, EncodedTable]:
    rng = np.random.default_rng(11)
    doms = (*NUM_DOMS, SECRET)

    def make() -> np.ndarray:
        cols = [rng.integers(0, p, n) for p in PRIMES]
        secret = (cols[0] * 3 // PRIMES[0] + (rng.random(n) < 0.2)) % 3
        codes = np.stack([*cols, secret], 1)
        codes[0, :-1], codes[1, :-1] = 0, np.array(PRIMES) - 1   # full range in every table
        return codes

    return tuple(EncodedTable(make(), doms) for _ in range(3))  # type: ignore[return-value]


def _anon_frame(t: EncodedTable) -> pd.DataFrame:
    df = pd.DataFrame(t.codes[:, :-1].astype(float), columns=t.column_names[:-1])
    df["secret"] = np.asarray(SECRET.labels, dtype=object)[t.codes[:, -1]]
    return df


def test_anonymeter_inference_same_successes() -> None:
    ev_mod = pytest.importorskip("anonymeter.evaluators")
    real, syn, ctl = _numeric_tables()
    aux = [d.name for d in NUM_DOMS]
    n = real.n_records
    ev = ev_mod.InferenceEvaluator(ori=_anon_frame(real), syn=_anon_frame(syn), aux_cols=aux,
                                   secret="secret", n_attacks=n, control=_anon_frame(ctl))
    ev.evaluate(n_jobs=1)
    res = ev.results()
    ours = inference(real, syn, ctl, "secret", aux, n_attacks=n, seed=0)
    assert ours["attack_rate"]["n_success"] == res.n_success
    assert ours["control_rate"]["n_success"] == res.n_control
    assert ours["risk"]["value"] == pytest.approx(ev.risk().value)


def test_anonymeter_linkability_same_links() -> None:
    ev_mod = pytest.importorskip("anonymeter.evaluators")
    real, syn, ctl = _numeric_tables()
    aux = ([d.name for d in NUM_DOMS[:3]], [d.name for d in NUM_DOMS[3:]])
    n = real.n_records
    ev = ev_mod.LinkabilityEvaluator(ori=_anon_frame(real), syn=_anon_frame(syn), aux_cols=aux,
                                     n_attacks=n, control=_anon_frame(ctl))
    ev.evaluate(n_jobs=1)
    res = ev.results()
    ours = linkability(real, syn, ctl, aux, n_attacks=n, seed=0)
    assert ours["attack_rate"]["n_success"] == res.n_success
    assert ours["control_rate"]["n_success"] == res.n_control
