"""How an aggregate release spends its budget: a function of public inputs only.

Why apart from the measurement: ``ptsynth release --plan`` must show the split and the noise of
every length without reading a record, and the measurement must spend exactly what the plan
says. Both call :func:`aggregate_budget` and :func:`length_specs`, and every ρ ↔ σ step goes
through the privacy maps of :mod:`ptsynth.privacy.zcdp`, so the plan equals the spend by
construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ptsynth.aggregates.artefact import LengthSpec
from ptsynth.privacy.zcdp import gaussian_rho, gaussian_sigma
from ptsynth.table import ColumnDomain

#: Share of ρ spent on the noisy record count.
RECORD_COUNT_SHARE = 0.01
#: Share of ρ spent on the DP quantile of present attributes per record (the contribution bound).
DEFAULT_QUANTILE_SHARE = 0.01
#: Quantile of the number of present attributes per record used as the contribution bound.
DEFAULT_ATTRIBUTE_QUANTILE = 0.95
#: Default threshold factors c_ℓ in τ_ℓ = max(k, c_ℓ·σ_ℓ), by length (the last repeats).
#: Candidates come from public domains and earlier noisy outputs only, so any τ is
#: post-processing; it trades fabricated (noise-only) combinations against suppressed real
#: ones. Length 1 keeps c = 1 (≈ 16% of zero-count public values pass, out of a few hundred);
#: longer lengths use τ = k: the synthesizer may only emit released combinations, and every
#: suppressed real triple forbids whole records, so on the demo data (32 columns, L = 3)
#: τ = k cut the synthetic data's 1-way TVD from 0.30 to 0.23 at ε = 1 and 0.23 to 0.16 at
#: ε = 4 compared with c = 3 (δ = 1e-6, 19.4k records). The price is an aggregate table in which
#: many long combinations are noise around a true count of 0; pass ``threshold_factor=3`` for an
#: aggregates-only release.
DEFAULT_THRESHOLD_FACTOR: tuple[float, ...] = (1.0, 0.0)
#: Presets of the noise split: weight of σ_ℓ as a function of the length ℓ.
NOISE_SPLITS = {
    "balanced": lambda ell: 1.0,
    "long": lambda ell: 1.0 / ell,
    "short": lambda ell: float(ell),
}
#: Default preset. Δ_ℓ² = C(m, ℓ) grows steeply with ℓ, so equal σ already puts most of ρ on
#: the longest length; "long" (SDS's default, σ_ℓ ∝ 1/ℓ) would multiply σ_1 by L for a few
#: percent less noise at length L.
DEFAULT_NOISE_SPLIT = "balanced"
#: Tolerance kept below the budget so float rounding never exceeds it.
_RHO_SLACK = 1e-9


def _split_weights(noise_split: str | Sequence[float], reporting_length: int) -> np.ndarray:
    if isinstance(noise_split, str):
        try:
            fn = NOISE_SPLITS[noise_split]
        except KeyError:
            raise ValueError(
                f"unknown noise_split {noise_split!r}; use one of {sorted(NOISE_SPLITS)} "
                "or a sequence of positive weights"
            ) from None
        w = np.array([fn(ell) for ell in range(1, reporting_length + 1)], dtype=np.float64)
    else:
        w = np.asarray(list(noise_split), dtype=np.float64)
        if w.shape != (reporting_length,) or np.any(~np.isfinite(w)) or np.any(w <= 0):
            raise ValueError("noise_split weights must be reporting_length positive numbers")
    return w


def _threshold_factors(
    threshold_factor: float | Sequence[float], reporting_length: int
) -> np.ndarray:
    """One factor per length; a shorter sequence repeats its last value."""
    if isinstance(threshold_factor, (int, float)):
        c = np.full(reporting_length, float(threshold_factor))
    else:
        c = np.asarray(list(threshold_factor), dtype=np.float64).ravel()
        if c.size == 0:
            raise ValueError("threshold_factor must be a number or a non-empty sequence")
        c = np.concatenate([c, np.full(max(0, reporting_length - c.size), c[-1])])
        c = c[:reporting_length]
    if np.any(~np.isfinite(c)) or np.any(c < 0):
        raise ValueError("threshold factors must be finite and non-negative")
    return c


def _check_common(reporting_length: int, k: int, rho: float) -> None:
    if reporting_length < 1:
        raise ValueError("reporting_length must be at least 1")
    if k < 1:
        raise ValueError("k must be at least 1")
    if not rho > 0 or not math.isfinite(rho):
        raise ValueError("rho must be a positive finite number")


def length_sensitivity(m: int, ell: int) -> float:
    """L2 sensitivity of all length-ℓ counts when each record holds at most m attributes:
    one record changes at most C(m, ℓ) counts, each by one."""
    return math.sqrt(math.comb(int(m), int(ell)))


def length_specs(
    n_cols: int,
    m: int,
    *,
    rho_lengths: float,
    reporting_length: int,
    k: int,
    noise_split: str | Sequence[float],
    threshold_factor: float | Sequence[float],
) -> list[LengthSpec]:
    """Per-length σ_ℓ, ρ_ℓ, Δ_ℓ = √C(m, ℓ), τ_ℓ for a contribution bound ``m`` and the ρ left
    for the lengths (public inputs, or ``m`` itself a DP output)."""
    w = _split_weights(noise_split, reporting_length)
    c = _threshold_factors(threshold_factor, reporting_length)
    lengths = np.arange(1, reporting_length + 1)
    delta2 = np.array([length_sensitivity(m, int(ell)) ** 2 for ell in lengths])
    live = delta2 > 0  # lengths longer than m hold no combination
    if not live.any():
        raise ValueError("no combination length is possible with these columns")
    s = math.sqrt(float(np.sum(delta2[live] / w[live] ** 2)) / (2.0 * rho_lengths))
    specs = []
    for i, ell in enumerate(lengths):
        ell = int(ell)
        if not live[i]:
            specs.append(LengthSpec(ell, 0.0, math.inf, 0.0, math.inf, 0))
            continue
        sigma = s * w[i]
        specs.append(
            LengthSpec(
                length=ell,
                rho=gaussian_rho(sigma, math.sqrt(delta2[i])),
                sigma=sigma,
                sensitivity=float(math.sqrt(delta2[i])),
                threshold=max(float(k), c[i] * sigma),
                n_column_sets=math.comb(n_cols, ell),
            )
        )
    return specs


@dataclass(frozen=True)
class AggregateBudget:
    """How ρ is divided (public inputs only)."""

    rho_count: float
    sigma_count: float
    rho_quantile: float  # 0 when max_attributes is public
    rho_lengths: float
    m_public: int  # the public cap (given max_attributes, else the number of columns)


def aggregate_budget(
    domains: Sequence[ColumnDomain],
    *,
    rho: float,
    reporting_length: int,
    k: int,
    max_attributes: int | None,
    quantile_share: float,
) -> AggregateBudget:
    _check_common(reporting_length, k, rho)
    n_cols = len(domains)
    if n_cols < 1:
        raise ValueError("no columns")
    if max_attributes is None:
        m = n_cols
        if not 0 < quantile_share < 1:
            raise ValueError("quantile_share must lie strictly between 0 and 1")
    else:
        m = int(max_attributes)
        if m < 1:
            raise ValueError("max_attributes must be at least 1")
        m = min(m, n_cols)
    rho = rho * (1.0 - _RHO_SLACK)
    rho_count = RECORD_COUNT_SHARE * rho
    rho_q = quantile_share * rho if max_attributes is None else 0.0
    return AggregateBudget(
        rho_count=rho_count,
        sigma_count=gaussian_sigma(rho_count),
        rho_quantile=rho_q,
        rho_lengths=rho - rho_count - rho_q,
        m_public=m,
    )


def plan_aggregates(
    domains: Sequence[ColumnDomain],
    *,
    rho: float,
    reporting_length: int,
    k: int = 10,
    max_attributes: int | None = None,
    noise_split: str | Sequence[float] = DEFAULT_NOISE_SPLIT,
    threshold_factor: float | Sequence[float] = DEFAULT_THRESHOLD_FACTOR,
    attribute_quantile: float = DEFAULT_ATTRIBUTE_QUANTILE,
    quantile_share: float = DEFAULT_QUANTILE_SHARE,
) -> list[dict[str, Any]]:
    """Per length ℓ: ρ_ℓ, σ_ℓ (standard deviation of one noisy count), Δ_ℓ (L2 sensitivity),
    τ_ℓ (threshold) and the number of candidate column sets. Reads public inputs only (for
    ``ptsynth release --plan``). The record count takes ``RECORD_COUNT_SHARE`` of ρ besides.

    Without ``max_attributes`` the contribution bound is a DP quantile chosen at release time
    (``quantile_rho`` of ρ); σ, Δ and τ are then shown at the public cap (number of columns):
    upper bounds, the release's own values are smaller (see ``max_attributes_source``).
    """
    bud = aggregate_budget(
        domains,
        rho=rho,
        reporting_length=reporting_length,
        k=k,
        max_attributes=max_attributes,
        quantile_share=quantile_share,
    )
    specs = length_specs(
        len(domains),
        bud.m_public,
        rho_lengths=bud.rho_lengths,
        reporting_length=reporting_length,
        k=k,
        noise_split=noise_split,
        threshold_factor=threshold_factor,
    )
    source = "public" if max_attributes is not None else f"dp_quantile_{attribute_quantile:g}"
    out = []
    for spec in specs:
        d = spec.to_dict()
        del d["n_candidates"], d["n_released"], d["measured"]
        d["max_attributes"] = bud.m_public
        d["max_attributes_source"] = source
        d["max_candidates_length_1"] = int(sum(len(dom.labels) for dom in domains))
        d["record_count_rho"] = bud.rho_count
        d["record_count_sigma"] = bud.sigma_count
        d["quantile_rho"] = bud.rho_quantile
        out.append(d)
    return out
