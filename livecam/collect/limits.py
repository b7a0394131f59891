"""How many frames may be saved: token buckets per minute and per hour, and a total.

    limits = SaveLimits(per_minute=10, per_hour=100, total=1000, already=12)
    if limits.take(now):        # a save is reserved
        if not save():
            limits.give_back()  # it did not happen after all (a near-duplicate, a full disk)

Time is passed in (seconds on any steady clock), so tests drive it directly.
"""

from __future__ import annotations

import threading


class TokenBucket:
    """``capacity`` tokens, refilled evenly over ``period`` seconds: a burst, then a steady rate.

    Not thread-safe on its own; :class:`SaveLimits` holds the lock.
    """

    def __init__(self, capacity: int, period: float) -> None:
        if capacity < 1 or period <= 0:
            raise ValueError("a token bucket needs capacity >= 1 and a positive period")
        self.capacity = capacity
        self._rate = capacity / period
        self._tokens = float(capacity)
        self._at: float | None = None

    def available(self, now: float) -> float:
        """Tokens at ``now`` (time never runs backwards here: an earlier ``now`` refills nothing)."""
        if self._at is None:
            self._at = now
        elif now > self._at:
            self._tokens = min(float(self.capacity), self._tokens + (now - self._at) * self._rate)
            self._at = now
        return self._tokens

    def take(self, now: float) -> bool:
        """Use one token if there is one."""
        if self.available(now) < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def refund(self) -> None:
        """Return one token (never above capacity)."""
        self._tokens = min(float(self.capacity), self._tokens + 1.0)


class SaveLimits:
    """The per-minute and per-hour buckets and the total, checked together. Thread-safe.

    Args:
        per_minute, per_hour: saves per sliding minute / hour; 0 means no limit.
        total: items the folder may hold; 0 means no limit.
        already: items the folder already holds (from earlier runs).
    """

    def __init__(self, per_minute: int, per_hour: int, total: int, already: int = 0) -> None:
        self._buckets = [TokenBucket(n, period) for n, period in ((per_minute, 60.0), (per_hour, 3600.0)) if n > 0]
        self._total = total
        self.saved = already
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        """The total is reached: nothing more will be saved in this run."""
        return self._total > 0 and self.saved >= self._total

    def take(self, now: float) -> bool:
        """Count a save at ``now`` if every limit allows it; False (and nothing taken) otherwise."""
        with self._lock:
            if self.exhausted or not all(b.available(now) >= 1.0 for b in self._buckets):
                return False
            for bucket in self._buckets:
                bucket.take(now)
            self.saved += 1
            return True

    def give_back(self) -> None:
        """Undo one :meth:`take`: the save it reserved did not happen."""
        with self._lock:
            self.saved = max(0, self.saved - 1)
            for bucket in self._buckets:
                bucket.refund()
