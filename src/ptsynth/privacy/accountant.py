r"""Check-then-spend: the release's (ε, δ) target as ρ, every measurement checked and recorded.

Why zCDP: Gaussian-noise measurements compose additively in ρ (ρ-zCDP, Bun & Steinke 2016), which
is far tighter than composing (ε, δ) guarantees. Users state (ε, δ); we convert it once to a ρ
budget (:mod:`ptsynth.privacy.zcdp`), spend ρ per measurement, and convert back for reports.

Every mechanism call is the one path from a count to noise: the cost (a privacy map of
:mod:`~ptsynth.privacy.zcdp`) is checked against the remaining budget **before** the data is
looked at, then the noise is drawn from the accountant's :class:`RandomSource` and a ledger entry
is appended. ``grep -n "accountant\.\(measure\|select\)"`` finds every place budget is spent.
"""

from __future__ import annotations

import math

import numpy as np

from ptsynth.errors import BudgetExceededError
from ptsynth.privacy.ledger import Ledger, LedgerEntry, utc_date
from ptsynth.privacy.mechanisms import (
    sample_discrete_gaussian,
    sample_discrete_laplace,
    sample_exponential_mechanism,
)
from ptsynth.privacy.random import RandomSource
from ptsynth.privacy.zcdp import (
    PRIVACY_UNIT,
    SPEND_RTOL,
    epsilon_from_rho_delta,
    exponential_rho,
    gaussian_rho,
    gaussian_sigma,
    laplace_rho,
    rho_from_epsilon_delta,
)

__all__ = ["Accountant"]


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
        privacy_unit: str = PRIVACY_UNIT,
    ) -> None:
        epsilon = float(epsilon)
        if not math.isfinite(epsilon) or epsilon <= 0:
            raise ValueError("epsilon must be finite and positive")
        self.epsilon = epsilon
        delta = float(delta)
        if not 0 < delta < 1:
            raise ValueError("delta must be in (0, 1)")
        self.delta = delta
        if not isinstance(rng, RandomSource):
            raise TypeError("rng must be a ptsynth.privacy.RandomSource")
        self.rng = rng
        self.release_id = release_id
        #: What one unit of the neighbouring relation is here (stated in the ledger).
        self.privacy_unit = privacy_unit
        self.target_rho = rho_from_epsilon_delta(self.epsilon, self.delta)
        self.entries: list[LedgerEntry] = []
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
        return gaussian_sigma(rho, l2_sensitivity)

    def _record(
        self, *, query, mechanism, sensitivity, norm, scale, rho
    ) -> None:
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
                time=utc_date(),
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
        rho = _cost(query, gaussian_rho, sigma, sens)
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
        rho = _cost(query, laplace_rho, scale, sens)
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
        rho = exponential_rho(epsilon)
        self.check(rho, query)
        choice = int(sample_exponential_mechanism(s, epsilon, sens, self.rng)[0])
        self._record(
            query=query, mechanism="exponential_mechanism", sensitivity=sens, norm="score",
            scale=2.0 * sens / epsilon, rho=rho,
        )
        return choice

    # -- ledger --------------------------------------------------------------------------------
    def ledger(self) -> Ledger:
        """The release ledger (entries hash-chained, totals converted at the release δ)."""
        return Ledger.from_entries(
            self.entries,
            delta=self.delta,
            target={"epsilon": self.epsilon, "delta": self.delta, "rho": self.target_rho},
            release_id=self.release_id,
            privacy_unit=self.privacy_unit,
        )


def _cost(query: str, privacy_map, scale: float, sensitivity: float) -> float:
    """ρ of one measurement; a bad parameter is a programming error naming the query."""
    try:
        return privacy_map(scale, sensitivity)
    except ValueError as exc:
        raise ValueError(f"query {query!r}: {exc}") from None
