"""Conformance suite: every registered synthesizer keeps the contract the release relies on.

Like scikit-learn's ``check_estimator``: parametrised over :mod:`ptsynth.synth.registry`, so a new
synthesizer is checked as soon as it is registered. The contract: records are read only through
a counting backend; noise is drawn only inside the Accountant; the spend never exceeds the
target and equals the plan; sampling is repeatable and free; domains are preserved; a seeded fit
is reproducible; nothing works before ``fit``; option typos are config errors naming the key.
"""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import numpy as np
import pytest

import ptsynth.privacy.accountant as accountant_module
from ptsynth.counting import NumpyBackend
from ptsynth.errors import ConfigError, NotFittedError
from ptsynth.privacy import Accountant, seeded_random
from ptsynth.synth import registry
from ptsynth.synth.base import Synthesizer
from ptsynth.table import EncodedTable
from synthetic_tables import make_table

SRC = Path(__file__).resolve().parents[2] / "src" / "ptsynth"
NOISE = ("sample_discrete_gaussian", "sample_discrete_laplace", "sample_exponential_mechanism")
#: Small, fast options per synthesizer (the contract does not depend on them).
FAST = {"pgm": {"rounds": 4, "iters": 10, "final_iters": 30}}


def make(name: str, **extra) -> Synthesizer:
    cls = registry.get(name)
    return cls.create(registry.parse_options(name, {**FAST.get(name, {}), **extra}),
                      reporting_length=2, k=5)


@pytest.fixture(params=registry.names())
def name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def table() -> EncodedTable:
    return make_table(3000, 5, seed=11, max_size=5)


class CountingOnly:
    """A backend that forwards the counting protocol and exposes nothing else (no ``table``)."""

    name = "counting-only"

    def __init__(self, table: EncodedTable) -> None:
        self._inner = NumpyBackend(table)
        self.domains = table.domains
        self.calls: list[str] = []

    def record_count(self) -> int:
        self.calls.append("record_count")
        return self._inner.record_count()

    def marginals(self, column_sets):
        self.calls.append("marginals")
        return self._inner.marginals(column_sets)

    def present_attribute_histogram(self):
        self.calls.append("present_attribute_histogram")
        return self._inner.present_attribute_histogram()

    def recoded(self, maps, domains):
        self.calls.append("recoded")
        return self._inner.recoded(maps, domains)

    def combination_counter(self, max_attributes, rng):
        self.calls.append("combination_counter")
        return self._inner.combination_counter(max_attributes, rng)


class GuardedAccountant(Accountant):
    """Counts its mechanism calls and marks when noise may be drawn."""

    inside = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0

    @contextlib.contextmanager
    def _open(self):
        GuardedAccountant.inside = True
        self.calls += 1
        try:
            yield
        finally:
            GuardedAccountant.inside = False

    def measure_gaussian(self, *args, **kwargs):
        with self._open():
            return super().measure_gaussian(*args, **kwargs)

    def measure_laplace(self, *args, **kwargs):
        with self._open():
            return super().measure_laplace(*args, **kwargs)

    def select_exponential(self, *args, **kwargs):
        with self._open():
            return super().select_exponential(*args, **kwargs)


def test_registered_classes_implement_the_protocol(name, table):
    synth = make(name)
    assert not isinstance(synth, Synthesizer)  # fitted attributes do not exist yet
    synth.fit(table, Accountant(1.0, 1e-6, rng=seeded_random(0)))
    assert isinstance(synth, Synthesizer)
    assert synth.name == name and synth.summary and registry.get(name).Options
    assert type(synth.options) is registry.get(name).Options


def test_noise_is_drawn_only_inside_the_accountant(name, table, monkeypatch):
    for fn in NOISE:
        real = getattr(accountant_module, fn)

        def guarded(*args, _real=real, **kwargs):
            assert GuardedAccountant.inside, "noise drawn outside an Accountant mechanism"
            return _real(*args, **kwargs)

        monkeypatch.setattr(accountant_module, fn, guarded)
    acc = GuardedAccountant(1.0, 1e-6, rng=seeded_random(0))
    make(name).fit(table, acc)
    assert acc.calls == len(acc.entries) >= 2
    assert sum(e.rho for e in acc.entries) == pytest.approx(acc.spent_rho)


def test_no_module_outside_privacy_calls_a_noise_sampler():
    """One grep finds every place budget is spent: the samplers are named only in privacy/."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.parent.name == "privacy":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute | ast.alias):
                ident = getattr(node, "id", None) or getattr(node, "attr", None) or getattr(node, "name", None)
                if ident in NOISE:
                    offenders.append(str(path.relative_to(SRC)))
    assert offenders == []


def test_records_are_read_only_through_the_backend(name, table):
    backend = CountingOnly(table)
    synth = make(name).fit(backend, Accountant(1.0, 1e-6, rng=seeded_random(0)))
    assert backend.calls, "fit never asked the backend for a count"
    assert synth.fitted_domains == table.domains


@pytest.mark.parametrize("share", [1.0, 0.4])
def test_spend_never_exceeds_the_target_and_equals_the_plan(name, table, share):
    acc = Accountant(1.0, 1e-6, rng=seeded_random(1))
    budget = acc.target_rho * share
    synth = make(name)
    synth.fit(table, acc, rho=None if share == 1.0 else budget)
    assert acc.spent_rho <= budget * (1 + 1e-12)
    assert acc.spent_rho == pytest.approx(budget, rel=1e-6)
    plan = type(synth).plan_release(table.domains, rho=budget, options=synth.options,
                                    reporting_length=2, k=5)
    rows = plan.get("steps") or plan.get("lengths")
    planned = sum(r["rho"] for r in rows)
    if "lengths" in plan:  # the record count and the contribution bound are listed per row
        planned += rows[0]["record_count_rho"] + rows[0]["quantile_rho"]
    assert planned == pytest.approx(acc.spent_rho, rel=1e-6)


def test_sampling_is_repeatable_at_no_cost_and_keeps_the_domains(name, table):
    acc = Accountant(1.0, 1e-6, rng=seeded_random(2))
    synth = make(name).fit(table, acc)
    spent, entries = acc.spent_rho, len(acc.entries)
    a = synth.sample(500, seeded_random(7))
    b = synth.sample(500, seeded_random(7))
    c = synth.sample(250, seeded_random(8))
    assert acc.spent_rho == spent and len(acc.entries) == entries
    np.testing.assert_array_equal(a.codes, b.codes)
    assert a.domains == table.domains and c.n_records == 250
    a.validate()
    assert synth.dp_record_count > 0
    assert isinstance(synth.diagnostics, dict)


def test_a_seeded_fit_is_reproducible(name, table):
    runs = []
    for _ in range(2):
        acc = Accountant(1.0, 1e-6, rng=seeded_random(3))
        synth = make(name).fit(table, acc)
        runs.append(([(e.query, e.rho, e.noise_scale) for e in acc.entries],
                     synth.sample(300, seeded_random(4)).codes))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_nothing_works_before_fit(name):
    synth = make(name)
    with pytest.raises(NotFittedError):
        synth.sample(5, seeded_random(0))
    with pytest.raises(NotFittedError):
        _ = synth.dp_record_count


def test_an_option_typo_is_a_config_error_naming_the_key(name):
    with pytest.raises(ConfigError, match=rf"\[release\.{name}\].*typo_knob"):
        registry.parse_options(name, {"typo_knob": 1})
    with pytest.raises(ConfigError, match="unknown synthesizer"):
        registry.get("no-such-synthesizer")
