"""Run statistics: thread-safe counters while the run goes, a frozen :class:`RunStats` at its end.

The sections and their JSON form are in :mod:`livecam.stats`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from livecam.cost.credits import credits_for
from livecam.percentiles import percentiles
from livecam.stats import MotionStats, Percentiles, RunStats, SourceSummary, write_json

MAX_CLASS_NAMES = 200
"""Distinct class names counted; any more (a hostile API inventing names) count as "(other)"."""

__all__ = [
    "MotionStats",
    "Percentiles",
    "RunStats",
    "SourceSummary",
    "StatsRecorder",
    "write_json",
]

SAMPLES_KEPT = 20_000
"""Latency and age samples kept for percentiles; older ones are dropped, so memory is bounded."""


class StatsRecorder:
    """The counters of a run as it goes. Every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.source_frames = 0
        self.displayed_frames = 0
        self.requests_sent = 0
        self.responses_ok = 0
        self.responses_failed = 0
        self.stale_responses = 0
        self.bytes_sent = 0
        self.errors: dict[str, int] = {}
        self.detections: dict[str, int] = {}
        self.estimated_credits = 0.0
        self._latency_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._age_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._lag_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self.started_at: float | None = None
        self.ended_at: float | None = None

    def request_sent(self, nbytes: int) -> None:
        with self._lock:
            self.requests_sent += 1
            self.bytes_sent += nbytes

    def response_ok(
        self, latency_s: float, stale: bool, classes: Iterable[str] = (), processing_s: float | None = None
    ) -> None:
        """Count an answer, its latency, the classes it detected and what it would cost on hosted Roboflow."""
        with self._lock:
            self.estimated_credits += credits_for(processing_s)
            for name in classes:
                if name not in self.detections and len(self.detections) >= MAX_CLASS_NAMES:
                    name = "(other)"
                self.detections[name] = self.detections.get(name, 0) + 1
            self.responses_ok += 1
            self.stale_responses += int(stale)
            self._latency_ms.append(latency_s * 1000)

    def response_failed(self, kind: str) -> None:
        with self._lock:
            self.responses_failed += 1
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def frame_displayed(self, prediction_age_s: float | None) -> None:
        with self._lock:
            self.displayed_frames += 1
            if prediction_age_s is not None:
                self._age_ms.append(prediction_age_s * 1000)

    def frame_lag(self, lag_s: float) -> None:
        """A shown frame's lag: display time minus the frame's arrival time."""
        with self._lock:
            self._lag_ms.append(lag_s * 1000)

    def latency_ms(self) -> tuple[float | None, float | None]:
        """(p50, p95) request latency so far."""
        with self._lock:
            p50, p95 = percentiles(self._latency_ms, 50, 95)
        return p50, p95

    def snapshot(self) -> RunStats:
        """The counters as a :class:`RunStats`; the caller adds what the recorder does not count."""
        with self._lock:
            start = self.started_at or 0.0
            duration = max(0.0, (self.ended_at or start) - start)
            lat50, lat95 = percentiles(self._latency_ms, 50, 95)
            age50, age95 = percentiles(self._age_ms, 50, 95)
            lag50, lag95 = percentiles(self._lag_ms, 50, 95)
            return RunStats(
                source_frames=self.source_frames,
                displayed_frames=self.displayed_frames,
                source_fps=_rate(self.source_frames, duration),
                display_fps=_rate(self.displayed_frames, duration),
                requests_sent=self.requests_sent,
                responses_ok=self.responses_ok,
                responses_failed=self.responses_failed,
                stale_responses=self.stale_responses,
                prediction_rate=_rate(self.responses_ok, duration),
                request_latency_ms=Percentiles.rounded(lat50, lat95),
                prediction_age_ms=Percentiles.rounded(age50, age95),
                stream_lag_ms=Percentiles.rounded(lag50, lag95),
                bytes_sent=self.bytes_sent,
                duration_s=round(duration, 3),
                errors=dict(self.errors),
                detections=dict(sorted(self.detections.items(), key=lambda kv: -kv[1])),
                requests_per_minute=round(self.requests_sent * 60 / duration, 2) if duration > 0 else 0.0,
                estimated_credits=round(self.estimated_credits, 6),
            )


def _rate(count: int, duration: float) -> float:
    return round(count / duration, 3) if duration > 0 else 0.0
