"""Sender threads: take the newest unsent frame, ask the API, publish the newest answer.

``K`` workers (``--in-flight K``) share one claim counter, so each frame is sent at most once
and a worker always takes the newest frame, never a queued stale one. With K > 1 the sends are
spread over the round trip (one every latency / K), so answers arrive evenly and the boxes on
screen are refreshed K times per round trip instead of K at once. Answers go into a
:class:`LatestSlot` that refuses one for an older frame than it holds. Failures pause every
worker together with a shared backoff, so an outage never turns into a request storm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from livecam.backoff import Backoff
from livecam.client import DetectionClient
from livecam.errors import (
    AuthError,
    DetectionError,
    HttpStatusError,
    LivecamError,
    ModelNotFoundError,
    ProtocolError,
    ResponseError,
)
from livecam.frames import Frame
from livecam.live.pacing import SendPacer
from livecam.live.slot import LatestSlot, SlotClosed
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.predictions import Predictions

log = logging.getLogger(__name__)

AnswerHook = Callable[[Frame, Predictions], None]
"""Called with a frame and its fresh answer (in frame pixels), from a sender thread; must return quickly."""

_WAIT_STEP = 0.25


class SenderPool:
    """``in_flight`` worker threads between the frame slot and the predictions slot.

    Args:
        make_client: builds one :class:`DetectionClient` per worker (each has its own session).
        frames: the capture thread's slot.
        predictions: where answers go, newest frame wins.
        stop: the run's stop event.
        status: where the "api" status line is set while the API fails.
        stats: counters.
        in_flight: concurrent requests (at most).
        pacer: spaces the sends (default: over the round trip, latency / in_flight apart).
        backoff: shared retry schedule (max delay bounds how soon a recovered API is noticed).
        on_answer: called with each frame and its answer when the answer is fresh (newer than
            any before it), oldest first (e.g. the collector of frames worth labelling).
    """

    def __init__(
        self,
        make_client: Callable[[], DetectionClient],
        frames: LatestSlot[Frame],
        predictions: LatestSlot[Predictions],
        stop: threading.Event,
        status: StatusBoard,
        stats: StatsRecorder,
        *,
        in_flight: int = 1,
        pacer: SendPacer | None = None,
        backoff: Backoff | None = None,
        on_answer: Sequence[AnswerHook] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self._make_client = make_client
        self._frames = frames
        self._predictions = predictions
        self._stop = stop
        self._status = status
        self._stats = stats
        self._clock = clock
        self._backoff = backoff or Backoff(initial=0.25, maximum=1.5)
        self._refused_backoff = Backoff(initial=2.0, maximum=30.0)
        self._lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._claimed_seq = -1
        self._pacer = pacer or SendPacer(in_flight)
        self._next_send_at = 0.0
        self._resume_at = 0.0
        self._logged_kinds: set[str] = set()
        self._on_answer = tuple(on_answer)
        self._answer_lock = threading.Lock()
        self._answered_seq = -1
        self._hook_failed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"livecam-sender-{i}", daemon=True) for i in range(in_flight)
        ]
        self.encoder_name: str | None = None
        self.error: BaseException | None = None
        """An unexpected exception that killed a worker; it also sets ``stop`` to end the run."""

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> list[str]:
        """Wait for the workers (after ``stop`` is set); returns the names of any still running."""
        deadline = self._clock() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        return [t.name for t in self._threads if t.is_alive()]

    def _work(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # noqa: BLE001 - reported by the pipeline, which then ends the run
            log.exception("a detection thread failed")
            self.error = exc
            self._stop.set()

    def _serve(self) -> None:
        try:
            client = self._make_client()
        except LivecamError as exc:
            log.error("detection is off: %s", exc)
            self._status.set("api", f"Detection is off: {exc}")
            return
        self.encoder_name = client.encoder.name
        try:
            while not self._stop.is_set():
                if self._wait_out_backoff():
                    return
                frame = self._claim()
                if frame is not None:
                    self._send(client, frame)
        except SlotClosed:
            return
        finally:
            client.close()

    def _wait_out_backoff(self) -> bool:
        with self._lock:
            delay = self._resume_at - self._clock()
        return delay > 0 and self._stop.wait(delay)

    def _claim(self) -> Frame | None:
        with self._claim_lock:
            spacing = self._next_send_at - self._clock()
            if spacing > 0 and self._stop.wait(spacing):
                return None
            frame = self._frames.wait_newer(self._claimed_seq, timeout=_WAIT_STEP)
            if frame is not None:
                self._claimed_seq = frame.seq
                self._next_send_at = self._clock() + self._pacer.spacing()
            return frame

    def _send(self, client: DetectionClient, frame: Frame) -> None:
        started = self._clock()
        sent_before = client.bytes_sent
        try:
            predictions = client.detect(frame.image)
        except DetectionError as exc:
            self._stats.request_sent(client.bytes_sent - sent_before)
            self._failed(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not end detection for the whole run
            log.warning("unexpected error while asking for detections; retrying", exc_info=True)
            self._failed(ProtocolError(f"unexpected error: {type(exc).__name__}"))
            return
        self._stats.request_sent(client.bytes_sent - sent_before)
        answer = predictions.for_frame(frame.seq, frame.captured_at, frame.index)
        fresh = self._predictions.put(answer)
        latency = self._clock() - started
        self._stats.response_ok(latency, stale=not fresh, classes=(p.class_name for p in predictions.items))
        self._log_issues(predictions)
        if fresh and self._on_answer:
            self._answered(frame, answer)
        with self._lock:
            self._backoff.reset()
            self._refused_backoff.reset()
            self._resume_at = 0.0
        self._pacer.answered(latency)
        self._status.set("api", None)

    def _answered(self, frame: Frame, predictions: Predictions) -> None:
        with self._answer_lock:  # two workers' answers reach the hooks in frame order
            if frame.seq <= self._answered_seq:
                return
            self._answered_seq = frame.seq
            for hook in self._on_answer:
                try:
                    hook(frame, predictions)
                except Exception:  # noqa: BLE001 - a failing hook must not end detection
                    if not self._hook_failed:
                        log.warning("an answer hook failed; detection goes on", exc_info=True)
                    self._hook_failed = True

    def _failed(self, exc: DetectionError) -> None:
        kind = _kind(exc)
        if exc.status in (429, 503):
            self._pacer.refused()
        self._stats.response_failed(kind)
        with self._lock:
            # Outages are retried within 1.5 s so recovery is quick; a refused key or an unknown
            # model will not fix itself in seconds, so those are retried far less often.
            backoff = self._backoff if exc.retryable else self._refused_backoff
            delay = backoff.next_delay(exc.retry_after or 0.0)
            self._resume_at = max(self._resume_at, self._clock() + delay)
            first = kind not in self._logged_kinds
            self._logged_kinds.add(kind)
        self._status.set(
            "api", f"{_headline(exc)} - retrying in {delay:.0f} s" if delay >= 1 else f"{_headline(exc)} - retrying"
        )
        if first:
            log.warning("%s", exc)
        else:
            log.debug("%s", exc)

    def _log_issues(self, predictions: Predictions) -> None:
        new = predictions.issues - self._logged_kinds
        if new:
            with self._lock:
                self._logged_kinds.update(new)
            log.warning("ignored parts of an API answer: %s", ", ".join(sorted(new)))


def _kind(exc: DetectionError) -> str:
    """The ``errors`` key of the stats for ``exc``."""
    if isinstance(exc, ResponseError):
        return "bad_response"
    if isinstance(exc, HttpStatusError):
        return f"http_{exc.status}"
    return "no_answer"


def _headline(exc: DetectionError) -> str:
    if isinstance(exc, AuthError):
        return f"API key rejected (HTTP {exc.status}) - check --api-key"
    if isinstance(exc, ModelNotFoundError):
        return "Model not found (HTTP 404) - check --model"
    if isinstance(exc, ResponseError):
        return "Detection service sent an unusable answer"
    if isinstance(exc, HttpStatusError):
        return f"Detection service error (HTTP {exc.status})"
    return "Detection service unreachable"
