r"""zCDP: the conversions between ρ and (ε, δ), and the privacy cost of each mechanism.

Why a module of its own: planners (``ptsynth release --plan``) and the accountant must compute
the cost of a measurement with the *same* formula, so that the plan equals the spend by
construction. These are pure functions of public parameters (OpenDP's "privacy maps"): they can
be evaluated without running a measurement or touching data.

Conversion (Canonne, Kamath & Steinke 2020, Proposition 12 / Corollary 13)
--------------------------------------------------------------------------
ρ-zCDP implies (ε, δ)-DP for every ε >= 0 with::

    δ(ρ, ε) = min_{α>1} exp((α−1)(αρ−ε)) / (α−1) · (1 − 1/α)^α

and equivalently, for a fixed δ ∈ (0, 1)::

    ε(ρ, δ) = min_{α>1} αρ + (log(1/δ) + (α−1) log(1 − 1/α) − log α) / (α−1)

(both minimised numerically over log(α−1) with a bounded Brent search; the objective is smooth
and unimodal). ``ρ(ε, δ)`` is the largest ρ with ``ε(ρ, δ) <= ε``, found by bisection and
returned from the lower end of the bracket, so the target is never exceeded.
At ε = 1, δ = 1e-9 this gives ρ ≈ 0.0150.

Privacy costs (ρ per measurement)
---------------------------------
* discrete Gaussian, L2 sensitivity Δ₂, scale σ: ρ = Δ₂² / (2σ²)  (CKS 2020, Theorem 14);
* discrete Laplace, L1 sensitivity Δ₁, scale b: ε = Δ₁/b-DP, hence ρ = ε²/2 (Bun & Steinke 2016,
  Proposition 3.3);
* exponential mechanism with parameter ε (selection probabilities ∝ exp(ε·score / (2Δ))):
  ε-bounded range, hence ρ = ε²/8 (Cesar & Rogers 2021, Lemma 3.2).

Privacy unit and neighbouring relation: one **person** (all rows of a person merged into one
record upstream); neighbouring datasets differ by adding or removing one person's record
(unbounded DP). Sensitivities passed to these maps must be computed under this relation.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = [
    "CONVERSION",
    "NEIGHBOURING",
    "PRIVACY_UNIT",
    "delta_from_rho_epsilon",
    "epsilon_from_rho_delta",
    "exponential_epsilon",
    "exponential_rho",
    "gaussian_rho",
    "gaussian_sigma",
    "laplace_rho",
    "rho_from_epsilon_delta",
]

PRIVACY_UNIT = (
    "one person (all rows of a person are merged into one record before any measurement)"
)
NEIGHBOURING = "add/remove one person's record (unbounded differential privacy)"
CONVERSION = (
    "rho-zCDP to (epsilon, delta): Canonne, Kamath & Steinke 2020, Prop. 12 / Cor. 13: "
    "epsilon(rho, delta) = min_{a>1} a*rho + (log(1/delta) + (a-1)*log(1-1/a) - log(a))/(a-1)"
)

#: Relative tolerance when comparing a spend with the remaining budget (float round-off only).
SPEND_RTOL = 1e-12

# search range for log(α − 1)
_LOG_AM1_BOUNDS = (-40.0, 60.0)


def _check_rho(rho: float) -> float:
    rho = float(rho)
    if not math.isfinite(rho) or rho < 0:
        raise ValueError("rho must be finite and non-negative")
    return rho


def _check_delta(delta: float) -> float:
    delta = float(delta)
    if not 0 < delta < 1:
        raise ValueError("delta must be in (0, 1)")
    return delta


def _minimise(f) -> float:
    """Minimum over ``x = log(α−1)`` of ``f(x)``: a coarse grid, then bounded Brent around it."""
    from scipy.optimize import minimize_scalar  # imported here: scipy is slow to import

    xs = np.linspace(*_LOG_AM1_BOUNDS, 201)
    vals = [f(float(x)) for x in xs]
    i = int(np.argmin(vals))
    lo, hi = xs[max(i - 1, 0)], xs[min(i + 1, len(xs) - 1)]
    res = minimize_scalar(
        f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12, "maxiter": 500}
    )
    return float(min(res.fun, vals[i]))


@lru_cache(maxsize=4096)
def epsilon_from_rho_delta(rho: float, delta: float) -> float:
    """ε such that ρ-zCDP implies (ε, δ)-DP (CKS 2020 Cor. 13); 0 for ρ = 0."""
    rho, delta = _check_rho(rho), _check_delta(delta)
    if rho == 0:
        return 0.0
    log_inv_delta = -math.log(delta)

    def eps(x: float) -> float:
        # α = 1 + e^x; log(1 − 1/α) = x − log1p(e^x) and log α = log1p(e^x), stable near α = 1
        am1 = math.exp(x)
        log_a = math.log1p(am1)
        return (1.0 + am1) * rho + (log_inv_delta + am1 * (x - log_a) - log_a) / am1

    return max(0.0, _minimise(eps))


@lru_cache(maxsize=4096)
def delta_from_rho_epsilon(rho: float, epsilon: float) -> float:
    """δ such that ρ-zCDP implies (ε, δ)-DP (CKS 2020 Prop. 12), at most 1."""
    rho = _check_rho(rho)
    epsilon = float(epsilon)
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError("epsilon must be finite and non-negative")
    if rho == 0:
        return 0.0

    def log_delta(x: float) -> float:
        am1 = math.exp(x)
        a = 1.0 + am1
        return am1 * (a * rho - epsilon) - x + a * (x - math.log1p(am1))

    return float(min(1.0, math.exp(min(0.0, _minimise(log_delta)))))


@lru_cache(maxsize=4096)
def rho_from_epsilon_delta(epsilon: float, delta: float) -> float:
    """Largest ρ with ``epsilon_from_rho_delta(ρ, δ) <= ε`` (bisection, lower end returned)."""
    epsilon, delta = float(epsilon), _check_delta(delta)
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError("epsilon must be finite and non-negative")
    if epsilon == 0:
        return 0.0
    lo, hi = 0.0, max(epsilon, 1e-12)
    while epsilon_from_rho_delta(hi, delta) <= epsilon:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if epsilon_from_rho_delta(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return lo


# -- privacy maps: the ρ of one measurement from its public parameters ---------------------------
def gaussian_rho(sigma: float, l2_sensitivity: float = 1.0) -> float:
    """ρ of discrete Gaussian noise of scale σ at L2 sensitivity Δ₂: Δ₂²/(2σ²)."""
    sigma, sens = float(sigma), float(l2_sensitivity)
    if not (math.isfinite(sigma) and sigma > 0 and math.isfinite(sens) and sens > 0):
        raise ValueError("sigma and l2_sensitivity must be positive and finite")
    return sens * sens / (2.0 * sigma * sigma)


def gaussian_sigma(rho: float, l2_sensitivity: float = 1.0) -> float:
    """The discrete-Gaussian σ that costs exactly ρ at L2 sensitivity Δ₂: Δ₂/√(2ρ)."""
    rho = float(rho)
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError("rho must be positive and finite")
    return float(l2_sensitivity) * math.sqrt(1.0 / (2.0 * rho))


def laplace_rho(scale: float, l1_sensitivity: float = 1.0) -> float:
    """ρ of discrete Laplace noise of scale b at L1 sensitivity Δ₁: ε = Δ₁/b, ρ = ε²/2."""
    scale, sens = float(scale), float(l1_sensitivity)
    if not (math.isfinite(scale) and scale > 0 and math.isfinite(sens) and sens > 0):
        raise ValueError("scale and l1_sensitivity must be positive and finite")
    return (sens / scale) ** 2 / 2.0


def exponential_rho(epsilon: float) -> float:
    """ρ of the exponential mechanism with parameter ε (bounded range): ε²/8."""
    epsilon = float(epsilon)
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ValueError("epsilon must be positive and finite")
    return epsilon * epsilon / 8.0


def exponential_epsilon(rho: float) -> float:
    """The exponential mechanism's ε that costs exactly ρ: √(8ρ)."""
    rho = float(rho)
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError("rho must be positive and finite")
    return math.sqrt(8.0 * rho)
