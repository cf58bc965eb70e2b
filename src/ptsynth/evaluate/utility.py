"""Utility: how well synthetic records reproduce the real records' statistics.

Why these metrics: marginal TVD by order is what MST/AIM papers and SDNist's k-marginal score
report; preservation, suppressed and fabricated combinations by length are what Synthetic Data
Showcase users know; column shapes and pair trends are SDMetrics' quality report; ML efficacy
(train on synthetic, test on real) is the analyst's question "can I fit a model on this". All of
them compare with the real data, so every figure here is **private** (for the data steward).

Everything is computed from counts over integer codes in one pass per column set
(:func:`~ptsynth.evaluate.stats.paired_counts`), never by joining rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ptsynth.counting import cell_codes
from ptsynth.counting.numpy_backend import NumpyBackend
from ptsynth.evaluate.stats import (
    ORDERED_KINDS,
    column_sets,
    figure,
    paired_counts,
    tvd,
)
from ptsynth.table import EncodedTable

#: Lower edges of the real-count buckets for preservation (last bucket open-ended).
COUNT_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

#: Column sets named in "worst column sets" per order.
N_WORST = 5

#: Orders of the marginal-TVD summary (fixed by the issue: 1-, 2-, 3-way).
TVD_ORDERS = (1, 2, 3)


def _bucket_labels() -> list[str]:
    out = []
    for lo, hi in zip(COUNT_BUCKETS, (*COUNT_BUCKETS[1:], None), strict=False):
        if hi is None:
            out.append(f"{lo}+")
        elif hi - 1 == lo:
            out.append(str(lo))
        else:
            out.append(f"{lo}-{hi - 1}")
    return out


@dataclass
class _LengthAccumulator:
    """Running sums over the column sets of one combination length."""

    n_sets: int = 0
    real_combos: int = 0
    synth_combos: int = 0
    suppressed: int = 0
    fabricated: int = 0
    preserved: float = 0.0
    real_total: float = 0.0
    abs_error: float = 0.0
    union_combos: int = 0
    rare_real: int = 0
    unique_real: int = 0
    rare_in_synth: int = 0
    unique_in_synth: int = 0
    rare_leaked: int = 0
    synth_rare: int = 0
    synth_min: int | None = None
    bucket_preserved: np.ndarray = field(default_factory=lambda: np.zeros(len(COUNT_BUCKETS)))
    bucket_real: np.ndarray = field(default_factory=lambda: np.zeros(len(COUNT_BUCKETS)))
    bucket_combos: np.ndarray = field(
        default_factory=lambda: np.zeros(len(COUNT_BUCKETS), dtype=np.int64)
    )


def _columns(table: EncodedTable) -> list[np.ndarray]:
    """Each column as a contiguous int64 array (one copy, reused by every column set)."""
    return [np.ascontiguousarray(table.codes[:, j], dtype=np.int64) for j in range(table.n_columns)]


def _weighted_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float | None:
    """Pearson correlation of cell codes weighted by cell counts; None if undefined."""
    tot = float(w.sum())
    if tot <= 0:
        return None
    mx, my = float((w * x).sum()) / tot, float((w * y).sum()) / tot
    dx, dy = x - mx, y - my
    vx, vy = float((w * dx * dx).sum()), float((w * dy * dy).sum())
    if vx <= 0 or vy <= 0:
        return None
    return float((w * dx * dy).sum()) / np.sqrt(vx * vy)


def _ks_on_codes(real: np.ndarray, synth: np.ndarray, missing: int | None) -> float:
    """Kolmogorov–Smirnov statistic between two count vectors over ordered codes.

    Missing (the last code) is left out of both distributions, as SDMetrics drops NaN.
    """
    if missing is not None:
        real, synth = real[:missing], synth[:missing]
    sr, ss = real.sum(), synth.sum()
    if sr == 0 or ss == 0:
        return 0.0 if sr == ss else 1.0
    return float(np.max(np.abs(np.cumsum(real / sr) - np.cumsum(synth / ss))))


def combination_metrics(
    real: EncodedTable,
    synth: EncodedTable,
    *,
    reporting_length: int,
    k: int,
    max_sets: int,
    seed: int,
) -> dict:
    """Marginal TVD, SDS-style preservation, rare combinations, shapes and pair trends.

    One pass over the (sampled) column sets of each order ``1..max(3, reporting_length)``;
    each set is counted once for both tables and every metric of that set derives from
    those counts. Returns an internal dict consumed by :func:`ptsynth.evaluate.evaluate`.
    """
    doms = real.domains
    names = [d.name for d in doms]
    sizes = [d.size for d in doms]
    missing = [d.missing_code for d in doms]
    rc, sc = _columns(real), _columns(synth)
    n_r, n_s = real.n_records, synth.n_records
    scale = n_r / n_s if n_s else 0.0
    edges = np.asarray(COUNT_BUCKETS)

    tvd_by_order: dict[int, dict] = {}
    acc: dict[int, _LengthAccumulator] = {}
    shapes: list[dict] = []
    trends: list[dict] = []
    max_order = min(max(max(TVD_ORDERS), reporting_length), real.n_columns)

    for order in range(1, max_order + 1):
        sets, total = column_sets(real.n_columns, order, max_sets, seed)
        values = np.empty(len(sets))
        a = _LengthAccumulator(n_sets=len(sets))
        for i, idx in enumerate(sets):
            sz = [sizes[j] for j in idx]
            cells, cr, cs = paired_counts([rc[j] for j in idx], [sc[j] for j in idx], sz)
            values[i] = tvd(cr, cs)
            codes = cell_codes(cells, sz)
            present = np.ones(cells.size, dtype=bool)
            for t, j in enumerate(idx):
                if missing[j] is not None:
                    present &= codes[:, t] != missing[j]
            if order == 1:
                j = idx[0]
                dense_r = np.zeros(sizes[j])
                dense_s = np.zeros(sizes[j])
                dense_r[cells] = cr
                dense_s[cells] = cs
                ordered = doms[j].kind in ORDERED_KINDS
                score = 1.0 - (_ks_on_codes(dense_r, dense_s, missing[j]) if ordered else values[i])
                shapes.append(
                    figure(
                        score,
                        "ks_complement_codes" if ordered else "tv_complement",
                        column=names[j],
                    )
                )
            if order == 2:
                j1, j2 = idx
                both_ordered = doms[j1].kind in ORDERED_KINDS and doms[j2].kind in ORDERED_KINDS
                if both_ordered:
                    keep = present
                    x, y = codes[keep, 0].astype(float), codes[keep, 1].astype(float)
                    rho_r = _weighted_pearson(x, y, cr[keep].astype(float))
                    rho_s = _weighted_pearson(x, y, cs[keep].astype(float))
                    sim = None if rho_r is None or rho_s is None else 1 - abs(rho_r - rho_s) / 2
                    trends.append(
                        figure(sim, "correlation_similarity", columns=[names[j1], names[j2]],
                               real_correlation=rho_r, synthetic_correlation=rho_s)
                    )
                else:
                    trends.append(
                        figure(1.0 - values[i], "contingency_similarity",
                               columns=[names[j1], names[j2]])
                    )
            if order <= reporting_length:
                _accumulate(a, cr[present], cs[present], scale, k, edges)
        if order in TVD_ORDERS:
            worst = np.argsort(-values, kind="stable")[:N_WORST]
            tvd_by_order[order] = {
                "order": order,
                "mean": figure(float(values.mean()) if values.size else None, f"mean_tvd_{order}way"),
                "max": figure(float(values.max()) if values.size else None, f"max_tvd_{order}way"),
                "n_sets": len(sets),
                "n_sets_total": total,
                "sampled": len(sets) < total,
                "worst": [
                    {"columns": [names[j] for j in sets[w]], "value": float(values[w]),
                     "definition": f"tvd_{order}way"}
                    for w in worst
                ],
            }
        if order <= reporting_length:
            acc[order] = a
    return {"tvd": tvd_by_order, "lengths": acc, "shapes": shapes, "trends": trends,
            "sampled_lengths": {o: tvd_by_order.get(o, {}).get("sampled") for o in acc}}


def _accumulate(
    a: _LengthAccumulator, real: np.ndarray, synth_raw: np.ndarray, scale: float, k: int,
    edges: np.ndarray,
) -> None:
    """Add one column set's present-attribute combinations to a length's running sums."""
    synth = synth_raw * scale
    in_r, in_s = real > 0, synth_raw > 0
    a.real_combos += int(in_r.sum())
    a.synth_combos += int(in_s.sum())
    a.suppressed += int((in_r & ~in_s).sum())
    a.fabricated += int((in_s & ~in_r).sum())
    mins = np.minimum(real, synth)
    a.preserved += float(mins[in_r].sum())
    a.real_total += float(real.sum())
    a.abs_error += float(np.abs(real - synth).sum())
    a.union_combos += int((in_r | in_s).sum())
    rare = in_r & (real < k)
    uniq = real == 1
    a.rare_real += int(rare.sum())
    a.unique_real += int(uniq.sum())
    a.rare_in_synth += int((rare & in_s).sum())
    a.unique_in_synth += int((uniq & in_s).sum())
    a.rare_leaked += int((rare & in_s & (synth_raw < k)).sum())
    a.synth_rare += int((in_s & (synth_raw < k)).sum())
    if in_s.any():
        m = int(synth_raw[in_s].min())
        a.synth_min = m if a.synth_min is None else min(a.synth_min, m)
    b = np.searchsorted(edges, real[in_r], side="right") - 1
    a.bucket_preserved += np.bincount(b, weights=mins[in_r], minlength=edges.size)
    a.bucket_real += np.bincount(b, weights=real[in_r], minlength=edges.size)
    a.bucket_combos += np.bincount(b, minlength=edges.size)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def preservation_section(acc: dict[int, _LengthAccumulator], sampled: dict) -> dict:
    """SDS-style figures per combination length and per real-count bucket."""
    by_length = []
    bucket_pres = np.zeros(len(COUNT_BUCKETS))
    bucket_real = np.zeros(len(COUNT_BUCKETS))
    bucket_combos = np.zeros(len(COUNT_BUCKETS), dtype=np.int64)
    for length, a in sorted(acc.items()):
        bucket_pres += a.bucket_preserved
        bucket_real += a.bucket_real
        bucket_combos += a.bucket_combos
        by_length.append({
            "length": length,
            "n_column_sets": a.n_sets,
            "column_sets_sampled": bool(sampled.get(length)),
            "real_combinations": figure(a.real_combos, "distinct_real_combinations"),
            "synthetic_combinations": figure(a.synth_combos, "distinct_synthetic_combinations"),
            "preservation": figure(_ratio(a.preserved, a.real_total), "preservation"),
            "suppressed": figure(_ratio(a.suppressed, a.real_combos), "suppressed_fraction",
                                 count=a.suppressed, denominator=a.real_combos),
            "fabricated": figure(_ratio(a.fabricated, a.synth_combos), "fabricated_fraction",
                                 count=a.fabricated, denominator=a.synth_combos),
            "mean_absolute_error": figure(_ratio(a.abs_error, a.union_combos),
                                          "combination_mean_absolute_error"),
        })
    labels = [
        {"bucket": lab, "min_real_count": int(lo), "combinations": int(c),
         **figure(_ratio(p, r), "preservation")}
        for lab, lo, c, p, r in zip(_bucket_labels(), COUNT_BUCKETS, bucket_combos, bucket_pres,
                                    bucket_real, strict=False)
        if c > 0
    ]
    return {"by_length": by_length, "by_count_bucket": labels}


def rare_section(acc: dict[int, _LengthAccumulator], k: int) -> dict:
    """Counts of rare (count < k) and unique real combinations and whether the release has them.

    Counts only: the combinations' values are never put in a report.
    """
    rows = []
    for length, a in sorted(acc.items()):
        rows.append({
            "length": length,
            "rare_real": figure(a.rare_real, "rare_real_combinations", k=k),
            "unique_real": figure(a.unique_real, "unique_real_combinations"),
            "rare_real_in_synthetic": figure(a.rare_in_synth, "rare_real_in_synthetic", k=k),
            "unique_real_in_synthetic": figure(a.unique_in_synth, "unique_real_in_synthetic"),
            "rare_leaked": figure(a.rare_leaked, "rare_combination_leakage", k=k),
        })
    return {"k": k, "by_length": rows}


def synthetic_combination_floor(acc: dict[int, _LengthAccumulator], k: int) -> dict:
    """Smallest count of any present combination in the synthetic data (synthetic only)."""
    mins = [a.synth_min for a in acc.values() if a.synth_min is not None]
    return {
        "min_count": figure(min(mins) if mins else None, "min_synthetic_combination_count"),
        "below_k": figure(sum(a.synth_rare for a in acc.values()),
                          "synthetic_combinations_below_k", k=k),
        "lengths": sorted(acc),
    }


def quality_section(shapes: list[dict], trends: list[dict]) -> dict:
    """SDMetrics-style quality: mean column shape, mean pair trend, and their mean."""
    s = [f["value"] for f in shapes if f["value"] is not None]
    t = [f["value"] for f in trends if f["value"] is not None]
    ms = float(np.mean(s)) if s else None
    mt = float(np.mean(t)) if t else None
    both = [v for v in (ms, mt) if v is not None]
    worst_trends = sorted((f for f in trends if f["value"] is not None), key=lambda f: f["value"])
    return {
        "column_shapes": {"mean": figure(ms, "mean_column_shape"), "columns": shapes},
        "pair_trends": {"mean": figure(mt, "mean_pair_trend"), "n_pairs": len(trends),
                        "worst": worst_trends[:N_WORST]},
        "quality_score": figure(float(np.mean(both)) if both else None, "quality_score"),
    }


# -- ML efficacy ---------------------------------------------------------------------------
#: Rows used to train / test each model (subsampled with the seed above this size).
ML_MAX_ROWS = 10_000

#: Most target classes modelled: beyond it, the classes rarer than the ``ML_MAX_CLASSES − 1``
#: most frequent ones (in the real training rows) are merged into one "other" class, for every
#: model and the test set alike. Why: fit time grows with the class count, and a class seen a
#: handful of times in 10 000 rows cannot be learned by either model, so it only adds noise.
ML_MAX_CLASSES = 20


def ml_efficacy(
    real: EncodedTable,
    synth: EncodedTable,
    target: str,
    *,
    holdout: EncodedTable | None,
    seed: int,
) -> dict:
    """Train on synthetic, test on real (TSTR) vs train on real, test on real (TRTR).

    Test set: the holdout if given; else 30% of the real records, the other 70% training the
    TRTR model. Model: multinomial LogisticRegression on one-hot codes (every code, missing
    included, is its own indicator): fast, deterministic and fair to both training sets.
    Missing target is a class; classes beyond :data:`ML_MAX_CLASSES` are merged (stated in the
    result). Solver: Newton-CG, which reaches the same (strictly convex) optimum as L-BFGS in
    a dozen Newton steps instead of hundreds of gradient steps on these one-hot designs.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng([seed, 7])
    j = real.index_of(target)
    feats = [i for i in range(real.n_columns) if i != j]
    if holdout is not None:
        train_real, test = real.codes, holdout.codes
    else:
        perm = rng.permutation(real.n_records)
        cut = int(0.7 * real.n_records)
        train_real, test = real.codes[perm[:cut]], real.codes[perm[cut:]]

    def cap(a: np.ndarray) -> np.ndarray:
        if a.shape[0] <= ML_MAX_ROWS:
            return a
        return a[np.sort(rng.choice(a.shape[0], ML_MAX_ROWS, replace=False))]

    train_real, test, train_syn = cap(train_real), cap(test), cap(synth.codes)
    classes, counts = np.unique(train_real[:, j], return_counts=True)
    n_classes = int(classes.size)
    merged = 0
    if n_classes > ML_MAX_CLASSES:
        keep = classes[np.argsort(-counts, kind="stable")[: ML_MAX_CLASSES - 1]]
        other = real.domains[j].size  # a code outside the domain: "other"
        relabel = np.full(other + 1, other, dtype=np.int64)
        relabel[keep] = keep
        merged = n_classes - keep.size
        train_real, test, train_syn = (a.copy() for a in (train_real, test, train_syn))
        for a in (train_real, test, train_syn):
            a[:, j] = relabel[a[:, j]]
    fsizes = np.array([real.domains[i].size for i in feats], dtype=np.int64)
    foffsets = np.concatenate([[0], np.cumsum(fsizes)[:-1]])

    def onehot(a: np.ndarray) -> sparse.csr_matrix:
        n = a.shape[0]
        idx = (a[:, feats].astype(np.int64) + foffsets[None, :]).ravel()
        ptr = np.arange(0, n * len(feats) + 1, len(feats))
        return sparse.csr_matrix((np.ones(idx.size), idx, ptr), shape=(n, int(fsizes.sum())))

    y_test = test[:, j]
    x_test = onehot(test)  # one encoding shared by both models
    results = {}
    for name, train in (("train_real", train_real), ("train_synthetic", train_syn)):
        y = train[:, j]
        if np.unique(y).size < 2:
            results[name] = {"accuracy": figure(None, "ml_accuracy"),
                             "macro_f1": figure(None, "ml_macro_f1"),
                             "note": "training target has a single class"}
            continue
        model = LogisticRegression(max_iter=300, C=1.0, solver="newton-cg")
        model.fit(onehot(train), y)
        pred = model.predict(x_test)
        results[name] = {
            "accuracy": figure(accuracy_score(y_test, pred), "ml_accuracy"),
            "macro_f1": figure(f1_score(y_test, pred, average="macro", zero_division=0),
                               "ml_macro_f1"),
            "n_train": int(train.shape[0]),
        }
    majority = np.bincount(train_real[:, j]).argmax()
    acc_r = results["train_real"]["accuracy"]["value"]
    acc_s = results["train_synthetic"]["accuracy"]["value"]
    f1_r = results["train_real"]["macro_f1"]["value"]
    f1_s = results["train_synthetic"]["macro_f1"]["value"]
    return {
        "target": target,
        "model": "LogisticRegression (multinomial, L2, C=1, Newton-CG) on one-hot codes",
        "test_set": "holdout" if holdout is not None else "30% of real records (seeded split)",
        "n_test": int(test.shape[0]),
        "max_rows": ML_MAX_ROWS,
        "n_classes": n_classes,
        "max_classes": ML_MAX_CLASSES,
        "classes_merged_into_other": merged,
        **results,
        "majority_class_accuracy": figure(float(np.mean(y_test == majority)),
                                          "ml_majority_baseline"),
        "accuracy_ratio": figure(None if not acc_r or acc_s is None else acc_s / acc_r,
                                 "ml_accuracy_ratio"),
        "macro_f1_ratio": figure(None if not f1_r or f1_s is None else f1_s / f1_r,
                                 "ml_macro_f1_ratio"),
    }


