"""The supervised run loop: pipelines are started, watched, and restarted until the process stops.

Usage::

    stop = threading.Event()                        # the process's: signals and the quit keys set it
    supervisor = Supervisor(make_pipeline, display, stop, watchdog_s=10)
    supervisor.run()                                # returns only once ``stop`` is set

Each pipeline gets its own stop event. A :class:`Watchdog` thread sets it when no new frame was
shown for ``watchdog_s`` seconds, or when the process stop is set; the pipeline then tears down
(bounded joins) and the supervisor starts a fresh one. A pipeline that fails to start or raises
is logged in one line (traceback at debug level) and retried with backoff, while the last
frame stays on screen, dimmed, under a status banner.

A capture thread blocked in a read of a hung camera cannot be stopped; it still holds the
device and closes it when the read finally returns. The supervisor keeps such pipelines aside
and waits (with backoff) for them to let the source go before opening it again; when more than
``max_stuck`` are held at once it raises :class:`CaptureStuck` so the service manager restarts
the process. Apart from that, only ``stop`` ends :meth:`Supervisor.run`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import numpy as np

from livecam.backoff import Backoff
from livecam.errors import SourceError
from livecam.frames import Frame, Image
from livecam.kiosk.display import KioskDisplay
from livecam.live.pipeline import LivePipeline
from livecam.live.status import StatusBoard
from livecam.overlay import draw_status
from livecam.ratemeter import RateMeter
from livecam.stats import to_json
from livecam.workers import JOIN_TIMEOUT_S, Worker

log = logging.getLogger(__name__)

PipelineFactory = Callable[[threading.Event], LivePipeline]
"""Builds a fresh, unstarted pipeline that stops when the given event is set."""

STATUS_KEY = "kiosk"
"""The supervisor's own line on its status board."""


class Outcome(Enum):
    """How one pipeline run ended."""

    STOPPED = "stopped"
    """The process is stopping."""
    ENDED = "ended"
    """The source ended (a file played to its end)."""
    STALLED = "stalled"
    """The watchdog saw no new frame for too long."""
    FAILED = "failed"
    """The pipeline could not start or raised."""


class Watchdog:
    """Watches one pipeline from its own thread.

    Every ``tick`` seconds it reads ``progress()`` (frames shown so far) and calls ``on_tick``.
    When ``progress()`` has not changed for ``timeout`` seconds it sets :attr:`stalled` and the
    pipeline's stop event; when the process stop event is set it passes that on too.

    Args:
        progress: a counter that grows while the pipeline works.
        timeout: seconds without progress before the pipeline is stopped.
        process_stop: the process's stop event.
        pipeline_stop: the pipeline's own stop event.
        clock: monotonic seconds.
        tick: how often to look.
        on_tick: called with the time at every look (e.g. to sample rates).
    """

    def __init__(
        self,
        progress: Callable[[], int],
        timeout: float,
        process_stop: threading.Event,
        pipeline_stop: threading.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
        tick: float = 0.25,
        on_tick: Callable[[float], None] | None = None,
    ) -> None:
        self._progress = progress
        self._timeout = timeout
        self._process_stop = process_stop
        self._pipeline_stop = pipeline_stop
        self._clock = clock
        self._tick = tick
        self._on_tick = on_tick
        self._done = threading.Event()
        self._worker = Worker(self._run, "livecam-watchdog")
        self.stalled = False
        """True once the watchdog stopped the pipeline for lack of frames."""

    def start(self) -> None:
        """Start watching."""
        self._worker.start()

    def finish(self) -> None:
        """Stop watching (the pipeline has ended) and join the thread (bounded)."""
        self._done.set()
        if not self._worker.join():
            log.warning("watchdog thread did not stop within %.1f s", JOIN_TIMEOUT_S)

    def _run(self) -> None:
        last = self._progress()
        since = self._clock()
        while not self._done.wait(self._tick):
            now = self._clock()
            if self._on_tick is not None:
                self._on_tick(now)
            if self._process_stop.is_set():
                self._pipeline_stop.set()
                return
            value = self._progress()
            if value != last:
                last, since = value, now
            elif now - since >= self._timeout:
                self.stalled = True
                log.warning("no new frame for %.0f s; restarting the pipeline", now - since)
                self._pipeline_stop.set()
                return


class CaptureStuck(SourceError):
    """Too many capture threads are blocked in reads of the source; the process should restart."""


class _Rates:
    """Frames and detections per second, from the pipeline counters sampled by the watchdog."""

    def __init__(self) -> None:
        self.frames = RateMeter()
        self.detections = RateMeter()
        self._last: tuple[float, int, int] | None = None

    def sample(self, now: float, frames: int, detections: int) -> None:
        if self._last is not None:
            then, last_frames, last_detections = self._last
            _tick_spread(self.frames, then, now, frames - last_frames)
            _tick_spread(self.detections, then, now, detections - last_detections)
        self._last = (now, frames, detections)

    def clear(self) -> None:
        """Start over for a new pipeline (its counters start at zero)."""
        self.frames, self.detections = RateMeter(), RateMeter()
        self._last = None


