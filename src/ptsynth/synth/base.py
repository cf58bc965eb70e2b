"""The synthesizer protocol: what the release pipeline needs from a synthesizer, and no more.

Why this shape: a synthesizer may only learn from the data through measurements made by an
:class:`~ptsynth.privacy.Accountant` (which checks and records every spend) on counts from a
:class:`~ptsynth.counting.CountingBackend`. After ``fit`` it holds post-processed noisy values
only, so ``sample`` can be called any number of times without further privacy cost. Before
``fit``, everything that needs the fitted model raises :class:`~ptsynth.errors.NotFittedError`.

A synthesizer class also carries its name, a one-line summary, its options dataclass and a
planner (the budget split from public inputs), which is all :mod:`ptsynth.synth.registry` needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from ptsynth.errors import NotFittedError

if TYPE_CHECKING:  # pragma: no cover
    from ptsynth.aggregates import AggregateRelease
    from ptsynth.counting import CountingBackend
    from ptsynth.privacy import Accountant, RandomSource
    from ptsynth.progress import ProgressCallback, ProgressReporter
    from ptsynth.structure import StructuralZero
    from ptsynth.table import ColumnDomain, EncodedTable

__all__ = ["NotFittedError", "Synthesizer"]


@runtime_checkable
class Synthesizer(Protocol):
    #: Short name used by ``--synthesizer``, ``[release.<name>]`` and the manifest.
    name: ClassVar[str]
    #: One line for ``--help`` and ``--plan``.
    summary: ClassVar[str]
    #: The frozen, keyword-only options dataclass (see :mod:`ptsynth.synth.options`).
    Options: ClassVar[type]
    #: The effective options of this instance.
    options: Any

    @classmethod
    def create(cls, options: Any, *, reporting_length: int, k: int,
               structural_zeros: Sequence[StructuralZero] = ()) -> Synthesizer:
        """The synthesizer a release with these options, reporting length and k uses.

        ``structural_zeros``: the schema's impossible combinations (public): never drawn,
        never released, and treated as known zeros when fitting."""
        ...

    @classmethod
    def plan_release(
        cls, domains: Sequence[ColumnDomain], *, rho: float, options: Any,
        reporting_length: int, k: int,
    ) -> dict[str, Any]:
        """The budget split and the noise of each step, from public inputs only."""
        ...

    def fit(
        self, data: CountingBackend | EncodedTable, accountant: Accountant, *,
        rho: float | None = None, progress: ProgressReporter | ProgressCallback | None = None,
    ) -> Synthesizer:
        """Measure ``data`` through ``accountant`` only (``rho``: default all that is left);
        report ``"measure"`` / ``"estimate"`` tasks to ``progress``."""
        ...

    def sample(self, n_records: int, rng: RandomSource) -> EncodedTable:
        """Draw ``n_records`` synthetic records (same public domains as the training data)."""
        ...

    @property
    def dp_record_count(self) -> float:
        """The DP record count (the default number of synthetic records)."""
        ...

    @property
    def diagnostics(self) -> dict[str, Any]:
        """JSON-ready public facts about the fit (DP outputs, public inputs, timings)."""
        ...

    @property
    def aggregates(self) -> AggregateRelease | None:
        """The DP aggregate table the synthesizer measured, if it releases one."""
        ...

    @property
    def fitted_domains(self) -> tuple[ColumnDomain, ...]:
        """The public domains of the fitted data."""
        ...

    def state_document(self) -> dict[str, Any]:
        """The fitted state as JSON-ready values (see :mod:`ptsynth.synth.persist`)."""
        ...

    @classmethod
    def from_state_document(
        cls, options: Any, domains: tuple[ColumnDomain, ...], state: dict[str, Any], *,
        reporting_length: int, k: int,
    ) -> Synthesizer:
        """A fitted synthesizer from :meth:`state_document` (no budget, no data)."""
        ...
