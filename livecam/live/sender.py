"""Sender threads: take the newest unsent frame, ask a detection server, publish the newest answer.

The workers share one claim counter, so each frame is sent at most once and a worker always
takes the newest frame, never a queued stale one. Before claiming a frame a worker takes a lease
on a server with room in its window (:class:`~livecam.balance.pool.ServerPool`: with several
``--api-url``, the newest frame goes to whichever server has room). Sends are spread over the
servers' combined round trip, so answers arrive evenly and the boxes on screen are refreshed
steadily instead of in bursts. Answers go into a :class:`LatestSlot` that refuses one for an
older frame than it holds, whichever server sent it. A failing server is set aside with its own
backoff while the others carry on; only when every server fails does the status line show an
outage, and then the workers wait out the backoff, so an outage never turns into a request storm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from livecam.balance.pool import Lease, ServerPool
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
from livecam.live.slot import LatestSlot, SlotClosed
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.predictions import Predictions
from livecam.workers import join_all

log = logging.getLogger(__name__)

AnswerHook = Callable[[Frame, Predictions], None]
"""Called with a frame and its fresh answer (in frame pixels), from a sender thread; must return quickly."""

_WAIT_STEP = 0.25


class SenderPool:
    """``workers`` threads between the frame slot, the detection servers and the predictions slot.

    Args:
        servers: the detection servers, each with its own in-flight window and backoff.
        frames: the capture thread's slot.
        predictions: where answers go, newest frame wins.
        stop: the run's stop event.
        status: where the "api" line (every server failing) and the "servers" line (some set
            aside) are set.
        stats: counters.
        workers: threads (at least the requests the servers' windows may have open together).
        on_answer: called with each frame and its answer when the answer is fresh (newer than
            any before it), oldest first (e.g. the collector of frames worth labelling).
    """

    def __init__(
        self,
        servers: ServerPool,
        frames: LatestSlot[Frame],
        predictions: LatestSlot[Predictions],
        stop: threading.Event,
        status: StatusBoard,
        stats: StatsRecorder,
        *,
        workers: int = 1,
        on_answer: Sequence[AnswerHook] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._servers = servers
        self._frames = frames
        self._predictions = predictions
        self._stop = stop
        self._status = status
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._claimed_seq = -1
        self._next_send_at = 0.0
        self._logged_kinds: set[str] = set()
        self._on_answer = tuple(on_answer)
        self._answer_lock = threading.Lock()
        self._answered_seq = -1
        self._hook_failed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"livecam-sender-{i}", daemon=True) for i in range(workers)
        ]
        self.encoder_name: str | None = None
        self.error: BaseException | None = None
        """An unexpected exception that killed a worker; it also sets ``stop`` to end the run."""

    @property
    def servers(self) -> ServerPool:
        return self._servers

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float) -> list[str]:
        """Wait for the workers (after ``stop`` is set); returns the names of any still running."""
        self._servers.wake()
        return join_all(self._threads, timeout, clock=self._clock)

    def _work(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # noqa: BLE001 - reported by the pipeline, which then ends the run
            log.exception("a detection thread failed")
            self.error = exc
            self._stop.set()
            self._servers.wake()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    lease = self._servers.acquire(self._stop)
                except LivecamError as exc:
                    log.error("detection is off: %s", exc)
                    self._status.set("api", f"Detection is off: {exc}")
                    return
                if lease is None:
                    return
                if self.encoder_name is None:
                    self.encoder_name = lease.client.encoder.name
                try:
                    frame = self._claim()
                except BaseException:
                    self._servers.cancel(lease)
                    raise
                if frame is None:
                    self._servers.cancel(lease)
                    continue
                self._send(lease, frame)
        except SlotClosed:
            return

    def _claim(self) -> Frame | None:
        with self._claim_lock:
            spacing = self._next_send_at - self._clock()
            if spacing > 0 and self._stop.wait(spacing):
                return None
            frame = self._frames.wait_newer(self._claimed_seq, timeout=_WAIT_STEP)
            if frame is not None:
                self._claimed_seq = frame.seq
                self._next_send_at = self._clock() + self._servers.spacing()
            return frame

    def _send(self, lease: Lease, frame: Frame) -> None:
        client = lease.client
        sent_before = client.bytes_sent
        self._servers.sending(lease)
        try:
            predictions = client.detect(frame.image)
        except DetectionError as exc:
            self._stats.request_sent(client.bytes_sent - sent_before)
            self._failed(lease, exc)
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not end detection for the whole run
            log.warning("unexpected error while asking for detections; retrying", exc_info=True)
            self._failed(lease, ProtocolError(f"unexpected error: {type(exc).__name__}"))
            return
        self._stats.request_sent(client.bytes_sent - sent_before)
        latency = self._servers.answered(lease)
        answer = predictions.for_frame(frame.seq, frame.captured_at, frame.index)
        fresh = self._predictions.put(answer)
        self._stats.response_ok(latency, stale=not fresh, classes=(p.class_name for p in predictions.items))
        self._log_issues(predictions)
        if fresh and self._on_answer:
            self._answered(frame, answer)
        self._status.set("api", None)
        self._report_set_aside()

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

    def _failed(self, lease: Lease, exc: DetectionError) -> None:
        kind = _kind(exc)
        delay = self._servers.failed(lease, exc)
        self._stats.response_failed(kind)
        with self._lock:
            first = kind not in self._logged_kinds
            self._logged_kinds.add(kind)
        if self._servers.all_failing:
            self._status.set(
                "api",
                f"{_headline(exc)} - retrying in {delay:.0f} s" if delay >= 1 else f"{_headline(exc)} - retrying",
            )
            self._status.set("servers", None)
        else:
            self._status.set("api", None)
            self._report_set_aside()
        if first:
            log.warning("%s", exc)
        else:
            log.debug("%s", exc)

    def _report_set_aside(self) -> None:
        aside = self._servers.set_aside()
        if aside and len(aside) < len(self._servers):
            names = ", ".join(aside)
            self._status.set("servers", f"{len(aside)} of {len(self._servers)} detection servers set aside: {names}")
        else:
            self._status.set("servers", None)

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
