"""Disclosure risk: what a reader of the synthetic data could learn about real people.

Why these measures: k-anonymity, l-diversity and t-closeness are what statistical offices and
the CTDC k-anonymised release speak in (ARX, pycanon); exact matches and distance to the closest
record (DCR) are the standard checks that a generator did not copy records; the attacks
(:mod:`ptsynth.evaluate.attacks`) give success rates against a baseline and a control set.

Conventions stated once: a missing quasi-identifier is its own value (rows with missing QIs
form their own classes; nothing is dropped, unlike pycanon); a missing sensitive value is its
own sensitive value. All figures computed on real data are **private**; the same figures
computed on the synthetic data alone are public.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ptsynth.evaluate.distance import CodeNeighbours
from ptsynth.evaluate.stats import ORDERED_KINDS, compact_codes, figure, quantiles, row_ids
from ptsynth.table import EncodedTable

#: Class-size buckets (lower edges) for the equivalence-class size distribution.
CLASS_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 1000)

#: Records drawn (without replacement, seeded) as DCR queries from each side.
DCR_SAMPLE = 1000


def equivalence_classes(table: EncodedTable, qis: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Class id of each record over the QIs (missing is a value) and the class sizes."""
    idx = list(table.indices(qis))
    sub = compact_codes(table.codes[:, idx], [table.domains[j].size for j in idx])
    (ids,) = row_ids(sub)
    sizes = np.bincount(ids)
    return ids, sizes


def _bucket_labels(edges: Sequence[int]) -> list[str]:
    out = []
    for lo, hi in zip(edges, (*edges[1:], None), strict=False):
        out.append(f"{lo}+" if hi is None else str(lo) if hi - 1 == lo else f"{lo}-{hi - 1}")
    return out


def k_anonymity(table: EncodedTable, qis: Sequence[str], k: int) -> dict:
    """k level (smallest class), class-size distribution, records in classes smaller than k."""
    if not qis:
        return {"computed": False, "reason": "no quasi-identifiers declared"}
    if table.n_records == 0:
        return {"computed": False, "reason": "no records"}
    _, sizes = equivalence_classes(table, qis)
    edges = np.asarray(CLASS_BUCKETS)
    b = np.searchsorted(edges, sizes, side="right") - 1
    n_classes = np.bincount(b, minlength=edges.size)
    n_records = np.bincount(b, weights=sizes, minlength=edges.size).astype(np.int64)
    small = sizes < k
    return {
        "computed": True,
        "quasi_identifiers": list(qis),
        "missing_policy": "a missing quasi-identifier is its own value; no record is dropped",
        "k_level": figure(int(sizes.min()), "k_anonymity_level"),
        "n_classes": figure(int(sizes.size), "equivalence_classes"),
        "records_below_k": figure(int(sizes[small].sum()), "records_in_classes_below_k", k=k,
                                  fraction=float(sizes[small].sum() / table.n_records)),
        "classes_below_k": figure(int(small.sum()), "classes_below_k", k=k),
        "class_size_distribution": [
            {"bucket": lab, "classes": int(c), "records": int(r)}
            for lab, c, r in zip(_bucket_labels(CLASS_BUCKETS), n_classes, n_records, strict=False)
        ],
    }


