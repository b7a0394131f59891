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

With several cameras (one :class:`Feed` each) the workers share the servers among them: of the
cameras with an unsent frame, :class:`~livecam.live.fairness.CameraTurns` picks the one that has
waited longest (or the next of a weighted round robin), and its newest frame is sent. A camera
with nothing new is skipped, so a failed or idle camera leaves its share to the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from livecam.balance.pool import Lease, ServerPool
from livecam.cost.gate import SendGate
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
from livecam.live.fairness import CameraTurns
from livecam.live.slot import Doorbell, LatestSlot, SlotClosed
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.predictions import Predictions
from livecam.workers import Worker, join_all

log = logging.getLogger(__name__)

AnswerHook = Callable[[Frame, Predictions], None]
"""Called with a frame and its fresh answer (in frame pixels), from a sender thread; must return quickly."""

_WAIT_STEP = 0.25


@dataclass(frozen=True)
class Feed:
    """One camera as the senders see it.

    Attributes:
        frames: the camera's frame slot (its capture thread's).
        predictions: where its answers go, newest frame wins.
        stats: its counters (with several cameras they also count into the run's totals).
        on_answer: called with each frame and its answer when the answer is fresh (newer than
            any before it for this camera), oldest first (e.g. the collector of frames worth labelling).
        gate: decides which of its new frames are worth a call (``--send changes``, the request
            budget); None sends its newest frame whenever a server has room.
    """

    frames: LatestSlot[Frame]
    predictions: LatestSlot[Predictions]
    stats: StatsRecorder
    on_answer: Sequence[AnswerHook] = ()
    gate: SendGate | None = None


