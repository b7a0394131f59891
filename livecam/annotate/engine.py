"""File annotation: one reader, K request workers, one writer that keeps the input's order.

    stop = threading.Event()
    annotator = Annotator(VideoInput(path), VideoOutput(out, fps, size),
                          lambda: ApiDetector(api), AnnotateOptions(in_flight=8), stop)
    result = annotator.run()

The reader decodes frames as fast as the window lets it; the workers each own a
:class:`~livecam.client.DetectionClient` (their own keep-alive connection) and retry with
backoff; the writer (the calling thread) draws and writes frames strictly in input order.
At most :attr:`AnnotateOptions.capacity` frames are held in memory at any time.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from livecam.annotate.jsonl import ClassIds, JsonLinesWriter, frame_record
from livecam.annotate.keyframes import SHOWN_CONFIDENCE, Key, KeyframePicker, Keyframes, Segment, gap_of
from livecam.annotate.media import FrameInput, FrameOutput, InputFrame
from livecam.annotate.window import Outcome, Window
from livecam.backoff import Backoff
from livecam.balance.pool import Server, ServerPool
from livecam.balance.window import InFlightWindow
from livecam.client import ApiConfig, DetectionClient, Request, RetryPolicy, detect_with_retry
from livecam.errors import AuthError, ConfigError, DetectionError, ModelNotFoundError
from livecam.frames import Image
from livecam.motion.carrier import BoxCarrier
from livecam.overlay import OverlayStyle, PredictionPainter
from livecam.predictions import Predictions
from livecam.stats import ServerStats
from livecam.workers import Worker, join_all

log = logging.getLogger(__name__)

DEFAULT_IN_FLIGHT = 8
"""Requests in flight at most per API server by default, learnt from its round trips (8x a
one-at-a-time client at 200 ms)."""
EMBEDDED_IN_FLIGHT = 4
"""Requests in flight by default against the embedded server on this process's own cores."""
MAX_WORKERS = 32
"""Request workers at most, whatever the servers' windows add up to (each holds a frame)."""
THROUGHPUT_QUEUEING = 2.0
"""A learnt window halves only when round trips double: a request waiting at the server is fine here."""
WINDOW_SLACK = 2
"""Frames held beyond those in flight: one being read, one being written."""
MAX_SKIP_WINDOW = 32
"""With ``--every N``, frames between sent ones are held too, up to this many per run."""

AnswerHook = Callable[[InputFrame, Predictions], None]
"""Called by the writer, in input order, with each frame and its answer before boxes are drawn on it."""


class ProgressSink(Protocol):
    """Where the writer reports frames written (a :class:`~livecam.progress.Progress` is one)."""

    def update(self, done: int, failed: int = 0) -> None:
        """``done`` frames written so far, ``failed`` of them without an answer."""
        ...


class FrameDetector(Protocol):
    """Detections for one frame; each worker thread gets its own."""

    def detect(self, image: Image, stop: threading.Event) -> Predictions:
        """Boxes in ``image``'s pixels.

        Raises:
            DetectionError: the request failed for good (after any retries).
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class PooledDetector:
    """A :class:`FrameDetector` over several servers: each frame goes to the server with room;
    a request that fails is retried on another server (the failed one is set aside with its own
    backoff), so losing a server costs no frame. Each worker has its own; they share the pool.
    """

    def __init__(self, pool: ServerPool, policy: RetryPolicy | None = None) -> None:
        self._pool = pool
        self._policy = policy or RetryPolicy()

    def detect(self, image: Image, stop: threading.Event) -> Predictions:
        pool = self._pool
        policy = self._policy
        backoff = Backoff(policy.backoff.initial, policy.backoff.maximum, policy.backoff.jitter)
        request: Request | None = None
        last: DetectionError | None = None
        # Each attempt tries every server once (the one that failed last is avoided), then waits
        # as one server's retries would: several servers never give up sooner than one.
        for attempt in range(policy.attempts):
            if last is not None and attempt > 0 and stop.wait(backoff.next_delay(last.retry_after or 0.0)):
                raise last
            tried: list[Server] = []
            for _ in range(len(pool)):
                lease = pool.acquire(stop, avoid=tried)
                if lease is None:
                    raise last or DetectionError("stopped before an answer came")
                try:
                    request = request or lease.client.prepare(image)
                    pool.sending(lease)
                    predictions = lease.client.send(request)
                except DetectionError as exc:
                    pool.failed(lease, exc)
                    if not exc.retryable:
                        raise
                    log.debug("retrying after: %s", exc)
                    last = exc
                    tried.append(lease.server)
                    continue
                except BaseException:
                    pool.cancel(lease)
                    raise
                pool.answered(lease)
                return predictions
        assert last is not None
        raise last

    def close(self) -> None:
        """Nothing of its own: the pool's owner closes the pool."""


