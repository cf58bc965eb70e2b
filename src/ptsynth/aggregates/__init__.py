"""Differentially private aggregate tables (Synthetic Data Showcase's "DP marginals").

Three concepts, one module each: :mod:`~ptsynth.aggregates.plan` (how the budget is split, from
public inputs only), :mod:`~ptsynth.aggregates.measure` (the one place the aggregate release
reads counts and spends budget) and :mod:`~ptsynth.aggregates.artefact` (the released table, its
export and reader); :mod:`~ptsynth.aggregates.combinations` holds the shared combination
structure.
"""

from __future__ import annotations

from ptsynth.aggregates.artefact import AggregateRelease, LengthSpec
from ptsynth.aggregates.combinations import CombinationIndex, attribute_offsets
from ptsynth.aggregates.measure import dp_max_attributes, measure_aggregates
from ptsynth.aggregates.plan import (
    DEFAULT_ATTRIBUTE_QUANTILE,
    DEFAULT_NOISE_SPLIT,
    DEFAULT_QUANTILE_SHARE,
    DEFAULT_THRESHOLD_FACTOR,
    NOISE_SPLITS,
    RECORD_COUNT_SHARE,
    length_sensitivity,
    plan_aggregates,
)

__all__ = [
    "DEFAULT_ATTRIBUTE_QUANTILE",
    "DEFAULT_NOISE_SPLIT",
    "DEFAULT_QUANTILE_SHARE",
    "DEFAULT_THRESHOLD_FACTOR",
    "NOISE_SPLITS",
    "RECORD_COUNT_SHARE",
    "AggregateRelease",
    "CombinationIndex",
    "LengthSpec",
    "attribute_offsets",
    "dp_max_attributes",
    "length_sensitivity",
    "measure_aggregates",
    "plan_aggregates",
]
