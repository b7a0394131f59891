"""Run statistics: thread-safe counters while the run goes, a frozen :class:`RunStats` at its end.

``RunStats.to_json()`` gives the ``--stats-json`` names of ARCHITECTURE.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livecam.errors import OutputError
from livecam.percentiles import percentiles

MAX_CLASS_NAMES = 200
"""Distinct class names counted; any more (a hostile API inventing names) count as "(other)"."""

SAMPLES_KEPT = 20_000
"""Latency and age samples kept for percentiles; older ones are dropped, so memory is bounded."""


@dataclass(frozen=True)
class Percentiles:
    """p50 and p95 in milliseconds (None without samples)."""

    p50: float | None = None
    p95: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {"p50": self.p50, "p95": self.p95}


@dataclass(frozen=True)
class SourceSummary:
    """The source a run showed."""

    name: str
    width: int
    height: int
    nominal_fps: float
    live: bool


@dataclass(frozen=True)
class RunStats:
    """What one live run did; :meth:`to_json` gives the ``--stats-json`` document.

    Attributes:
        failure: why the run ended early because one of its threads crashed, else None.
        sections: further named sections (e.g. ``motion``, ``servers``), written as they are.
    """

    source_frames: int = 0
    displayed_frames: int = 0
    source_fps: float = 0.0
    display_fps: float = 0.0
    requests_sent: int = 0
    responses_ok: int = 0
    responses_failed: int = 0
    stale_responses: int = 0
    prediction_rate: float = 0.0
    request_latency_ms: Percentiles = field(default_factory=Percentiles)
    prediction_age_ms: Percentiles = field(default_factory=Percentiles)
    bytes_sent: int = 0
    duration_s: float = 0.0
    errors: Mapping[str, int] = field(default_factory=dict)
    detections: Mapping[str, int] = field(default_factory=dict)
    in_flight: int | str = 1
    encoder: str | None = None
    frames_not_shown: int = 0
    reconnects: int = 0
    stream_lag_ms: Percentiles = field(default_factory=Percentiles)
    frames_dropped_to_stay_live: int = 0
    source: SourceSummary | None = None
    failure: str | None = None
    sections: Mapping[str, object] = field(default_factory=dict)

    def with_sections(self, sections: Mapping[str, object]) -> RunStats:
        """The same stats with further named sections (e.g. what a collector saved)."""
        return dataclasses.replace(self, sections={**self.sections, **sections})

    def to_json(self) -> dict[str, Any]:
        """The stats as plain JSON data, under the documented names."""
        data: dict[str, Any] = {
            "source_frames": self.source_frames,
            "displayed_frames": self.displayed_frames,
            "source_fps": self.source_fps,
            "display_fps": self.display_fps,
            "requests_sent": self.requests_sent,
            "responses_ok": self.responses_ok,
            "responses_failed": self.responses_failed,
            "stale_responses": self.stale_responses,
            "prediction_rate": self.prediction_rate,
            "request_latency_ms": self.request_latency_ms.to_json(),
            "prediction_age_ms": self.prediction_age_ms.to_json(),
            "bytes_sent": self.bytes_sent,
            "duration_s": self.duration_s,
            "errors": dict(self.errors),
            "detections": dict(self.detections),
            "in_flight": self.in_flight,
            "encoder": self.encoder,
            "frames_not_shown": self.frames_not_shown,
            "reconnects": self.reconnects,
            "stream_lag_ms": self.stream_lag_ms.to_json(),
            "frames_dropped_to_stay_live": self.frames_dropped_to_stay_live,
        }
        if self.source is not None:
            s = self.source
            data["source"] = {
                "name": s.name,
                "width": s.width,
                "height": s.height,
                "nominal_fps": s.nominal_fps,
                "live": s.live,
            }
        if self.failure is not None:
            data["failure"] = self.failure
        data.update(self.sections)
        return data


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
        self._latency_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._age_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._lag_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self.started_at: float | None = None
        self.ended_at: float | None = None

    def request_sent(self, nbytes: int) -> None:
        with self._lock:
            self.requests_sent += 1
            self.bytes_sent += nbytes

    def response_ok(self, latency_s: float, stale: bool, classes: Iterable[str] = ()) -> None:
        """Count an answer, its latency and the classes it detected."""
        with self._lock:
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

    def snapshot(self, **run: Any) -> RunStats:
        """The counters as a :class:`RunStats`; ``run`` gives the fields the recorder does not count."""
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
                request_latency_ms=Percentiles(_round(lat50), _round(lat95)),
                prediction_age_ms=Percentiles(_round(age50), _round(age95)),
                stream_lag_ms=Percentiles(_round(lag50), _round(lag95)),
                bytes_sent=self.bytes_sent,
                duration_s=round(duration, 3),
                errors=dict(self.errors),
                detections=dict(sorted(self.detections.items(), key=lambda kv: -kv[1])),
                **run,
            )


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (a reader never sees half a file).

    Raises:
        OutputError: the file cannot be written (no permission, disk full, ...).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _rate(count: int, duration: float) -> float:
    return round(count / duration, 3) if duration > 0 else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