class SenderPool:
    """``workers`` threads between the cameras' frame slots, the detection servers and their predictions slots.

    Args:
        servers: the detection servers, each with its own in-flight window and backoff.
        feeds: the cameras (one for a single source).
        stop: the run's stop event.
        status: where the "api" line (every server failing) and the "servers" line (some set
            aside) are set.
        workers: threads (at least the requests the servers' windows may have open together).
        turns: how several cameras take turns (default: longest wait first).
    """

    def __init__(
        self,
        servers: ServerPool,
        feeds: Sequence[Feed],
        stop: threading.Event,
        status: StatusBoard,
        *,
        workers: int = 1,
        turns: CameraTurns | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if not feeds:
            raise ValueError("at least one feed")
        self._servers = servers
        self._feeds = list(feeds)
        self._turns = turns or CameraTurns(len(self._feeds))
        self._bell = Doorbell()
        if len(self._feeds) > 1:
            for feed in self._feeds:
                feed.frames.watch(self._bell)
        self._stop = stop
        self._status = status
        self._clock = clock
        self._lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._claimed_seq = [-1] * len(self._feeds)
        self._considered_seq = [-1] * len(self._feeds)
        """Per camera, the newest frame its gate turned down."""
        self._next_send_at = 0.0
        self._logged_kinds: set[str] = set()
        self._answer_lock = threading.Lock()
        self._answered_seq = [-1] * len(self._feeds)
        self._hook_failed = False
        self._threads = [
            Worker(self._serve, f"livecam-sender-{i}", failure="a detection thread failed", on_error=self._crashed)
            for i in range(workers)
        ]
        self.encoder_name: str | None = None
        self.error: BaseException | None = None
        """An unexpected exception that killed a worker; it also sets ``stop`` to end the run."""

    def replace(self, camera: int, feed: Feed) -> None:
        """Send ``camera``'s frames from ``feed`` from now on (a camera given a fresh capture)."""
        with self._claim_lock:
            self._feeds[camera] = feed
            self._claimed_seq[camera] = -1  # the new capture counts its frames from 0
            self._considered_seq[camera] = -1
            with self._answer_lock:
                self._answered_seq[camera] = -1
            if len(self._feeds) > 1:
                feed.frames.watch(self._bell)
        self._bell.ring()

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

    def _crashed(self, exc: BaseException) -> None:
        # Reported by the pipeline as the run's failure; the run ends.
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
                    claimed = self._claim()
                except BaseException:
                    self._servers.cancel(lease)
                    raise
                if claimed is None:
                    self._servers.cancel(lease)
                    continue
                self._send(lease, *claimed)
        except SlotClosed:
            return

    def _claim(self) -> tuple[Feed, int, Frame] | None:
        """The next frame to send, as (feed, camera, frame); None if nothing came in time.

        Raises:
            SlotClosed: every camera has ended and everything was sent.
        """
        with self._claim_lock:
            spacing = self._next_send_at - self._clock()
            if spacing > 0 and self._stop.wait(spacing):
                return None
            if len(self._feeds) == 1:
                camera = 0
                frame = self._feeds[0].frames.wait_newer(self._seen(0), timeout=_WAIT_STEP)
            else:
                camera, frame = self._take_turn()
            if frame is None:
                return None
            gate = self._feeds[camera].gate
            if gate is not None:
                decision = gate.decide(frame)
                if not decision.send:
                    self._considered_seq[camera] = frame.seq
                    if decision.wait_s > 0:
                        self._stop.wait(decision.wait_s)  # the budget's next call; the newest frame then
                    return None
            self._claimed_seq[camera] = frame.seq
            self._next_send_at = self._clock() + self._servers.spacing()
            return self._feeds[camera], camera, frame

    def _seen(self, camera: int) -> int:
        """The newest frame of ``camera`` already sent or turned down by its gate."""
        return max(self._claimed_seq[camera], self._considered_seq[camera])

    def _take_turn(self) -> tuple[int, Frame | None]:
        """The camera whose turn it is and its newest unsent frame, waiting a little for one."""
        rings = self._bell.rings
        for attempt in range(2):
            newest: dict[int, Frame] = {}
            ended = 0
            for camera, feed in enumerate(self._feeds):
                frame = feed.frames.peek()
                if frame is not None and frame.seq > self._seen(camera):
                    newest[camera] = frame
                elif feed.frames.closed:
                    ended += 1
            chosen = self._turns.take({camera: frame.captured_at for camera, frame in newest.items()})
            if chosen is not None:
                return chosen, newest[chosen]
            if ended == len(self._feeds):
                raise SlotClosed
            if attempt == 0:
                self._bell.wait(rings, _WAIT_STEP)
        return 0, None

    def _send(self, lease: Lease, feed: Feed, camera: int, frame: Frame) -> None:
        client = lease.client
        sent_before = client.bytes_sent
        stats = feed.stats
        self._servers.sending(lease)
        try:
            predictions = client.detect(frame.image)
        except DetectionError as exc:
            stats.request_sent(client.bytes_sent - sent_before)
            if feed.gate is not None:
                feed.gate.failed()
            self._failed(lease, exc, stats)
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must not end detection for the whole run
            log.warning("unexpected error while asking for detections; retrying", exc_info=True)
            if feed.gate is not None:
                feed.gate.failed()
            self._failed(lease, ProtocolError(f"unexpected error: {type(exc).__name__}"), stats)
            return
        stats.request_sent(client.bytes_sent - sent_before)
        latency = self._servers.answered(lease)
        answer = predictions.for_frame(frame.seq, frame.captured_at, frame.index)
        fresh = feed.predictions.put(answer)
        stats.response_ok(
            latency,
            stale=not fresh,
            classes=(p.class_name for p in predictions.items),
            processing_s=client.last_processing_s,
        )
        self._log_issues(predictions)
        if fresh and feed.on_answer:
            self._answered(feed, camera, frame, answer)
        self._status.set("api", None)
        self._report_set_aside()

    def _answered(self, feed: Feed, camera: int, frame: Frame, predictions: Predictions) -> None:
        with self._answer_lock:  # two workers' answers reach the hooks in frame order
            if frame.seq <= self._answered_seq[camera]:
                return
            self._answered_seq[camera] = frame.seq
            for hook in feed.on_answer:
                try:
                    hook(frame, predictions)
                except Exception:  # noqa: BLE001 - a failing hook must not end detection
                    if not self._hook_failed:
                        log.warning("an answer hook failed; detection goes on", exc_info=True)
                    self._hook_failed = True

    def _failed(self, lease: Lease, exc: DetectionError, stats: StatsRecorder) -> None:
        kind = _kind(exc)
        delay = self._servers.failed(lease, exc)
        stats.response_failed(kind)
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
