"""Progress reporting and cancellation for long engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .clock import CLOCK


class Cancelled(Exception):
    """Raised inside the engine when the caller asked to stop."""


@dataclass
class Progress:
    """Progress callbacks handed to the engine.

    ``report(fraction, message)`` receives a fraction in 0..1 and a short message;
    ``is_cancelled()`` is polled at every step, and a true answer raises :class:`Cancelled`.
    Both are optional, so ``Progress()`` is a silent, never-cancelled progress. ``deadline`` (a
    reading of the engine's clock, core/clock.py; None: none) is when the caller's time is up: a search that sees
    :meth:`out_of_time` stops and keeps the best plan it has.
    """

    report: Optional[Callable[[float, str], None]] = None
    is_cancelled: Optional[Callable[[], bool]] = None
    start: float = 0.0
    end: float = 1.0
    deadline: Optional[float] = None
    # shared by a progress and its children: reported fractions never go backwards
    _shared: dict = field(default_factory=dict, repr=False, compare=False)

    def step(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` (0..1 of this progress' span); raise Cancelled if asked to stop."""
        if self.is_cancelled is not None and self.is_cancelled():
            raise Cancelled("cancelled by the user")
        if self.report is not None:
            fraction = min(max(float(fraction), 0.0), 1.0)
            value = max(self.start + (self.end - self.start) * fraction, self._shared.get("last", 0.0))
            self._shared["last"] = value
            self.report(value, message)

    def check(self) -> None:
        """Raise Cancelled if the caller asked to stop (no report)."""
        if self.is_cancelled is not None and self.is_cancelled():
            raise Cancelled("cancelled by the user")

    def out_of_time(self) -> bool:
        """The deadline has passed."""
        return self.deadline is not None and CLOCK() >= self.deadline

    def sub(self, start: float, end: float) -> Progress:
        """Return a child whose 0..1 maps to ``start..end`` of this progress."""
        span = self.end - self.start
        return Progress(
            report=self.report,
            is_cancelled=self.is_cancelled,
            start=self.start + span * start,
            end=self.start + span * end,
            deadline=self.deadline,
            _shared=self._shared,
        )

    def until(self, deadline: Optional[float]) -> Progress:
        """This progress with ``deadline`` (the earlier one, when it has one already)."""
        if deadline is None or (self.deadline is not None and self.deadline <= deadline):
            return self
        return Progress(report=self.report, is_cancelled=self.is_cancelled, start=self.start, end=self.end,
                        deadline=deadline, _shared=self._shared)

    def quiet(self) -> Progress:
        """A child that reports nothing but is cancelled and runs out of time with this one."""
        return Progress(is_cancelled=self.is_cancelled, deadline=self.deadline)


def ensure_progress(progress: Optional[Progress]) -> Progress:
    """Return ``progress`` or a silent one."""
    return progress if progress is not None else Progress()
