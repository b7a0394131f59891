"""Exponential backoff with jitter, for reconnecting sources and retrying the API."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, with +-``jitter`` spread (never above ``maximum``).

    Call :meth:`next_delay` after each failure and :meth:`reset` after a success.
    """

    initial: float = 0.25
    maximum: float = 5.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)
    _failures: int = 0

    def next_delay(self, at_least: float = 0.0) -> float:
        """The delay before the next attempt (never below ``at_least``, e.g. a Retry-After)."""
        base = min(self.maximum, self.initial * (2**self._failures))
        self._failures += 1
        spread = base * self.jitter
        return float(max(at_least, min(self.maximum, base + self.rng.uniform(-spread, spread))))

    def reset(self) -> None:
        self._failures = 0

    @property
    def failures(self) -> int:
        """Consecutive failures since the last reset."""
        return self._failures