# -- DP aggregates vs true counts ----------------------------------------------------------
def _aggregate_arrays(aggregates: object, real: EncodedTable
                      ) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per length: (columns (n, ℓ), codes (n, ℓ), released counts (n,)).

    Accepted forms: an ``AggregateRelease`` (its ``combinations``/``counts`` arrays, no Python
    loop per combination); an object with ``iter_counts()`` or ``items()`` or an iterable of
    ``(attrs, count)`` with ``attrs`` a tuple of ``(column_index, code)``; or an object with
    ``to_frame()`` whose ``selections`` are SDS strings ``"name:label;name:label"``.
    """
    combos = getattr(aggregates, "combinations", None)
    counts = getattr(aggregates, "counts", None)
    if isinstance(combos, dict) and isinstance(counts, dict):
        out = {}
        for ell, c in combos.items():
            c = np.asarray(c, dtype=np.int64).reshape(-1, int(ell), 2)
            if c.shape[0]:
                out[int(ell)] = (c[:, :, 0], c[:, :, 1], np.asarray(counts[ell], dtype=float))
        return out
    if hasattr(aggregates, "iter_counts"):
        pairs = list(aggregates.iter_counts())
    elif hasattr(aggregates, "to_frame"):
        frame = aggregates.to_frame()
        label_code = {}
        for j, d in enumerate(real.domains):
            for c, lab in enumerate(d.labels):
                label_code[f"{d.name}:{lab}"] = (j, c)
            if d.kind == "set_member":  # SDS writes a set member as "<source>:<value>"
                label_code[f"{d.source}:{d.name.split('=', 1)[-1]}"] = (j, 0)
        pairs = []
        for sel, cnt in zip(frame["selections"].astype(str), frame["protected_count"],
                            strict=True):
            if sel == "record_count":
                continue
            try:
                pairs.append((tuple(label_code[p] for p in sel.split(";") if p), cnt))
            except KeyError:
                continue  # a selection outside the public domains: not comparable
    elif hasattr(aggregates, "items"):
        pairs = list(aggregates.items())
    else:
        pairs = list(aggregates)  # type: ignore[call-overload]
    by_len: dict[int, list] = {}
    for attrs, cnt in pairs:
        attrs = tuple(sorted((int(c), int(v)) for c, v in attrs))
        by_len.setdefault(len(attrs), []).append((attrs, int(cnt)))
    out = {}
    for ell, rows in by_len.items():
        if ell == 0:
            continue
        arr = np.array([r[0] for r in rows], dtype=np.int64).reshape(-1, ell, 2)
        out[ell] = (arr[:, :, 0], arr[:, :, 1], np.array([r[1] for r in rows], dtype=float))
    return out


def aggregate_error(aggregates: object, real: EncodedTable) -> dict:
    """Error of released (noisy, thresholded) aggregate counts against true counts, by length.

    Private side only (true counts). Combinations are grouped by column set, and each set's
    true counts come from one vectorised key count and ``searchsorted`` lookup.
    """

    # The aggregate release's own counter: dense tables in bounded batches, sorted keys for
    # large domains (never a table per column set held at once).
    counter = NumpyBackend(real).combination_counter(None, None)
    per_len: dict[int, dict[str, list]] = {}
    for ell, (ccols, ccodes, released) in sorted(_aggregate_arrays(aggregates, real).items()):
        true = counter.combination_counts(ccols, ccodes)[0].astype(np.float64)
        per_len[ell] = {"true": [true], "released": [released]}
    by_length = []
    for length in sorted(per_len):
        t = np.concatenate(per_len[length]["true"])
        r = np.concatenate(per_len[length]["released"])
        err = np.abs(r - t)
        by_length.append({
            "length": length,
            "released_combinations": int(t.size),
            "mean_absolute_error": figure(float(err.mean()), "aggregate_mean_absolute_error"),
            "rmse": figure(float(np.sqrt(np.mean(err**2))), "aggregate_rmse"),
            "max_absolute_error": figure(float(err.max()), "aggregate_max_absolute_error"),
            "mean_relative_error": figure(float(np.mean(err / np.maximum(t, 1.0))),
                                          "aggregate_mean_relative_error"),
            "released_absent_in_real": figure(int((t == 0).sum()), "aggregate_fabricated"),
        })
    record_count = getattr(aggregates, "record_count", None)
    return {
        "by_length": by_length,
        "record_count_error": figure(
            None if record_count is None else abs(int(record_count) - real.n_records),
            "aggregate_record_count_error"),
    }
