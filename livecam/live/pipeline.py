"""The live pipeline: capture thread -> sender threads -> display loop, with one stop event.

Example:
    >>> from livecam import ApiConfig, LivePipeline, open_source, HeadlessDisplay
    >>> api = ApiConfig("http://127.0.0.1:9001", "coco/1")
    >>> with LivePipeline(open_source("video.mp4"), api, HeadlessDisplay()) as pipeline:
    ...     stats = pipeline.run()
    >>> stats.displayed_frames

The pipeline wires the threads and runs the display loop; drawing is :mod:`.compose`, the
window's keys :mod:`.keys`, the counters :mod:`.stats`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from livecam.balance.pool import ServerPool, server_label
from livecam.balance.window import InFlightWindow
from livecam.client import ApiConfig, DetectionClient
from livecam.display import Display, VideoRecorder
from livecam.frames import Frame, Image
from livecam.live.boxes_log import BoxesLog
from livecam.live.capture import CaptureThread
from livecam.live.compose import FrameComposer, ShownHook, warm_up_drawing
from livecam.live.keys import KeyBindings
from livecam.live.motion import MotionThread
from livecam.live.sender import AnswerHook, SenderPool
from livecam.live.slot import LatestSlot, SlotClosed
from livecam.live.stats import MotionStats, RunStats, SourceSummary, StatsRecorder
from livecam.live.status import StatusBoard
from livecam.motion import Carried, Compensator
from livecam.overlay import OverlayStyle
from livecam.parsing import AnswerParser
from livecam.predictions import Predictions
from livecam.sources import SourceInfo, VideoSource
from livecam.stats import ServerStats
from livecam.workers import JOIN_TIMEOUT_S

log = logging.getLogger(__name__)

_IDLE_REDRAW_S = 0.25
_AUTO_SPACING_FRAMES = 0.9
"""``adaptive``: send at most once per frame interval (a little less, so no new frame waits)."""
MAX_SENDERS = 64
"""Sender threads at most, whatever the servers' windows add up to."""
STALL_S = 2.0
"""No new frame for this long shows a "No new video" status."""


@dataclass(frozen=True)
class LiveConfig:
    """How the live pipeline runs and draws.

    Attributes:
        in_flight: concurrent requests per server (``--in-flight``); with ``adaptive``, the most allowed.
        adaptive: send every new frame as it is captured whatever the latency, with up to
            ``in_flight`` requests open, so boxes are as fresh as the network allows
            (``--in-flight auto``; one request per frame, which hosted APIs bill).
        max_frames: stop after this many source frames.
        duration: stop after this many seconds.
        max_prediction_age: predictions older than this (seconds) are hidden, not shown stale.
        hud: start with the HUD shown (toggle with ``h``).
        style: how boxes and labels are drawn.
        snapshot_dir: where ``s`` saves PNGs.
        record: also write the annotated video to this file.
        motion: carry the boxes with their objects between answers (``--motion``).
        boxes_log: write the boxes of every displayed frame here as JSON Lines (``--boxes-log``).
    """

    in_flight: int = 1
    adaptive: bool = False
    max_frames: int | None = None
    duration: float | None = None
    max_prediction_age: float = 3.0
    hud: bool = True
    style: OverlayStyle = field(default_factory=OverlayStyle)
    snapshot_dir: Path = Path(".")
    record: Path | None = None
    motion: bool = True
    boxes_log: Path | None = None


@dataclass(frozen=True)
class LiveProgress:
    """What a running pipeline has done so far (what the kiosk's supervisor and web view read).

    Attributes:
        displayed_frames: frames shown.
        answers: answers received.
        latency_p50_ms: median request latency so far.
        newest: the newest answer, if any.
        status: the status lines shown over the picture.
        source_name: the source's name once opened.
        last_frame: the newest captured frame.
        servers: each detection server's counters (the ``servers`` section of the stats).
    """

    displayed_frames: int
    answers: int
    latency_p50_ms: float | None
    newest: Predictions | None
    status: list[str]
    source_name: str | None
    last_frame: Frame | None
    servers: tuple[ServerStats, ...] = ()