def server_pool(api: ApiConfig, in_flight: int, adaptive: bool) -> ServerPool:
    """The servers of ``api`` with ``in_flight`` requests each, or up to that many learnt from
    each server's round trips (``adaptive``). Annotation wants throughput, not fresh answers, so
    a learnt window keeps a short queue at each server rather than none.
    """
    return ServerPool.from_api(
        api, lambda: InFlightWindow(in_flight, adaptive=adaptive, queueing=THROUGHPUT_QUEUEING, calm=True)
    )


class ApiDetector:
    """A :class:`FrameDetector` over HTTP: its own keep-alive session, retries with backoff."""

    def __init__(self, config: ApiConfig, policy: RetryPolicy | None = None) -> None:
        self._client = DetectionClient(config)
        self._policy = policy or RetryPolicy()

    def detect(self, image: Image, stop: threading.Event) -> Predictions:
        return detect_with_retry(self._client, image, self._policy, stop)

    def close(self) -> None:
        self._client.close()


@dataclass(frozen=True)
class AnnotateOptions:
    """How to annotate.

    Attributes:
        in_flight: requests at once.
        every: send every Nth frame; the frames between show the last sent frame's boxes.
        keyframes: send only keyframes (``"auto"`` or every Nth frame) and place the boxes of the
            frames between from the answers on both sides (:mod:`livecam.annotate.keyframes`).
        confidence: the display threshold (0-1, the API's ``--confidence``); with ``keyframes``, a
            placed box is drawn where its confidence interpolated between the keyframes reaches it.
        window: frames held in memory at most; None picks enough to keep ``in_flight`` busy.
        style: how boxes are drawn (the same drawing as live mode).
        join_timeout_s: how long to wait for threads when the run ends.
    """

    in_flight: int = DEFAULT_IN_FLIGHT
    every: int = 1
    keyframes: Keyframes | None = None
    confidence: float = SHOWN_CONFIDENCE
    window: int | None = None
    style: OverlayStyle = field(default_factory=OverlayStyle)
    join_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.in_flight < 1:
            raise ConfigError(f"--in-flight must be at least 1 (got {self.in_flight})")
        if self.every < 1:
            raise ConfigError(f"--every must be at least 1 (got {self.every})")
        if self.window is not None and self.window < 1:
            raise ConfigError(f"the frame window must be at least 1 (got {self.window})")
        if self.keyframes is not None and self.every != 1:
            raise ConfigError("--keyframes and --every choose the sent frames two ways: give one of them")

    @property
    def capacity(self) -> int:
        """Frames held at most between reading and writing."""
        if self.window is not None:
            return self.window
        if self.keyframes is not None:  # the frames between two keyframes wait for the second's answer
            return gap_of(self.keyframes) + self.in_flight + WINDOW_SLACK
        return min(self.in_flight * self.every, max(self.in_flight, MAX_SKIP_WINDOW)) + WINDOW_SLACK


