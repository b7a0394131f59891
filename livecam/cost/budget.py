"""A request budget: at most N calls in any 60 s, spread evenly."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0
MARGIN_S = 0.05
"""The (N+1)th call waits this much past a full window after the first: the server sees each call
a few milliseconds after it is sent, not always the same few, and must count N in any minute too."""


class RequestBudget:
    """Allows at most ``per_minute`` calls in any ``WINDOW_S`` seconds, one every ``60 / per_minute`` s.

    The even spacing alone keeps any 60 s window within the budget; the window of past calls is
    checked as well, so the promise holds whatever the clock does between calls.

    Args:
        per_minute: calls allowed per minute (``--max-requests-per-minute``).
        clock: monotonic seconds.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        if per_minute < 1:
            raise ValueError("the request budget must be at least 1 per minute")
        self.per_minute = per_minute
        self.interval = WINDOW_S / per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: deque[float] = deque(maxlen=per_minute)

    def wait_s(self) -> float:
        """Seconds until the next call is allowed (0: now)."""
        with self._lock:
            return self._wait_locked(self._clock())

    def try_spend(self) -> float:
        """Take a call if allowed now (returns 0); else the seconds to wait, spending nothing."""
        with self._lock:
            now = self._clock()
            wait = self._wait_locked(now)
            if wait <= 0:
                self._calls.append(now)
            return wait

    def _wait_locked(self, now: float) -> float:
        if not self._calls:
            return 0.0
        wait = self._calls[-1] + self.interval - now
        if len(self._calls) == self.per_minute:
            wait = max(wait, self._calls[0] + WINDOW_S + MARGIN_S - now)
        return max(0.0, wait)