class LivePipeline:
    """Shows ``source`` on ``display`` with the newest detections from ``api`` drawn on it.

    The display loop runs on the thread that calls :meth:`run` (OpenCV windows need the main
    thread); capture and sending run on their own threads. Use it as a context manager so the
    threads, source and window are always released.

    Args:
        source: an unopened video source.
        api: where detections come from; None shows the video alone.
        display: a window, a headless display, or a recording display.
        config: run options.
        make_client: builds a detection client (tests inject a transport here).
        on_frame: called with every annotated frame (e.g. the kiosk's web view).
        on_answer: called on a sender thread with each fresh answer and its full-size frame.
        on_shown: called on the display thread with each newly shown frame (undrawn), the boxes
            drawn on it and their age (e.g. the Python API's ``stream``).
        stop: an external stop event (e.g. set by a signal handler); one is made if omitted.
        clock: monotonic time source.
    """

    def __init__(
        self,
        source: VideoSource,
        api: ApiConfig | None,
        display: Display,
        config: LiveConfig | None = None,
        *,
        make_client: Callable[[], DetectionClient] | None = None,
        on_frame: Sequence[Callable[[Image], None]] = (),
        on_answer: Sequence[AnswerHook] = (),
        on_shown: Sequence[ShownHook] = (),
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.api = api
        self.display = display
        self.config = config or LiveConfig()
        self.stop = stop or threading.Event()
        self.status = StatusBoard()
        self.stats = StatsRecorder()
        self.frames: LatestSlot[Frame] = LatestSlot()
        self.predictions: LatestSlot[Predictions] = LatestSlot()
        self.info: SourceInfo | None = None
        self._clock = clock
        self._injected_client = make_client is not None
        self._parser = AnswerParser()  # large answers are parsed in this run's own worker process
        if make_client is None and api is not None:
            make_client = lambda: DetectionClient(api, parser=self._parser)  # noqa: E731
        self._make_client = make_client
        self._on_frame = list(on_frame)
        self._on_answer = list(on_answer)
        self._capture: CaptureThread | None = None
        self._recorder: VideoRecorder | None = None
        self._senders: SenderPool | None = None
        self._motion: MotionThread | None = None
        motion = self.config.motion and make_client is not None
        self.carried: LatestSlot[Carried] | None = LatestSlot() if motion else None
        self._boxes_log = BoxesLog(self.config.boxes_log) if self.config.boxes_log is not None else None
        self._composer = FrameComposer(
            self.predictions,
            self.status,
            self.stats,
            self.config.style,
            max_age=self.config.max_prediction_age,
            detecting=make_client is not None,
            hud=self.config.hud,
            clock=clock,
            motion=self.carried,
            boxes_log=self._boxes_log,
            on_shown=on_shown,
        )
        self._keys = KeyBindings(display, self._composer, self.stop, self.config.snapshot_dir)
        self._blank: Frame | None = None
        self._closed = False

    def __enter__(self) -> LivePipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> SourceInfo:
        """Open the source and start the threads (once; :meth:`run` calls it if needed).

        Raises:
            SourceError: the source cannot be opened.
        """
        if self.info is not None:
            return self.info
        self.info = self.source.open()
        log.info("source: %s, %dx%d at %.3g fps", self.info.name, self.info.width, self.info.height, self.info.fps)
        if self.config.record is not None:
            self._recorder = VideoRecorder(self.config.record, self.info.fps, (self.info.width, self.info.height))
            log.info("recording to %s (%s)", self.config.record, self._recorder.codec)
        warm_up_drawing((self.info.width, self.info.height), self.config.style)
        if self._make_client is not None:
            servers = self._server_pool(self._make_client, self.info.fps)
            self._senders = SenderPool(
                servers,
                self.frames,
                self.predictions,
                self.stop,
                self.status,
                self.stats,
                workers=min(MAX_SENDERS, self.config.in_flight * len(servers)),
                on_answer=self._on_answer,
                clock=self._clock,
            )
            self._senders.start()
        if self.carried is not None:
            compensator = Compensator(self.info.fps)
            self._motion = MotionThread(self.frames, self.predictions, self.stop, compensator, self.carried)
            self._motion.start()
        # Capture last: until it exists, close() closes the source itself if anything above failed.
        self._capture = CaptureThread(
            self.source, self.frames, self.stop, self.status, clock=self._clock, max_frames=self.config.max_frames
        )
        self.stats.started_at = self._clock()
        self._capture.start()
        return self.info

    def _server_pool(self, make_client: Callable[[], DetectionClient], fps: float) -> ServerPool:
        """Every server of ``api``, each with its own window; one server when a client factory was injected."""
        cfg = self.config

        def window() -> InFlightWindow:
            if cfg.adaptive:
                return InFlightWindow(cfg.in_flight, floor=_AUTO_SPACING_FRAMES / fps, adaptive=True)
            return InFlightWindow(cfg.in_flight)

        if self._injected_client or self.api is None:
            label = server_label(self.api) if self.api is not None else "client"
            return ServerPool([(label, make_client)], window, clock=self._clock)
        return ServerPool.from_api(
            self.api, window, make_client=lambda config: DetectionClient(config, parser=self._parser), clock=self._clock
        )

    def run(self) -> RunStats:
        """Run the display loop until the source ends, a limit is reached, or ``stop`` is set.

        Returns:
            The run's statistics; ``failure`` says why, if a capture or sender thread crashed.
        """
        if self._capture is None:
            self.start()
        deadline = None if self.config.duration is None else self._clock() + self.config.duration
        last_seq = -1
        last_frame: Frame | None = None
        last_frame_at = self._clock()
        while not self.stop.is_set():
            wait = _IDLE_REDRAW_S if deadline is None else min(_IDLE_REDRAW_S, max(0.0, deadline - self._clock()))
            try:
                frame = self.frames.wait_newer(last_seq, timeout=wait)
            except SlotClosed:
                break
            if deadline is not None and self._clock() >= deadline:
                break
            if frame is None:
                # No new frame (a dropout, a slow start): redraw the last picture with the current
                # status, which also keeps a window responsive to keys.
                stalled = self._clock() - last_frame_at
                if last_frame is not None and stalled >= STALL_S:
                    self.status.set("video", f"No new video for {stalled:.0f} s")
                self._show(self._composer.compose(last_frame or self._placeholder(), new=False), new=False)
                continue
            last_seq = frame.seq
            last_frame = frame
            last_frame_at = self._clock()
            self._show(self._composer.compose(frame, new=True), new=True)
            self.stats.frame_lag(self._clock() - frame.captured_at)
        return self.finish()

    def finish(self) -> RunStats:
        """Stop the threads and return the statistics."""
        self.stats.ended_at = self._clock()
        self.close()
        capture = self._capture
        if capture is not None:
            self.stats.source_frames = capture.frames_captured
        info = self.info
        return dataclasses.replace(
            self.stats.snapshot(),
            in_flight="auto" if self.config.adaptive else self.config.in_flight,
            encoder=self._senders.encoder_name if self._senders else None,
            frames_not_shown=max(0, capture.frames_captured - self.stats.displayed_frames) if capture else 0,
            reconnects=capture.reconnects if capture else 0,
            frames_dropped_to_stay_live=capture.dropped_to_stay_live if capture else 0,
            source=None if info is None else SourceSummary(info.name, info.width, info.height, info.fps, info.live),
            failure=self._failure(),
            motion=self._motion_stats(),
            boxes_log=self._boxes_log.stats() if self._boxes_log is not None else None,
            servers=tuple(self._senders.servers.reports()) if self._senders is not None else None,
        )

    def _motion_stats(self) -> MotionStats:
        composer = self._composer
        counted = MotionStats(
            enabled=self.carried is not None,
            compensated_frames=composer.compensated_frames,
            skipped_frames=composer.skipped_frames,
        )
        return self._motion.stats(counted) if self._motion is not None else counted

    @property
    def displayed_frames(self) -> int:
        """Frames shown so far (cheap: the kiosk's watchdog reads it every tick)."""
        return self.stats.displayed_frames

    @property
    def answers(self) -> int:
        """Answers received so far."""
        return self.stats.responses_ok

    def progress(self) -> LiveProgress:
        """What the run has done so far; safe to call from any thread."""
        p50, _ = self.stats.latency_ms()
        return LiveProgress(
            displayed_frames=self.stats.displayed_frames,
            answers=self.stats.responses_ok,
            latency_p50_ms=p50,
            newest=self.predictions.peek(),
            status=self.status.lines(),
            source_name=self.info.name if self.info is not None else None,
            last_frame=self.frames.peek(),
            servers=tuple(self._senders.servers.reports()) if self._senders is not None else (),
        )

    def _failure(self) -> str | None:
        crashed = [
            (name, error)
            for name, error in (
                ("capture", self._capture.error if self._capture else None),
                ("detection", self._senders.error if self._senders else None),
            )
            if error is not None
        ]
        if not crashed:
            return None
        return "; ".join(f"the {name} thread failed: {type(e).__name__}: {e}" for name, e in crashed)

    def close(self) -> None:
        """Stop every thread (bounded joins) and release the source and display. Idempotent.

        Call it from the thread that runs :meth:`run` (the context manager does); other threads
        stop a run by setting :attr:`stop`. Only the first call waits for the threads, each bounded
        by ``JOIN_TIMEOUT_S``.
        """
        if self._closed:
            return
        self._closed = True
        self.stop.set()
        self.frames.close()
        self.display.close()  # the window goes at once, even while a request is still in flight
        if self._recorder is not None:
            self._recorder.close()
        stuck: list[str] = []
        if self._capture is not None and not self._capture.join(JOIN_TIMEOUT_S):
            stuck.append("capture")
        if self._senders is not None:
            stuck += self._senders.join(JOIN_TIMEOUT_S)
            self._senders.servers.close()
        self._parser.close()
        if self._motion is not None and not self._motion.join(JOIN_TIMEOUT_S):
            stuck.append("motion")
        if self._boxes_log is not None:
            self._boxes_log.close()
        if stuck:
            log.warning("threads still running after %.0f s (left as daemons): %s", JOIN_TIMEOUT_S, ", ".join(stuck))
        if self._capture is None:
            self.source.close()  # otherwise the capture thread closes it on its way out

    @property
    def holds_source(self) -> bool:
        """Whether the capture thread is still running, and so still holds the source open.

        After :meth:`close` this stays True only for a capture blocked in a read it cannot leave;
        it closes the source itself when the read finally returns.
        """
        return self._capture is not None and self._capture.is_alive()

    def _placeholder(self) -> Frame:
        """A black frame of the source's size, shown (with a status) until the first frame comes."""
        self.status.set("video", "Waiting for video")
        if self._blank is None:
            width, height = (self.info.width, self.info.height) if self.info else (640, 360)
            self._blank = Frame(-1, np.zeros((height, width, 3), np.uint8), self._clock())
        return self._blank

    def _show(self, canvas: Image, new: bool) -> None:
        for callback in self._on_frame:
            callback(canvas)
        if new and self._recorder is not None:
            self._recorder.write(canvas)
        self._keys.handle(self.display.show(canvas), canvas)
