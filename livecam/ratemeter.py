"""Events per second over a sliding window (source fps, display fps, prediction rate)."""

from __future__ import annotations

import threading
from collections import deque


class RateMeter:
    """Counts ticks and reports their rate over the last ``window`` seconds.

    One thread ticks, any thread reads::

        meter = RateMeter()
        meter.tick(clock())          # once per frame
        meter.rate(clock())          # e.g. 29.8

    The rate is measured from the oldest tick in the window to ``now``, so it falls towards
    zero when ticks stop instead of freezing at the last value.
    """

    def __init__(self, window: float = 2.0, max_ticks: int = 10_000) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self._window = window
        self._lock = threading.Lock()
        self._ticks: deque[float] = deque(maxlen=max_ticks)

    def tick(self, t: float) -> None:
        """Record one event at time ``t`` (same clock as ``rate``)."""
        with self._lock:
            self._ticks.append(t)
            self._prune(t)

    def rate(self, now: float) -> float:
        """Events per second over the window ending at ``now``; 0.0 with fewer than two ticks."""
        with self._lock:
            self._prune(now)
            if len(self._ticks) < 2:
                return 0.0
            span = now - self._ticks[0]
            return (len(self._ticks) - 1) / span if span > 0 else 0.0

    def _prune(self, now: float) -> None:
        cutoff = now - self._window
        while self._ticks and self._ticks[0] < cutoff:
            self._ticks.popleft()