def l_diversity_t_closeness(table: EncodedTable, qis: Sequence[str],
                            sensitive: Sequence[str]) -> list[dict]:
    """Distinct and entropy l-diversity and t-closeness per sensitive attribute.

    t-closeness uses the EMD between each class's sensitive distribution and the whole
    table's: ½Σ|p−q| for unordered attributes; Σ|cumsum(p−q)|/(m−1) for ordered ones.
    """
    if not qis or not sensitive or table.n_records == 0:
        return []
    cls, csize = equivalence_classes(table, qis)
    n_cls = csize.size
    out = []
    for name in sensitive:
        j = table.index_of(name)
        dom = table.domains[j]
        m = dom.size
        s = table.codes[:, j].astype(np.int64)
        pair = cls * m + s
        upair, pcount = np.unique(pair, return_counts=True)
        pc = upair // m
        pv = upair % m
        distinct = np.bincount(pc, minlength=n_cls)
        p = pcount / csize[pc]
        ent = -np.bincount(pc, weights=p * np.log(p), minlength=n_cls)
        q = np.bincount(s, minlength=m) / table.n_records
        ordered = dom.kind in ORDERED_KINDS
        if ordered:
            t_cls = np.zeros(n_cls)
            # dense per chunk of classes: (chunk, m) cumulative differences
            chunk = max(1, (1 << 22) // m)
            for start in range(0, n_cls, chunk):
                stop = min(start + chunk, n_cls)
                sel = (pc >= start) & (pc < stop)
                dense = np.zeros((stop - start, m))
                dense[pc[sel] - start, pv[sel]] = p[sel]
                t_cls[start:stop] = np.abs(np.cumsum(dense - q[None, :], axis=1)).sum(axis=1)
            t_cls /= max(m - 1, 1)
        else:
            # ½Σ|p−q| = ½(1 + Σ_{v in class}(|p_v − q_v| − q_v))
            t_cls = 0.5 * (1.0 + np.bincount(pc, weights=np.abs(p - q[pv]) - q[pv],
                                             minlength=n_cls))
        out.append({
            "sensitive": name,
            "distinct_l": figure(int(distinct.min()), "distinct_l_diversity"),
            "entropy_l": figure(float(np.exp(ent.min())), "entropy_l_diversity"),
            "t_closeness": figure(float(t_cls.max()), "t_closeness",
                                  emd="cumulative (ordered)" if ordered else "equal distance"),
            "classes_with_one_value": figure(int((distinct == 1).sum()),
                                             "classes_with_single_sensitive_value"),
            "missing_policy": "a missing sensitive value is its own value",
        })
    return out


def exact_matches(real: EncodedTable, synth: EncodedTable,
                  holdout: EncodedTable | None) -> dict:
    """Share of synthetic records identical to a real record (and to a holdout record).

    Also: how many records that are unique in the real data appear verbatim in the synthetic
    data (SDNist's "unique exact matches").
    """
    sizes = real.sizes
    blocks = [compact_codes(real.codes, sizes), compact_codes(synth.codes, sizes)]
    if holdout is not None:
        blocks.append(compact_codes(holdout.codes, sizes))
    ids = row_ids(*blocks)
    r_ids, s_ids = ids[0], ids[1]
    n_ids = int(max((i.max() for i in ids if i.size), default=-1)) + 1
    r_count = np.bincount(r_ids, minlength=n_ids)
    s_count = np.bincount(s_ids, minlength=n_ids)
    in_real = r_count[s_ids] > 0
    unique_real = r_count == 1
    out = {
        "synthetic_in_real": figure(float(in_real.mean()) if s_ids.size else None,
                                    "exact_match_rate", count=int(in_real.sum())),
        "real_unique_records": figure(int(unique_real.sum()), "real_unique_records"),
        "real_unique_in_synthetic": figure(int((unique_real & (s_count > 0)).sum()),
                                           "real_unique_exact_matches"),
    }
    if holdout is not None:
        h_count = np.bincount(ids[2], minlength=n_ids)
        out["synthetic_in_holdout"] = figure(float((h_count[s_ids] > 0).mean())
                                             if s_ids.size else None,
                                             "exact_match_rate_holdout")
        out["holdout_in_real"] = figure(float((r_count[ids[2]] > 0).mean())
                                        if ids[2].size else None,
                                        "holdout_exact_match_rate")
    return out


def _sample(codes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if codes.shape[0] <= n:
        return codes
    return codes[np.sort(rng.choice(codes.shape[0], n, replace=False))]


def dcr(real: EncodedTable, synth: EncodedTable, holdout: EncodedTable | None, *, seed: int,
        sample: int = DCR_SAMPLE) -> dict:
    """Distance to closest real record for synthetic, holdout and uniformly random records.

    Queries: up to ``sample`` records of each kind (seeded); candidates: all distinct real
    records (exact search, see :mod:`ptsynth.evaluate.distance`). Holdout and random records
    say what "close" means for records that were never used: synthetic records much closer
    than holdout records suggest memorisation.
    """
    rng = np.random.default_rng([seed, 11])
    sizes = np.array(real.sizes)
    # distinct real rows are enough for a minimum distance
    (rid,) = row_ids(compact_codes(real.codes, sizes))
    _, first = np.unique(rid, return_index=True)
    nn = CodeNeighbours(real.codes[np.sort(first)], real.domains)
    queries = {"synthetic": _sample(synth.codes, sample, rng)}
    if holdout is not None:
        queries["holdout"] = _sample(holdout.codes, sample, rng)
    queries["random"] = np.stack(
        [rng.integers(0, s, size=min(sample, max(synth.n_records, 1))) for s in sizes], axis=1
    ) if sizes.size else np.zeros((0, 0), dtype=np.int64)
    out: dict = {"definition_note": "row distance = mean per-column distance; see definitions",
                 "sample_size": sample}
    # one search for all query kinds: the candidates are encoded and scanned once
    dist, _ = nn.nearest(np.concatenate(list(queries.values())))
    start = 0
    for name, q in queries.items():
        d = dist[start:start + q.shape[0]]
        start += q.shape[0]
        med, p5 = quantiles(d, [0.5, 0.05])
        out[name] = {
            "n": int(q.shape[0]),
            "median": figure(med, "dcr_median"),
            "p5": figure(p5, "dcr_p5"),
            "zero_share": figure(float(np.mean(d == 0)) if d.size else None, "dcr_zero_share"),
        }
    return out