def _tick_spread(meter: RateMeter, then: float, now: float, count: int) -> None:
    """Tick ``count`` events spread evenly over ``(then, now]`` (they happened between samples)."""
    for i in range(1, count + 1):
        meter.tick(then + (now - then) * i / count)


class Supervisor:
    """Runs pipelines one after another until the process stop event is set.

    Call :meth:`run` on the main thread (OpenCV windows need it).

    Args:
        make_pipeline: builds each pipeline.
        display: the screen shared by every pipeline (it survives restarts).
        stop: the process's stop event; the only way :meth:`run` returns.
        watchdog_s: restart when no new frame was shown for this many seconds.
        backoff: delays between failed attempts (default 1 s doubling to 30 s).
        clock: monotonic seconds.
        tick: how often the watchdog looks and the waiting screen is redrawn.
        blank_size: (width, height) of the picture shown before any frame arrived.
        max_stuck: the most pipelines whose capture still holds the source before
            :meth:`run` gives up with :class:`CaptureStuck`.
        release_backoff: how long to wait for a stuck capture to let the source go before
            opening it again anyway (default 1 s doubling to 30 s).
    """

    def __init__(
        self,
        make_pipeline: PipelineFactory,
        display: KioskDisplay,
        stop: threading.Event,
        *,
        watchdog_s: float = 10.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick: float = 0.25,
        blank_size: tuple[int, int] = (1280, 720),
        max_stuck: int = 3,
        release_backoff: Backoff | None = None,
    ) -> None:
        self._make_pipeline = make_pipeline
        self._display = display
        self._stop = stop
        self._watchdog_s = watchdog_s
        self._backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self._clock = clock
        self._tick = tick
        self._blank_size = blank_size
        self._max_stuck = max_stuck
        self._release_backoff = release_backoff or Backoff(initial=1.0, maximum=30.0)
        self._held: list[LivePipeline] = []
        self._last_frame: Frame | None = None
        self._lock = threading.Lock()
        self._pipeline: LivePipeline | None = None
        self._rates = _Rates()
        self._logged: set[str] = set()
        self._started_at = clock()
        self._reason = ""
        self.status = StatusBoard()
        """The supervisor's own status lines (shown while no pipeline runs)."""
        self.runs = 0
        """Pipelines started."""
        self.restarts = 0
        """Pipelines started after the first."""
        self.outcomes: dict[Outcome, int] = {outcome: 0 for outcome in Outcome}
        """How many runs ended each way."""

    def run(self) -> None:
        """Start, watch and restart pipelines until the process stop event is set.

        Raises:
            CaptureStuck: more than ``max_stuck`` captures are blocked holding the source.
        """
        while not self._stop.is_set():
            self._await_release()
            if self._stop.is_set():
                break
            if self.runs:
                self.restarts += 1
            self.runs += 1
            pipeline_stop = threading.Event()
            pipeline = self._make_pipeline(pipeline_stop)
            outcome, shown = self._run_one(pipeline, pipeline_stop)
            if pipeline.holds_source:
                self._held.append(pipeline)
                log.warning(
                    "pipeline %d: its capture is still blocked reading the source; waiting for it "
                    "to let go before opening the source again",
                    self.runs,
                )
            self.outcomes[outcome] += 1
            if outcome is Outcome.STOPPED or self._stop.is_set():
                break
            if shown and outcome is not Outcome.FAILED:
                self._backoff.reset()
                self.status.set(STATUS_KEY, None)
                continue
            delay = self._backoff.next_delay()
            self.status.set(STATUS_KEY, f"{self._reason} - retrying in {delay:.0f} s")
            self._wait(delay)
        self.status.set(STATUS_KEY, None)

    def stats(self) -> dict[str, Any]:
        """Live figures for ``/stats``: rates, latency, age, status lines; never the API key."""
        with self._lock:
            pipeline = self._pipeline
        now = self._clock()
        fps, detections = self._rates.frames.rate(now), self._rates.detections.rate(now)
        data: dict[str, Any] = {
            "fps": round(fps, 2),
            "detections_per_s": round(detections, 2),
            "latency_ms": None,
            "age_ms": None,
            "status": self.status.lines(),
            "source": None,
            "restarts": self.restarts,
            "uptime_s": round(now - self._started_at, 1),
            "displayed_frames": 0,
        }
        if pipeline is not None:
            progress = pipeline.progress()
            p50, newest = progress.latency_p50_ms, progress.newest
            data["latency_ms"] = None if p50 is None else round(p50, 1)
            data["age_ms"] = None if newest is None else round((now - newest.captured_at) * 1000, 1)
            data["status"] = progress.status + data["status"]
            data["source"] = progress.source_name
            data["displayed_frames"] = progress.displayed_frames
            data["servers"] = [to_json(server) for server in progress.servers]
            if progress.cameras:
                data["cameras"] = [to_json(camera) for camera in progress.cameras]
        return data

    def _run_one(self, pipeline: LivePipeline, pipeline_stop: threading.Event) -> tuple[Outcome, bool]:
        """Run ``pipeline`` to its end; returns how it ended and whether it showed any frame."""
        watchdog = Watchdog(
            lambda: pipeline.displayed_frames,
            self._watchdog_s,
            self._stop,
            pipeline_stop,
            clock=self._clock,
            tick=self._tick,
            on_tick=lambda now: self._sample(pipeline, now),
        )
        self._rates.clear()
        with self._lock:
            self._pipeline = pipeline
        watchdog.start()
        outcome = Outcome.ENDED
        try:
            with pipeline:
                info = pipeline.start()
                self._forget("start")
                self.status.set(STATUS_KEY, None)
                log.info("pipeline %d running: %s", self.runs, info.name)
                pipeline.run()
        except SourceError as exc:
            outcome = Outcome.FAILED
            self._log_once("start", f"cannot start the video: {exc}")
            self._reason = "Camera not available"
        except Exception as exc:  # noqa: BLE001 - a kiosk must survive any pipeline failure; logged, then retried
            outcome = Outcome.FAILED
            log.error("pipeline %d failed: %s: %s", self.runs, type(exc).__name__, exc)
            log.debug("traceback of the pipeline failure", exc_info=True)
            self._reason = "Video stopped after an error"
        finally:
            watchdog.finish()
            with self._lock:
                self._pipeline = None
            progress = pipeline.progress()
            self._last_frame = progress.last_frame or self._last_frame
        shown = progress.displayed_frames > 0
        if self._stop.is_set():
            return Outcome.STOPPED, shown
        if watchdog.stalled:
            self._reason = "No picture from the camera"
            return Outcome.STALLED, shown
        if outcome is Outcome.ENDED:
            self._reason = "Video ended with no picture"
            log.info("the source ended after %d frames; starting it again", progress.displayed_frames)
        return outcome, shown

    def _await_release(self) -> None:
        """Wait (bounded, with backoff) for stuck captures to let the source go.

        Raises:
            CaptureStuck: more than ``max_stuck`` are still holding it.
        """
        self._held = [pipeline for pipeline in self._held if pipeline.holds_source]
        if not self._held:
            self._release_backoff.reset()
            return
        if len(self._held) > self._max_stuck:
            raise CaptureStuck(
                f"{len(self._held)} capture threads are stuck reading the video source and "
                "still hold it; exiting so the service manager restarts livecam (if this "
                "repeats, check the camera, its cable and its driver)"
            )
        delay = self._release_backoff.next_delay()
        self.status.set(STATUS_KEY, "Waiting for the camera to be released")
        self._wait(delay, until=lambda: not any(pipeline.holds_source for pipeline in self._held))
        if any(pipeline.holds_source for pipeline in self._held):
            log.warning(
                "%d earlier capture(s) still hold the source after %.0f s; trying to open it anyway",
                len(self._held),
                delay,
            )

    def _wait(self, delay: float, until: Callable[[], bool] = lambda: False) -> None:
        """Show the last frame with the status banner for ``delay`` s, until ``until()`` or stop."""
        deadline = self._clock() + delay
        while not self._stop.is_set() and not until():
            lines = self.status.lines()
            remaining = deadline - self._clock()
            if lines:
                self._display.show(draw_status(self._background(), lines))
            if remaining <= 0 or self._stop.wait(min(self._tick, remaining)):
                return

    def _background(self) -> Image:
        """The last raw frame, dimmed (no boxes, HUD or old banners), or a blank picture."""
        if self._last_frame is not None:
            return self._last_frame.image // 2
        width, height = self._blank_size
        return np.zeros((height, width, 3), np.uint8)

    def _sample(self, pipeline: LivePipeline, now: float) -> None:
        self._rates.sample(now, pipeline.displayed_frames, pipeline.answers)

    def _log_once(self, kind: str, message: str) -> None:
        """Log a repeating failure once at warning level, then at debug until it changes."""
        key = f"{kind}:{message}"
        if key in self._logged:
            log.debug("%s", message)
            return
        self._forget(kind)
        self._logged.add(key)
        log.warning("%s", message)

    def _forget(self, kind: str) -> None:
        self._logged = {k for k in self._logged if not k.startswith(f"{kind}:")}
