"""Privacy core: exact integer noise, zCDP accounting, the hash-chained budget ledger.

Why one package: every privacy-relevant decision (randomness, noise, cost, conversion, record) is
made here and nowhere else, so it can be reviewed in one place. Other modules measure data only
through an :class:`Accountant`, which checks the budget *before* touching the data and records
every spend in a :class:`Ledger`.
"""

from __future__ import annotations

from ptsynth.privacy.accountant import Accountant
from ptsynth.privacy.ledger import (
    BudgetCheck,
    DatasetLedger,
    Ledger,
    LedgerEntry,
    assert_budget,
    check_budget,
)
from ptsynth.privacy.mechanisms import sample_discrete_gaussian, sample_discrete_laplace
from ptsynth.privacy.random import RandomSource, random_source, secure_random, seeded_random
from ptsynth.privacy.zcdp import (
    delta_from_rho_epsilon,
    epsilon_from_rho_delta,
    exponential_epsilon,
    exponential_rho,
    gaussian_rho,
    gaussian_sigma,
    laplace_rho,
    rho_from_epsilon_delta,
)

__all__ = [
    "Accountant",
    "BudgetCheck",
    "DatasetLedger",
    "Ledger",
    "LedgerEntry",
    "RandomSource",
    "assert_budget",
    "check_budget",
    "delta_from_rho_epsilon",
    "epsilon_from_rho_delta",
    "exponential_epsilon",
    "exponential_rho",
    "gaussian_rho",
    "gaussian_sigma",
    "laplace_rho",
    "random_source",
    "rho_from_epsilon_delta",
    "sample_discrete_gaussian",
    "sample_discrete_laplace",
    "secure_random",
    "seeded_random",
]
