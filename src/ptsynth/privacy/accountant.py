r"""zCDP accounting inside, (ε, δ) at the edges; check-then-spend before any data is touched.

Why zCDP: Gaussian-noise measurements compose additively in ρ (ρ-zCDP, Bun & Steinke 2016), which
is far tighter than composing (ε, δ) guarantees. Users state (ε, δ); we convert it once to a ρ
budget, spend ρ per measurement, and convert back for reports.

Privacy unit and neighbouring relation
--------------------------------------
One **person**: with a subject id, all of a person's rows are merged into one record upstream,
so the guarantee protects a whole person. Neighbouring datasets differ by **adding or removing
one person's record** (unbounded DP). Sensitivities passed to the mechanisms must be computed
under this relation.

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
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
from scipy.optimize import minimize_scalar

from ptsynth.errors import BudgetExceededError
from ptsynth.privacy.mechanisms import (
    sample_discrete_gaussian,
    sample_discrete_laplace,
    sample_exponential_mechanism,
)
from ptsynth.privacy.random import RandomSource

__all__ = [
    "CONVERSION",
    "NEIGHBOURING",
    "PRIVACY_UNIT",
    "Accountant",
    "delta_from_rho_epsilon",
    "epsilon_from_rho_delta",
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


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Accountant:
    """Holds a release's (ε, δ) target as ρ, checks every spend first, records every measurement.

    Every mechanism call is *check-then-spend*: the cost is checked against the remaining budget
    (raising :class:`~ptsynth.errors.BudgetExceededError` before the data is looked at), then the
    noise is drawn from ``rng`` and a :class:`~ptsynth.privacy.ledger.LedgerEntry` is appended.
    """

    def __init__(
        self,
        epsilon: float,
        delta: float,
        *,
        rng: RandomSource,
        release_id: str | None = None,
    ) -> None:
        epsilon = float(epsilon)
        if not math.isfinite(epsilon) or epsilon <= 0:
            raise ValueError("epsilon must be finite and positive")
        self.epsilon = epsilon
        self.delta = _check_delta(delta)
        if not isinstance(rng, RandomSource):
            raise TypeError("rng must be a ptsynth.privacy.RandomSource")
        self.rng = rng
        self.release_id = release_id
        self.target_rho = rho_from_epsilon_delta(self.epsilon, self.delta)
        self.entries: list = []
        self._spent = 0.0

    # -- budget state --------------------------------------------------------------------------
    @property
    def spent_rho(self) -> float:
        return self._spent

    @property
    def remaining_rho(self) -> float:
        return max(0.0, self.target_rho - self._spent)

    def __repr__(self) -> str:
        return (
            f"Accountant(epsilon={self.epsilon}, delta={self.delta}, "
            f"spent_rho={self._spent:.6g}/{self.target_rho:.6g}, rng={self.rng.description!r})"
        )

    def check(self, rho: float, query: str) -> None:
        """Raise :class:`BudgetExceededError` if spending ``rho`` would exceed the target."""
        rho = float(rho)
        if not math.isfinite(rho) or rho <= 0:
            raise ValueError(f"query {query!r}: privacy cost rho must be finite and positive")
        if self._spent + rho > self.target_rho * (1 + SPEND_RTOL):
            raise BudgetExceededError(
                f"query {query!r} needs rho={rho:.6g} but only {self.remaining_rho:.6g} of the "
                f"release budget rho={self.target_rho:.6g} (epsilon={self.epsilon}, "
                f"delta={self.delta:g}) remains; nothing was measured"
            )

    def sigma_for(self, rho: float, l2_sensitivity: float) -> float:
        """Discrete-Gaussian σ that costs exactly ``rho`` at L2 sensitivity Δ: Δ/√(2ρ)."""
        rho = float(rho)
        if rho <= 0:
            raise ValueError("rho must be positive")
        return float(l2_sensitivity) / math.sqrt(2.0 * rho)

    def _record(
        self, *, query, mechanism, sensitivity, norm, scale, rho
    ) -> None:
        from ptsynth.privacy.ledger import LedgerEntry

        self._spent += rho
        self.entries.append(
            LedgerEntry(
                index=len(self.entries),
                release_id=self.release_id,
                query=str(query),
                mechanism=mechanism,
                sensitivity=float(sensitivity),
                sensitivity_norm=norm,
                noise_scale=None if scale is None else float(scale),
                rho=float(rho),
                epsilon=epsilon_from_rho_delta(float(rho), self.delta),
                delta=self.delta,
                random_source=self.rng.description,
                seeded=not self.rng.secure,
                time=_utc_now(),
            )
        )

    @staticmethod
    def _as_int_array(values: np.ndarray, query: str) -> np.ndarray:
        arr = np.asarray(values)
        if arr.dtype == bool:
            arr = arr.astype(np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"query {query!r}: values must be an integer array (counts)")
        return arr

    # -- mechanisms ----------------------------------------------------------------------------
    def measure_gaussian(
        self, values: np.ndarray, *, sigma: float, l2_sensitivity: float, query: str
    ) -> np.ndarray:
        """Add discrete Gaussian noise N_Z(0, σ²) to every cell; costs ρ = Δ₂²/(2σ²)."""
        sigma, sens = float(sigma), float(l2_sensitivity)
        if not (math.isfinite(sigma) and sigma > 0 and math.isfinite(sens) and sens > 0):
            raise ValueError(f"query {query!r}: sigma and l2_sensitivity must be positive")
        rho = sens * sens / (2.0 * sigma * sigma)
        self.check(rho, query)
        arr = self._as_int_array(values, query)
        noisy = arr.astype(np.int64) + sample_discrete_gaussian(arr.shape, sigma, self.rng)
        self._record(
            query=query, mechanism="discrete_gaussian", sensitivity=sens, norm="L2",
            scale=sigma, rho=rho,
        )
        return noisy

    def measure_laplace(
        self, values: np.ndarray, *, scale: float, l1_sensitivity: float, query: str
    ) -> np.ndarray:
        """Add discrete Laplace noise (scale b) to every cell; ε = Δ₁/b, costs ρ = ε²/2."""
        scale, sens = float(scale), float(l1_sensitivity)
        if not (math.isfinite(scale) and scale > 0 and math.isfinite(sens) and sens > 0):
            raise ValueError(f"query {query!r}: scale and l1_sensitivity must be positive")
        rho = (sens / scale) ** 2 / 2.0
        self.check(rho, query)
        arr = self._as_int_array(values, query)
        noisy = arr.astype(np.int64) + sample_discrete_laplace(arr.shape, scale, self.rng)
        self._record(
            query=query, mechanism="discrete_laplace", sensitivity=sens, norm="L1",
            scale=scale, rho=rho,
        )
        return noisy

    def select_exponential(
        self, scores: np.ndarray, *, epsilon: float, sensitivity: float, query: str
    ) -> int:
        """Exponential mechanism: index ``i`` with probability ∝ exp(ε·score_i / (2Δ)).

        Gumbel-max driven by the accountant's RandomSource (see
        :func:`~ptsynth.privacy.mechanisms.sample_exponential_mechanism` for the float64
        caveat). Only the chosen index is returned. Costs ρ = ε²/8 (ε-bounded range).
        """
        epsilon, sens = float(epsilon), float(sensitivity)
        if not (math.isfinite(epsilon) and epsilon > 0 and math.isfinite(sens) and sens > 0):
            raise ValueError(f"query {query!r}: epsilon and sensitivity must be positive")
        s = np.asarray(scores, dtype=np.float64).ravel()
        if s.size == 0:
            raise ValueError(f"query {query!r}: no candidates to select from")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"query {query!r}: scores must be finite")
        rho = epsilon * epsilon / 8.0
        self.check(rho, query)
        choice = int(sample_exponential_mechanism(s, epsilon, sens, self.rng)[0])
        self._record(
            query=query, mechanism="exponential_mechanism", sensitivity=sens, norm="score",
            scale=2.0 * sens / epsilon, rho=rho,
        )
        return choice

    # -- ledger --------------------------------------------------------------------------------
    def ledger(self):
        """The release ledger (entries hash-chained, totals converted at the release δ)."""
        from ptsynth.privacy.ledger import Ledger

        return Ledger.from_entries(
            self.entries,
            delta=self.delta,
            target={"epsilon": self.epsilon, "delta": self.delta, "rho": self.target_rho},
            release_id=self.release_id,
        )
