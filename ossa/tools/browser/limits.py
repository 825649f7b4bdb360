"""Budgets that a hostile page cannot stretch: one deadline for a whole fetch or conversion.

Per-operation timeouts restart with every byte, so a server that drips a byte just inside
the timeout holds the browser forever. A :class:`Deadline` is fixed when the work starts,
and every blocking step asks it how long it may still wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class DeadlineExceeded(Exception):
    """The work ran out of its time; the message says what was being done and the budget."""


class Deadline:
    """``seconds`` from now, by ``clock`` (tests pass a fake one)."""

    def __init__(
        self, seconds: float, what: str, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.what = what
        self._clock = clock
        self._end = clock() + seconds

    @property
    def expired(self) -> bool:
        return self._clock() >= self._end

    def remaining(self) -> float:
        """Seconds left (more than zero); raises DeadlineExceeded once there are none."""
        left = self._end - self._clock()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> DeadlineExceeded:
        """The error for this deadline, for a wait that was cut at it."""
        return DeadlineExceeded(f"{self.what} took longer than {self.seconds:g} s")
