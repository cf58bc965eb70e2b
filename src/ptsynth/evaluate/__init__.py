"""Utility and disclosure-risk evaluation of a synthetic release against the real records.

Why one entry point: a data steward needs one report that says both "is it useful" and "is it
safe", with every number named by its definition and marked as computed against real data
(private: for the steward, not for publication) or from released material only (public).

``evaluate`` returns a JSON-ready dict (schema version 1); :mod:`ptsynth.report` writes it as
JSON or as a self-contained HTML page. Nothing in the report is a record-level value: column
sets are named by column names, rare combinations are counted, never listed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from ptsynth.evaluate import attacks as _attacks
from ptsynth.evaluate import risk as _risk
from ptsynth.evaluate import utility as _utility
from ptsynth.evaluate.definitions import DEFINITIONS
from ptsynth.evaluate.stats import figure
from ptsynth.table import EncodedTable

__all__ = ["evaluate", "SCHEMA_VERSION", "DEFINITIONS"]

SCHEMA_VERSION = 1

PRIVATE = "private"
PUBLIC = "public"


def _check_same_domains(real: EncodedTable, other: EncodedTable, what: str) -> None:
    if tuple(other.domains) != tuple(real.domains):
        raise ValueError(f"{what} must have the same public domains as the real table")


def _budget_section(ledger: object | None) -> dict | None:
    """The ledger as reported spend per step (public: the ledger is part of the release)."""
    if ledger is None:
        return None
    data = ledger.to_dict() if hasattr(ledger, "to_dict") else dict(ledger)  # type: ignore[call-overload]
    entries = []
    for e in data.get("entries", []):
        e = e if isinstance(e, dict) else getattr(e, "__dict__", {})
        entries.append({
            "query": str(e.get("query", "")),
            "mechanism": str(e.get("mechanism", "")),
            "rho": figure(e.get("rho"), "budget_rho"),
            "epsilon": figure(e.get("epsilon"), "budget_epsilon"),
        })
    total = data.get("total", {}) or {}
    spent = float(sum(x["rho"]["value"] or 0.0 for x in entries))
    return {
        "visibility": PUBLIC,
        "total": {k: total.get(k) for k in ("epsilon", "delta", "rho")},
        "spent_rho": figure(spent, "budget_rho"),
        "entries": entries,
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def _verdicts(report: dict, k: int, reporting_length: int) -> list[dict]:
    """Plain-language one-line findings for the summary screen."""
    out: list[dict] = []
    u, r = report["utility"], report["risk"]
    floor = u["synthetic_combination_floor"]
    below = floor["below_k"]["value"]
    scope = "" if not u["marginals"]["any_sampled"] else " (in the evaluated column sets)"
    if floor["min_count"]["value"] is None:
        pass
    elif below == 0:
        out.append({"id": "synthetic_floor", "status": "good", "visibility": PUBLIC,
                    "text": f"All combinations of up to {reporting_length} attributes in the "
                            f"synthetic data describe at least {k} records{scope}."})
    else:
        out.append({"id": "synthetic_floor", "status": "warn", "visibility": PUBLIC,
                    "text": f"{below} combinations of up to {reporting_length} attributes in the "
                            f"synthetic data describe fewer than {k} records{scope}; k-anonymity is "
                            f"enforced on the quasi-identifiers only."})
    ka = r["k_anonymity"]["real"]
    if ka.get("computed"):
        lvl = ka["k_level"]["value"]
        if lvl >= k:
            text = (f"Every combination of the {len(ka['quasi_identifiers'])} quasi-identifiers "
                    f"describes at least {k} people in the real data (k = {lvl}).")
        else:
            text = (f"{ka['records_below_k']['value']} real records sit in quasi-identifier "
                    f"groups smaller than {k} (smallest group: {lvl}).")
        out.append({"id": "k_anonymity_real", "status": "good" if lvl >= k else "warn",
                    "visibility": PRIVATE, "text": text})
    tv2 = u["marginals"]["by_order"].get("2")
    if tv2 and tv2["mean"]["value"] is not None:
        fid = 1 - tv2["mean"]["value"]
        out.append({"id": "fidelity_2way", "status": "good" if fid >= 0.9 else "warn",
                    "visibility": PRIVATE,
                    "text": f"Synthetic data reproduce 2-way relationships with {_pct(fid)} "
                            "fidelity (1 − mean 2-way TVD)."})
    pres = [x for x in u["preservation"]["by_length"] if x["preservation"]["value"] is not None]
    if pres:
        last = pres[-1]
        out.append({"id": "preservation", "status": "info", "visibility": PRIVATE,
                    "text": f"Counts of {last['length']}-attribute combinations are preserved at "
                            f"{_pct(last['preservation']['value'])}; "
                            f"{_pct(last['suppressed']['value'])} of real combinations are "
                            f"missing and {_pct(last['fabricated']['value'])} of synthetic ones "
                            "are fabricated."})
    em = r["exact_matches"]
    rate = em["synthetic_in_real"]["value"]
    if rate is not None:
        ref = em.get("holdout_in_real", {}).get("value") if "holdout_in_real" in em else None
        unique_verbatim = em["real_unique_in_synthetic"]["value"] or 0
        status = "good" if ((ref is not None and rate <= ref) or rate == 0) else "warn"
        if unique_verbatim:  # a record unique in the real data, copied: never a good sign
            status = "bad" if ref is None or rate > ref else "warn"
        extra = "" if ref is None else f" (a fresh real sample matches at {_pct(ref)})"
        out.append({"id": "exact_matches", "status": status, "visibility": PRIVATE,
                    "text": f"{_pct(rate)} of synthetic records are identical to a real "
                            f"record{extra}; {em['real_unique_in_synthetic']['value']} records "
                            "unique in the real data appear verbatim."})
    risky = [a for a in r["attacks"] if a.get("beats_baseline_significantly")
             and (a["risk"]["value"] or 0) > 0.05 and (a["risk"]["ci"][0] or 0) > 0]
    if r["attacks"]:
        if risky:
            names = ", ".join(sorted({a["attack"].replace("_", " ") for a in risky}))
            out.append({"id": "attacks", "status": "bad", "visibility": PRIVATE,
                        "text": f"Attacks that beat random guessing with risk above 5%: {names}."})
        else:
            out.append({"id": "attacks", "status": "good", "visibility": PRIVATE,
                        "text": "No singling-out, linkability or inference attack reaches a risk "
                                "significantly above 0 and above 5% while beating random "
                                "guessing significantly."})
    ml = u.get("ml_efficacy")
    if ml and ml["accuracy_ratio"]["value"] is not None:
        ratio = ml["accuracy_ratio"]["value"]
        out.append({"id": "ml_efficacy", "status": "good" if ratio >= 0.9 else "warn",
                    "visibility": PRIVATE,
                    "text": f"A model predicting {ml['target']} trained on synthetic data reaches "
                            f"{_pct(ratio)} of the accuracy of one trained on real data."})
    b = report.get("budget")
    if b and b["total"].get("epsilon") is not None:
        out.append({"id": "budget", "status": "info", "visibility": PUBLIC,
                    "text": f"Privacy budget of this release: ε = {b['total']['epsilon']:g}, "
                            f"δ = {b['total'].get('delta') or 0:g}, over {len(b['entries'])} "
                            "measurements."})
    return out


def evaluate(
    real: EncodedTable,
    synthetic: EncodedTable,
    *,
    holdout: EncodedTable | None = None,
    quasi_identifiers: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    target: str | None = None,
    aggregates: object | None = None,
    ledger: object | None = None,
    reporting_length: int = 3,
    k: int = 10,
    seed: int = 0,
    max_sets: int = 400,
    n_attacks: int = _attacks.N_ATTACKS,
    dcr_sample: int = _risk.DCR_SAMPLE,
) -> dict:
    """Evaluate ``synthetic`` against ``real``; returns the JSON-ready report dict.

    Args:
        real: the records the release was made from (private).
        synthetic: the released synthetic records (same public domains).
        holdout: real records *not* used for the release: the control set of the attacks,
            the DCR reference and the ML test set.
        quasi_identifiers, sensitive: column names; default to the columns the domains flag.
        target: column predicted in the ML-efficacy check (skipped when None).
        aggregates: DP aggregate release to compare with true counts (optional).
        ledger: privacy ledger (object with ``to_dict()`` or dict) shown as the budget section.
        reporting_length: longest combination in preservation / rare-combination figures.
        k: the release's minimum group size (rare combinations, k-anonymity verdicts).
        seed: seeds every sample drawn by the evaluation (column sets, attacks, DCR, ML).
        max_sets: most column sets evaluated per order (sampled with ``seed`` beyond).
    """
    t0 = time.perf_counter()
    _check_same_domains(real, synthetic, "synthetic")
    if holdout is not None:
        _check_same_domains(real, holdout, "holdout")
    qis = list(quasi_identifiers) or [d.name for d in real.domains if d.quasi_identifier]
    sens = list(sensitive) or [d.name for d in real.domains if d.sensitive]
    real.indices(qis)
    real.indices(sens)
    timings: dict[str, float] = {}

    def tick(name: str, start: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - start, 3)
        return now

    t = time.perf_counter()
    comb = _utility.combination_metrics(real, synthetic, reporting_length=reporting_length, k=k,
                                        max_sets=max_sets, seed=seed)
    t = tick("combinations", t)
    marginals = {
        "by_order": {str(o): v for o, v in comb["tvd"].items()},
        "max_sets": max_sets,
        "any_sampled": any(v["sampled"] for v in comb["tvd"].values()),
        "seed": seed,
    }
    utility = {
        "visibility": PRIVATE,
        "marginals": marginals,
        "preservation": _utility.preservation_section(comb["lengths"], comb["sampled_lengths"]),
        **_utility.quality_section(comb["shapes"], comb["trends"]),
        "synthetic_combination_floor": {
            **_utility.synthetic_combination_floor(comb["lengths"], k), "visibility": PUBLIC},
        "ml_efficacy": None,
        "aggregates": None,
    }
    if target is not None:
        utility["ml_efficacy"] = _utility.ml_efficacy(real, synthetic, target, holdout=holdout,
                                                      seed=seed)
        t = tick("ml_efficacy", t)
    if aggregates is not None:
        utility["aggregates"] = _utility.aggregate_error(aggregates, real)
        t = tick("aggregates", t)

    attack_list: list[dict] = []
    attack_list.append(_attacks.singling_out(real, synthetic, holdout, n_attacks=n_attacks,
                                             seed=seed))
    if len(qis) >= 2:
        half = len(qis) // 2
        aux = (qis[:half], qis[half:])
    else:
        perm = np.random.default_rng([seed, 3]).permutation(real.n_columns)
        names = real.column_names
        half = real.n_columns // 2
        aux = ([names[i] for i in sorted(perm[:half])], [names[i] for i in sorted(perm[half:])])
    index = _attacks.SynthIndex(synthetic)  # shared nearest-neighbour structures
    attack_list.append(_attacks.linkability(real, synthetic, holdout, aux, n_attacks=n_attacks,
                                            seed=seed, index=index))
    inference_plan = [
        (secret, [q for q in qis if q != secret] or [c for c in real.column_names if c != secret])
        for secret in sens
    ]
    attack_list.extend(_attacks.inference_many(real, synthetic, holdout, inference_plan,
                                               n_attacks=n_attacks, seed=seed, index=index))
    t = tick("attacks", t)
    risk = {
        "visibility": PRIVATE,
        "quasi_identifiers": qis,
        "sensitive": sens,
        "k_anonymity": {
            "real": {**_risk.k_anonymity(real, qis, k), "visibility": PRIVATE},
            "synthetic": {**_risk.k_anonymity(synthetic, qis, k), "visibility": PUBLIC},
        },
        "l_diversity_t_closeness": _risk.l_diversity_t_closeness(real, qis, sens),
        "exact_matches": _risk.exact_matches(real, synthetic, holdout),
        "dcr": _risk.dcr(real, synthetic, holdout, seed=seed, sample=dcr_sample),
        "attacks": attack_list,
        "rare_combinations": _utility.rare_section(comb["lengths"], k),
    }
    t = tick("risk", t)
    report: dict = {
        "schema_version": SCHEMA_VERSION,
        "kind": "ptsynth.evaluation",
        "visibility": PRIVATE,
        "visibility_note": "Figures marked private are computed against the real records: they "
                           "are for the data steward and must not be published. Figures marked "
                           "public are computed from released material only.",
        "parameters": {"reporting_length": reporting_length, "k": k, "seed": seed,
                       "max_sets": max_sets, "n_attacks": n_attacks, "dcr_sample": dcr_sample,
                       "target": target},
        "inputs": {
            "visibility": PRIVATE,
            "real_records": figure(real.n_records, "records"),
            "synthetic_records": figure(synthetic.n_records, "records", visibility=PUBLIC),
            "holdout_records": figure(None if holdout is None else holdout.n_records, "records"),
            "columns": [d.name for d in real.domains],
        },
        "utility": utility,
        "risk": risk,
        "budget": _budget_section(ledger),
        "definitions": DEFINITIONS,
    }
    report["summary"] = {"verdicts": _verdicts(report, k, reporting_length)}
    timings["total"] = round(time.perf_counter() - t0, 3)
    report["timings_s"] = timings
    return report