@dataclass(frozen=True)
class AnnotateResult:
    """How a run went.

    Attributes:
        frames_read: frames decoded from the input.
        frames_expected: frames the input said it holds, when known.
        frames_written: frames written to the output (and the JSON Lines file).
        sent: written frames whose image was sent to the API.
        failed: written frames whose request failed for good (written without boxes).
        fatal: the error that stopped the run (bad key, unknown model), if any.
        broken: why a request worker could not start (which stops the run), if one could not.
        input_error: why the input ended before its last frame (truncated, damaged), if it did.
        interrupted: the stop event ended the run early.
        max_held: the most frames held in memory at once.
        elapsed_s: wall time of the run.
        servers: each detection server's counters, when the annotator was given its pool.
    """

    frames_read: int
    frames_expected: int | None
    frames_written: int
    sent: int
    failed: int
    fatal: DetectionError | None
    broken: str | None
    input_error: str | None
    interrupted: bool
    max_held: int
    elapsed_s: float
    servers: tuple[ServerStats, ...] = ()

    @property
    def failed_fraction(self) -> float:
        """Failed requests as a fraction of the frames sent (0 when none were)."""
        return self.failed / self.sent if self.sent else 0.0

    @property
    def fps(self) -> float:
        """Frames written per second of wall time."""
        return self.frames_written / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Annotator:
    """Runs one annotation from ``source`` to ``output`` (and ``jsonl``).

    ``stop`` ends the run early (Ctrl-C); the run also sets it when it ends, so every thread
    it started winds down. Outputs are not closed here: the caller owns them. ``on_answer``
    hooks see each answered frame, in input order, before boxes are drawn on it. ``servers``,
    the pool the detectors share, is woken when the run stops and reported in the result.
    ``first_frame`` is the index of the source's first frame (a segment of a longer video).
    """

    def __init__(
        self,
        source: FrameInput,
        output: FrameOutput,
        detectors: Callable[[], FrameDetector],
        options: AnnotateOptions,
        stop: threading.Event,
        *,
        jsonl: JsonLinesWriter | None = None,
        on_answer: Sequence[AnswerHook] = (),
        progress: ProgressSink | None = None,
        servers: ServerPool | None = None,
        clock: Callable[[], float] = time.monotonic,
        first_frame: int = 0,
    ) -> None:
        self._source = source
        self._first = first_frame
        self._servers = servers
        self._output = output
        self._detectors = detectors
        self._options = options
        self._stop = stop
        self._jsonl = jsonl
        self._on_answer = tuple(on_answer)
        self._hook_failed = False
        self._progress = progress
        self._clock = clock
        self._fatal: DetectionError | None = None
        self._broken: str | None = None
        self._fatal_lock = threading.Lock()
        self._frames_read = 0
        self._input_error: str | None = None

    def run(self) -> AnnotateResult:
        """Annotate until the input ends, ``stop`` is set or a fatal error; then join the threads."""
        started = self._clock()
        window = Window(self._options.capacity, self._stop)
        on_error = functools.partial(self._thread_failed, window)
        workers = [
            Worker(functools.partial(self._watch_stop, window), "annotate-stop", on_error=on_error),
            Worker(functools.partial(self._read, window), "annotate-reader", on_error=on_error),
        ]
        workers += [
            Worker(functools.partial(self._work, window), f"annotate-worker-{i}", on_error=on_error)
            for i in range(self._options.in_flight)
        ]
        try:
            for worker in workers:
                worker.start()
            written, sent, failed = self._write(window)
            with self._fatal_lock:
                interrupted = self._stop.is_set() and self._fatal is None and self._broken is None
        finally:
            window.halt()  # also ends the stop watcher: halting sets the stop event
            self._join(workers)
        return AnnotateResult(
            frames_read=self._frames_read,
            frames_expected=self._source.total,
            frames_written=written,
            sent=sent,
            failed=failed,
            fatal=self._fatal,
            broken=self._broken,
            input_error=self._input_error,
            interrupted=interrupted,
            max_held=window.max_held,
            elapsed_s=self._clock() - started,
            servers=tuple(self._servers.reports()) if self._servers is not None else (),
        )

    def _watch_stop(self, window: Window) -> None:
        # A signal handler sets the stop event but cannot notify the window's waiters; this does.
        self._stop.wait()
        window.halt()
        if self._servers is not None:
            self._servers.wake()

    def _read(self, window: Window) -> None:
        every = self._options.every
        keyframes = self._options.keyframes
        picker = KeyframePicker(keyframes, self._source.total) if keyframes is not None else None
        frames = iter(self._source)
        count = 0
        try:
            while window.admit():
                frame = next(frames, None)
                if frame is None:
                    window.release()
                    self._input_error = self._source.ended_early
                    break
                send = picker.is_key(frame.index, frame.image) if picker else frame.index % every == 0
                window.add(frame, send=send)
                count += 1
        except Exception as exc:
            # Whatever broke decoding, the frames read so far still get written and the run fails.
            log.debug("reading the input failed after %d frames", count, exc_info=True)
            self._input_error = f"decoding failed ({type(exc).__name__}: {exc})"
            window.release()
        finally:
            self._frames_read = count
            window.end_input(self._first + count)

    def _work(self, window: Window) -> None:
        try:
            detector = self._detectors()
        except Exception as exc:
            # No worker can be trusted to take this one's frames, and the writer would wait for them.
            log.debug("a request worker could not start", exc_info=True)
            with self._fatal_lock:
                self._broken = self._broken or f"a request worker could not start ({type(exc).__name__}: {exc})"
            window.halt()
            return
        try:
            while (frame := window.take()) is not None:
                window.complete(frame.index, self._detect(detector, frame.image, window))
        finally:
            detector.close()

    def _detect(self, detector: FrameDetector, image: Image, window: Window) -> Outcome:
        try:
            return Outcome(predictions=detector.detect(image, self._stop))
        except (AuthError, ModelNotFoundError) as exc:
            with self._fatal_lock:
                self._fatal = self._fatal or exc
            window.halt()
            return Outcome(error=str(exc))
        except DetectionError as exc:
            return Outcome(error=str(exc))
        except Exception as exc:
            # One frame the encoder or parser chokes on must not leave the writer waiting for it.
            log.exception("detecting on a frame failed")
            return Outcome(error=f"internal error: {type(exc).__name__}")

    def _write(self, window: Window) -> tuple[int, int, int]:
        if self._options.keyframes is not None:
            return self._write_from_keyframes(window)
        painter, jsonl, progress = PredictionPainter(self._options.style), self._jsonl, self._progress
        class_ids = ClassIds()
        shown: Predictions | None = None
        shown_error: str | None = None
        shown_from = 0
        first = index = self._first
        sent = failed = 0
        while (item := window.next(index)) is not None:
            frame, outcome = item
            if outcome.sent:
                sent += 1
                failed += outcome.predictions is None
                shown, shown_error, shown_from = outcome.predictions, outcome.error, frame.index
                if shown is not None:
                    self._answered(frame, shown)
            image = frame.image if shown is None else painter.draw(frame.image, shown)
            self._output.write(frame, image)
            if jsonl is not None:
                jsonl.write(frame_record(frame, shown, shown_error, shown_from, class_ids))
            window.release()
            index += 1
            if progress is not None:
                progress.update(index - first, failed)
        return index - first, sent, failed

    def _write_from_keyframes(self, window: Window) -> tuple[int, int, int]:
        """Write each keyframe with its answer and the frames between with boxes placed from both sides.

        With ``auto``, two keyframes that disagree get the frame halfway between sent as well
        (by this thread, in order), and each half is checked again.
        """
        painter, jsonl, progress = PredictionPainter(self._options.style), self._jsonl, self._progress
        class_ids = ClassIds()
        carrier = BoxCarrier()
        refine = self._options.keyframes == "auto"
        detector: FrameDetector | None = None
        key: Key | None = None
        between: list[InputFrame] = []
        index = sent = failed = 0

        def emit(
            frame: InputFrame, shown: Predictions | None, error: str | None, keys: list[int | None] | None
        ) -> None:
            nonlocal index
            self._output.write(frame, frame.image if shown is None else painter.draw(frame.image, shown))
            if jsonl is not None:
                record = frame_record(frame, shown, error, None, class_ids)
                if keys is not None:
                    record["from_keyframes"] = keys
                jsonl.write(record)
            window.release()
            index += 1
            if progress is not None:
                progress.update(index, failed)

        def fill(first: Key, frames: list[InputFrame], last: Key | None) -> None:
            nonlocal detector, sent, failed
            if not frames:
                return
            segment = Segment(first, [f.image for f in frames], last, carrier, self._options.confidence)
            half = segment.split_at() if refine and not self._stop.is_set() else None
            if half is not None:
                detector = detector or self._detectors()
                middle = frames[half]
                outcome = self._detect(detector, middle.image, window)
                sent += 1
                failed += outcome.predictions is None
                if outcome.predictions is not None:
                    self._answered(middle, outcome.predictions)
                here = Key(middle.index, middle.image, outcome.predictions)
                fill(first, frames[:half], here)
                emit(middle, outcome.predictions, outcome.error, None)
                fill(here, frames[half + 1 :], last)
                return
            for frame, place in zip(frames, segment.placed(), strict=True):
                emit(frame, place.predictions, None, [place.k0, place.k1])

        try:
            while (item := window.next(index + len(between))) is not None:
                frame, outcome = item
                if not outcome.sent:
                    between.append(frame)
                    continue
                sent += 1
                failed += outcome.predictions is None
                here = Key(frame.index, frame.image, outcome.predictions)
                if key is not None:
                    fill(key, between, here)
                between.clear()
                if outcome.predictions is not None:
                    self._answered(frame, outcome.predictions)
                emit(frame, outcome.predictions, outcome.error, None)
                key = here
            if key is not None:
                fill(key, between, None)
        finally:
            if detector is not None:
                detector.close()
        return index, sent, failed

    def _answered(self, frame: InputFrame, predictions: Predictions) -> None:
        for hook in self._on_answer:
            try:
                hook(frame, predictions)
            except Exception:  # noqa: BLE001 - a failing hook must not lose the annotation
                if not self._hook_failed:
                    log.warning("an answer hook failed; annotation goes on", exc_info=True)
                self._hook_failed = True

    def _thread_failed(self, window: Window, exc: BaseException) -> None:
        # The frames that thread held would never come; the run ends and says why.
        with self._fatal_lock:
            self._broken = self._broken or f"an annotate thread failed ({type(exc).__name__}: {exc})"
        window.halt()

    def _join(self, threads: list[Worker]) -> None:
        for name in join_all(threads, self._options.join_timeout_s, clock=self._clock):
            log.warning(
                "%s did not stop within %.0f s (a request is still open); leaving it",
                name,
                self._options.join_timeout_s,
            )
