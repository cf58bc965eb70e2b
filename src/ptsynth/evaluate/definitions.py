"""Names and plain-language definitions of every figure in an evaluation report.

Why a registry: each number in the JSON carries ``"definition": <name>``; the report embeds
this table, so a reader (or a later version of ptsynth) knows exactly what was computed.
"""

from __future__ import annotations

DEFINITIONS: dict[str, str] = {
    **{f"mean_tvd_{o}way": f"mean over the evaluated {o}-column sets of the total variation "
       "distance ½Σ|p−q| between real and synthetic marginal distributions (missing is a value)"
       for o in (1, 2, 3)},
    **{f"max_tvd_{o}way": f"largest {o}-way marginal total variation distance among the "
       "evaluated column sets" for o in (1, 2, 3)},
    **{f"tvd_{o}way": f"total variation distance of one {o}-way marginal" for o in (1, 2, 3)},
    "distinct_real_combinations": "distinct combinations of present attributes (SDS style: "
    "missing = absent) of this length with a real count of at least 1",
    "distinct_synthetic_combinations": "distinct present-attribute combinations of this length "
    "in the synthetic data",
    "preservation": "Σ min(real count, synthetic count × n_real/n_synthetic) / Σ real count, over "
    "real combinations (of a length, or of a real-count bucket)",
    "suppressed_fraction": "real combinations absent from the synthetic data / distinct real "
    "combinations",
    "fabricated_fraction": "synthetic combinations absent from the real data / distinct "
    "synthetic combinations",
    "combination_mean_absolute_error": "mean |real − rescaled synthetic count| over the union of "
    "real and synthetic combinations",
    "rare_real_combinations": "distinct real combinations with count below k",
    "unique_real_combinations": "distinct real combinations with count exactly 1",
    "rare_real_in_synthetic": "rare real combinations (count < k) that also occur in the "
    "synthetic data",
    "unique_real_in_synthetic": "real combinations of count 1 that also occur in the synthetic "
    "data",
    "rare_combination_leakage": "rare real combinations that are also rare (1 ≤ count < k) in "
    "the synthetic data (SDS 'leakage')",
    "min_synthetic_combination_count": "smallest count of any present-attribute combination up to "
    "the reporting length in the synthetic data (computed from the synthetic data only)",
    "synthetic_combinations_below_k": "synthetic combinations up to the reporting length with "
    "count below k (synthetic data only)",
    "tv_complement": "1 − TVD of a categorical column's distribution (SDMetrics TVComplement)",
    "ks_complement_codes": "1 − Kolmogorov–Smirnov statistic on the codes of an ordered column, "
    "missing left out (SDMetrics KSComplement)",
    "correlation_similarity": "1 − |ρ_real − ρ_synthetic|/2, Pearson correlation on codes of two "
    "ordered columns, missing left out (SDMetrics CorrelationSimilarity)",
    "contingency_similarity": "1 − TVD of the 2-way contingency table (SDMetrics "
    "ContingencySimilarity)",
    "mean_column_shape": "mean column-shape score",
    "mean_pair_trend": "mean pair-trend score over the evaluated pairs",
    "quality_score": "mean of the mean column shape and the mean pair trend (SDMetrics style)",
    "ml_accuracy": "accuracy on the real test set",
    "ml_macro_f1": "macro-averaged F1 on the real test set",
    "ml_majority_baseline": "accuracy of always predicting the real training majority class",
    "ml_accuracy_ratio": "accuracy (train synthetic) / accuracy (train real)",
    "ml_macro_f1_ratio": "macro-F1 (train synthetic) / macro-F1 (train real)",
    "aggregate_mean_absolute_error": "mean |released count − true count| over released "
    "combinations of a length",
    "aggregate_rmse": "root mean squared error of released counts",
    "aggregate_max_absolute_error": "largest absolute error of a released count",
    "aggregate_mean_relative_error": "mean |released − true| / max(true, 1)",
    "aggregate_fabricated": "released combinations whose true count is 0",
    "aggregate_record_count_error": "|released record count − true record count|",
    "k_anonymity_level": "size of the smallest equivalence class over the quasi-identifiers "
    "(missing is a value)",
    "equivalence_classes": "number of equivalence classes over the quasi-identifiers",
    "records_in_classes_below_k": "records in equivalence classes smaller than k",
    "classes_below_k": "equivalence classes smaller than k",
    "distinct_l_diversity": "smallest number of distinct sensitive values in an equivalence class",
    "entropy_l_diversity": "exp(smallest entropy of the sensitive value within a class)",
    "t_closeness": "largest EMD between a class's sensitive distribution and the whole table's "
    "(½Σ|p−q| unordered; Σ|cumsum(p−q)|/(m−1) ordered)",
    "classes_with_single_sensitive_value": "equivalence classes whose members all share one "
    "sensitive value (attribute disclosure)",
    "exact_match_rate": "share of synthetic records identical to at least one real record",
    "exact_match_rate_holdout": "share of synthetic records identical to a holdout record",
    "holdout_exact_match_rate": "share of holdout records identical to a real training record "
    "(what chance alone produces)",
    "real_unique_records": "real records that are unique in the real data",
    "real_unique_exact_matches": "real-unique records reproduced exactly in the synthetic data",
    "dcr_median": "median distance to the closest real record (row distance = mean per-column "
    "distance: unordered 0/1, ordered |a−b|/range on codes, missing vs present 1)",
    "dcr_p5": "5th percentile of the distance to the closest real record",
    "dcr_zero_share": "share of query records at distance 0 from a real record",
    "singling_out_risk": "(attack − control)/(1 − control) success of multivariate singling-out "
    "predicates (Anonymeter); the attack rate if no control set",
    "linkability_risk": "(attack − control)/(1 − control) success of linking two halves of a "
    "record through the nearest synthetic record (Anonymeter)",
    "inference_risk": "(attack − control)/(1 − control) success of guessing a secret from the "
    "nearest synthetic record (Anonymeter)",
    "attack_success_rate": "Wilson estimate of the attack's success rate on real training records",
    "baseline_success_rate": "Wilson estimate of random guessing's success rate",
    "control_success_rate": "Wilson estimate of the attack's success on control (holdout) records",
    "records": "number of records",
    "budget_rho": "zCDP ρ spent by one measurement",
    "budget_epsilon": "ε of one measurement at the release δ",
}
