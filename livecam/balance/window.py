"""One server's in-flight window: how many requests it may have open, and how far apart to send.

With K requests allowed in flight, sending K frames at once would make K answers arrive at once
and then nothing for a whole round trip. Spreading the sends over the round trip (one every
latency / K) refreshes the boxes K times as often for the same number of requests.

In adaptive mode (``--in-flight auto``) K itself is learnt, the way TCP Vegas sizes its window:
it grows by one for every answer that comes back about as fast as the best one seen (doubling
every round trip) until the first sign of queueing, then by one per round trip; it halves
when round trips grow well beyond the best one, because then requests are queueing for a busy
model and sending more would only make every answer older. Sends never come faster than the
``floor`` (one per frame), so on a fast link it settles at one request per frame.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

_SMOOTHING = 0.2
QUEUEING = 1.3
"""A round trip this many times the best one seen means the server is queueing."""
_CLEAR = 1.2
"""Below this many times the best round trip, the window may grow."""
_BEST_DRIFT = 1.01
"""The best round trip creeps up by 1% an answer, so a lasting change of route is relearned."""
_FIRST_WINDOW = 2.0
_FIRST_SPACING = 0.5
"""Adaptive mode before any answer: the round trip is unknown, so start slowly."""


class InFlightWindow:
    """Requests open at once and the spacing between sends, from the round trips seen. Thread-safe.

    Args:
        in_flight: requests open at once (in adaptive mode, the most the window may grow to).
        floor: the shortest spacing (one frame interval in adaptive mode).
        adaptive: learn the window from round trips instead of using ``in_flight``.
        queueing: a round trip this many times the best one halves the learnt window; a higher
            value keeps a short queue at the server (more throughput, older answers).
        calm: after halving, let a round trip pass before halving again for queueing: the
            answers already queued report the old window, not the new one (throughput); without
            it every slow answer halves (the freshest answers, for live video).
        clock: monotonic time (for ``calm``).
    """

    def __init__(
        self,
        in_flight: int,
        floor: float = 0.0,
        adaptive: bool = False,
        queueing: float = QUEUEING,
        calm: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self._max_window = float(in_flight)
        self._floor = floor
        self._adaptive = adaptive
        self._queueing = queueing
        self._clear = _CLEAR * queueing / QUEUEING
        self._calm = calm
        self._clock = clock
        self._calm_until = 0.0
        self._lock = threading.Lock()
        self._latency: float | None = None
        self._best: float | None = None
        self._window = min(_FIRST_WINDOW, self._max_window) if adaptive else self._max_window
        self._slow_start = True

    @property
    def adaptive(self) -> bool:
        """Whether the window is learnt (``--in-flight auto``)."""
        return self._adaptive

    @property
    def floor(self) -> float:
        """The shortest spacing between sends."""
        return self._floor

    @property
    def window(self) -> float:
        """Requests the window aims to have open at once."""
        with self._lock:
            return self._window

    @property
    def limit(self) -> int:
        """Requests that may be open at once now (the window, rounded up)."""
        with self._lock:
            return max(1, math.ceil(self._window - 1e-9))

    @property
    def latency(self) -> float | None:
        """The smoothed round trip in seconds, once one is known."""
        with self._lock:
            return self._latency

    def spacing(self) -> float:
        """Seconds to wait after one send before the next."""
        with self._lock:
            if self._latency is None:
                return max(self._floor, _FIRST_SPACING) if self._adaptive else self._floor
            if self._window <= 1 and not self._adaptive:
                return self._floor  # one worker is spaced by its own round trip
            return max(self._floor, self._latency / self._window)

    def answered(self, latency: float) -> None:
        """Record a successful round trip of ``latency`` seconds."""
        with self._lock:
            self._latency = (
                latency if self._latency is None else ((1 - _SMOOTHING) * self._latency + _SMOOTHING * latency)
            )
            self._best = latency if self._best is None else min(latency, self._best * _BEST_DRIFT)
            if not self._adaptive:
                return
            if latency > self._queueing * self._best:
                now = self._clock() if self._calm else 0.0
                if now >= self._calm_until:
                    self._halve()
                    self._calm_until = now + self._latency
            elif self._latency < self._clear * self._best:
                step = 1.0 if self._slow_start else 1.0 / self._window
                self._window = min(self._max_window, self._window + step)

    def refused(self) -> None:
        """The server said it is overloaded (429, 503): halve the window."""
        with self._lock:
            if self._adaptive:
                self._halve()

    def _halve(self) -> None:
        self._slow_start = False
        self._window = max(1.0, self._window / 2)
