"""The live pipeline: capture thread -> sender threads -> display loop, with one stop event.

Example:
    >>> from livecam import ApiConfig, LivePipeline, open_source, HeadlessDisplay
    >>> api = ApiConfig("http://127.0.0.1:9001", "coco/1")
    >>> with LivePipeline(open_source("video.mp4"), api, HeadlessDisplay()) as pipeline:
    ...     stats = pipeline.run()
    >>> stats["displayed_frames"]
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from livecam.backoff import Backoff
from livecam.client import ApiConfig, DetectionClient
from livecam.display import Display, VideoRecorder, save_snapshot
from livecam.errors import LivecamError
from livecam.frames import Frame, Image
from livecam.live.capture import CaptureThread
from livecam.live.pacing import SendPacer
from livecam.live.sender import AnswerHook, SenderPool
from livecam.live.slot import LatestSlot, SlotClosed
from livecam.live.stats import RunStats
from livecam.live.status import StatusBoard
from livecam.overlay import OverlayStyle, draw_hud, draw_predictions, draw_status
from livecam.predictions import Prediction, Predictions
from livecam.ratemeter import RateMeter
from livecam.sources import SourceInfo, VideoSource

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 3.0
_IDLE_REDRAW_S = 0.25
_AUTO_SPACING_FRAMES = 0.9
"""``adaptive``: send at most once per frame interval (a little less, so no new frame waits)."""
_HUD_REFRESH_S = 0.5
STALL_S = 2.0
"""No new frame for this long shows a "No new video" status."""
_KEY_QUIT = {ord("q"), ord("Q"), 27}


@dataclass(frozen=True)
class LiveConfig:
    """How the live pipeline runs and draws.

    Attributes:
        in_flight: concurrent requests (``--in-flight``); with ``adaptive``, the most allowed.
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


