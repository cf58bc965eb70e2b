"""Progress of long steps, as events a caller may render (a terminal bar, a notebook, a log).

Why a seam and not prints: the library must stay silent unless asked, the CLI shows rich bars
only on a terminal, and a notebook or a web service wants the same events through a callback.
Every long step reports through a :class:`ProgressReporter`; the default one does nothing.

Events never carry a value read from a sensitive record: only step names, counts of rows or
rounds processed, and public parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: The steps of a release, in order (``task`` of an event).
STEPS = ("read", "measure", "estimate", "sample", "protect", "evaluate", "write", "showcase")


@dataclass(frozen=True)
class ProgressEvent:
    """One update of a task.

    Attributes:
        task: the step (one of :data:`STEPS`, or another short name).
        message: what is happening, for a person.
        completed: units done so far (``None``: unknown).
        total: units expected (``None``: unknown).
        unit: what a unit is (``"rows"``, ``"rounds"``, ``"steps"``, …).
        finished: the task has ended.
        elapsed: seconds since the task started.
    """

    task: str
    message: str
    completed: float | None = None
    total: float | None = None
    unit: str = ""
    finished: bool = False
    elapsed: float = 0.0

    @property
    def rate(self) -> float | None:
        """Units per second so far (``None`` when unknown)."""
        if self.completed is None or self.elapsed <= 0:
            return None
        return self.completed / self.elapsed


ProgressCallback = Callable[[ProgressEvent], None]


class Task:
    """A running task: :meth:`advance` / :meth:`update` send events to the callback."""

    def __init__(self, reporter: ProgressReporter, name: str, message: str,
                 total: float | None, unit: str) -> None:
        self._reporter, self.name, self.message = reporter, name, message
        self.total, self.unit = total, unit
        self.completed: float | None = 0.0 if total is not None else None
        self._start = time.perf_counter()

    def _emit(self, finished: bool = False) -> None:
        self._reporter.emit(ProgressEvent(
            self.name, self.message, self.completed, self.total, self.unit, finished,
            time.perf_counter() - self._start,
        ))

    def advance(self, amount: float = 1.0, *, message: str | None = None) -> None:
        self.completed = (self.completed or 0.0) + amount
        if message is not None:
            self.message = message
        self._emit()

    def finish(self, *, message: str | None = None) -> None:
        """End the task (a :meth:`ProgressReporter.task` block does this itself)."""
        if message is not None:
            self.message = message
        self._emit(finished=True)

    def update(self, *, completed: float | None = None, total: float | None = None,
               message: str | None = None) -> None:
        if completed is not None:
            self.completed = completed
        if total is not None:
            self.total = total
        if message is not None:
            self.message = message
        self._emit()


class ProgressReporter:
    """Sends :class:`ProgressEvent` s to ``callback`` (``None``: a silent reporter)."""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self.callback = callback

    @property
    def enabled(self) -> bool:
        return self.callback is not None

    def emit(self, event: ProgressEvent) -> None:
        if self.callback is not None:
            self.callback(event)

    def start(self, name: str, message: str, *, total: float | None = None,
              unit: str = "") -> Task:
        """Start a task; call its :meth:`Task.finish` at the end."""
        task = Task(self, name, message, total, unit)
        task._emit()
        return task

    @contextmanager
    def task(self, name: str, message: str, *, total: float | None = None,
             unit: str = "") -> Iterator[Task]:
        """``with reporter.task("read", "reading records", unit="rows") as t: t.advance(n)``."""
        task = self.start(name, message, total=total, unit=unit)
        try:
            yield task
        finally:
            task.finish()


#: The reporter used when none is given: every call is a no-op.
SILENT = ProgressReporter(None)


def reporter(progress: ProgressReporter | ProgressCallback | None) -> ProgressReporter:
    """A reporter from a reporter, a bare callback or ``None``."""
    if progress is None:
        return SILENT
    if isinstance(progress, ProgressReporter):
        return progress
    return ProgressReporter(progress)