FrameHook = Callable[[Image], Image]
"""Changes a frame before drawing (the kiosk rotates and mirrors with one)."""


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
        on_answer: called from a sender thread with each frame and its fresh answer, in frame
            order (e.g. the collector of frames worth labelling); must return quickly.
        frame_hook: transforms each frame before drawing; predictions must match its output.
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
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.api = api
        self.display = display
        self.config = config or LiveConfig()
        self.stop = stop or threading.Event()
        self.status = StatusBoard()
        self.stats = RunStats()
        self.frames: LatestSlot[Frame] = LatestSlot()
        self.predictions: LatestSlot[Predictions] = LatestSlot()
        self.info: SourceInfo | None = None
        self._clock = clock
        if make_client is None and api is not None:
            make_client = lambda: DetectionClient(api)  # noqa: E731
        self._make_client = make_client
        self._on_frame = list(on_frame)
        self._on_answer = tuple(on_answer)
        self._capture: CaptureThread | None = None
        self._recorder: VideoRecorder | None = None
        self._senders: SenderPool | None = None
        self._hud = self.config.hud
        self._display_rate = RateMeter()
        self._prediction_rate = RateMeter()
        self._last_prediction_seq = -1
        self._blank: Frame | None = None
        self._hud_latency_p50: float | None = None
        self._hud_latency_at = -_HUD_REFRESH_S

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
        _warm_up_drawing(self.info, self.config.style)
        if self._make_client is not None:
            self._senders = SenderPool(
                self._make_client,
                self.frames,
                self.predictions,
                self.stop,
                self.status,
                self.stats,
                in_flight=self.config.in_flight,
                pacer=SendPacer(self.config.in_flight, floor=_AUTO_SPACING_FRAMES / self.info.fps, adaptive=True)
                if self.config.adaptive
                else None,
                backoff=Backoff(initial=0.25, maximum=1.5),
                on_answer=self._on_answer,
                clock=self._clock,
            )
            self._senders.start()
        # Capture last: until it exists, close() closes the source itself if anything above failed.
        self._capture = CaptureThread(
            self.source, self.frames, self.stop, self.status, clock=self._clock, max_frames=self.config.max_frames
        )
        self.stats.started_at = self._clock()
        self._capture.start()
        return self.info

    def run(self) -> dict[str, Any]:
        """Run the display loop until the source ends, a limit is reached, or ``stop`` is set.

        Returns:
            The run's statistics (the schema in ARCHITECTURE.md).
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
                self._show(self._compose(last_frame or self._placeholder(), new=False), new=False)
                continue
            last_seq = frame.seq
            last_frame = frame
            last_frame_at = self._clock()
            self._show(self._compose(frame, new=True), new=True)
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Stop the threads and return the statistics."""
        self.stats.ended_at = self._clock()
        self.close()
        if self._capture is not None:
            self.stats.source_frames = self._capture.frames_captured
        return self.stats.to_dict(self._extra_stats())

    def close(self) -> None:
        """Stop every thread (bounded joins) and release the source and display. Idempotent.

        Call it from the thread that runs :meth:`run` (the context manager does); other threads
        stop a run by setting :attr:`stop`.
        """
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

    def _compose(self, frame: Frame, new: bool) -> Image:
        """Draw the frame with the newest predictions, HUD and status; count it if ``new``."""
        now = self._clock()
        canvas = frame.image.copy()
        predictions = self.predictions.peek()
        age: float | None = None
        if predictions is not None:
            age = now - predictions.captured_at
            if age <= self.config.max_prediction_age:
                draw_predictions(canvas, predictions, self.config.style)
            else:
                age = None
            if predictions.frame_seq != self._last_prediction_seq:
                self._last_prediction_seq = predictions.frame_seq
                self._prediction_rate.tick(now)
        if new:
            self.stats.frame_displayed(age)
            self._display_rate.tick(now)
            self.status.set("video", None)
        if self._hud:
            draw_hud(canvas, self._hud_lines(now, age))
        lines = self.status.lines()
        if lines:
            draw_status(canvas, lines)
        return canvas

    def _show(self, canvas: Image, new: bool) -> None:
        for callback in self._on_frame:
            callback(canvas)
        if new and self._recorder is not None:
            self._recorder.write(canvas)
        key = self.display.show(canvas)
        if key < 0:
            if self.display.closed_by_user:
                self.stop.set()
            return
        key &= 0xFF
        if key in _KEY_QUIT:
            self.stop.set()
        elif key in (ord("f"), ord("F")):
            self.display.set_fullscreen(not self.display.fullscreen)
        elif key in (ord("h"), ord("H")):
            self._hud = not self._hud
        elif key in (ord("s"), ord("S")):
            try:
                path = save_snapshot(canvas, self.config.snapshot_dir)
            except LivecamError as exc:
                log.warning("snapshot not saved: %s", exc)
                return
            log.info("snapshot saved to %s", path)

    def _hud_lines(self, now: float, age: float | None) -> list[str]:
        if now - self._hud_latency_at >= _HUD_REFRESH_S:  # percentiles sort thousands of samples
            self._hud_latency_at = now
            self._hud_latency_p50, _ = self.stats.latency_ms()
        p50 = self._hud_latency_p50
        parts = [f"video {self._display_rate.rate(now):.1f} fps"]
        if self._senders is not None:
            parts.append(f"detections {self._prediction_rate.rate(now):.1f}/s")
            parts.append("latency -" if p50 is None else f"latency {p50:.0f} ms")
            parts.append("age -" if age is None else f"age {age * 1000:.0f} ms")
        return ["  ".join(parts)]

    def _extra_stats(self) -> dict[str, Any]:
        capture = self._capture
        extra: dict[str, Any] = {
            "in_flight": "auto" if self.config.adaptive else self.config.in_flight,
            "encoder": self._senders.encoder_name if self._senders else None,
        }
        if capture is not None:
            extra["frames_not_shown"] = max(0, capture.frames_captured - self.stats.displayed_frames)
            extra["reconnects"] = capture.reconnects
        if self.info is not None:
            extra["source"] = {
                "name": self.info.name,
                "width": self.info.width,
                "height": self.info.height,
                "nominal_fps": self.info.fps,
                "live": self.info.live,
            }
        return extra


def _warm_up_drawing(info: SourceInfo, style: OverlayStyle) -> None:
    """Draw once on a blank frame: OpenCV's first text call takes ~100 ms, longer than a frame."""
    blank = np.zeros((info.height, info.width, 3), np.uint8)
    sample = Predictions(items=(Prediction(1, 1, 10, 10, 0.5, "warm-up"),))
    draw_predictions(blank, sample, style)
    draw_hud(blank, ["warm-up"])
    draw_status(blank, ["warm-up"])
