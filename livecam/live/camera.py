"""One source of a live run: its capture and motion threads, its slots, status and drawing.

A live run has one :class:`Camera` per source. Each camera has its own frame slot, predictions
slot, status board and counters, so a camera that fails, stalls or sends garbage shows that in
its own tile only; the detection servers, the parse worker and the display are the run's.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from livecam.cost.budget import RequestBudget
from livecam.cost.gate import SendGate
from livecam.cost.policy import SendPolicy
from livecam.frames import Frame, Image
from livecam.live.boxes_log import BoxesLog
from livecam.live.capture import STATUS_KEY, CaptureThread
from livecam.live.compose import FrameComposer, ShownHook
from livecam.live.motion import MotionThread
from livecam.live.opener import STATUS_KEY as OPEN_STATUS_KEY
from livecam.live.sender import AnswerHook, Feed
from livecam.live.slot import LatestSlot, SlotClosed
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.motion import Carried, Compensator
from livecam.overlay import OverlayStyle
from livecam.predictions import Predictions
from livecam.redaction import redact_url
from livecam.sources import SourceInfo, VideoSource
from livecam.stats import CameraStats

STALL_S = 2.0
"""No new frame for this long shows a "No new video" status (unless the capture shows its own)."""
_NO_NEW_VIDEO = "No new video for"


class CameraCounters(StatsRecorder):
    """One camera's counters, which also count into the run's totals."""

    def __init__(self, total: StatsRecorder) -> None:
        super().__init__()
        self._total = total

    def request_sent(self, nbytes: int) -> None:
        super().request_sent(nbytes)
        self._total.request_sent(nbytes)

    def response_ok(
        self, latency_s: float, stale: bool, classes: Iterable[str] = (), processing_s: float | None = None
    ) -> None:
        names = tuple(classes)
        super().response_ok(latency_s, stale, names, processing_s)
        self._total.response_ok(latency_s, stale, names, processing_s)

    def response_failed(self, kind: str) -> None:
        super().response_failed(kind)
        self._total.response_failed(kind)

    def frame_displayed(self, prediction_age_s: float | None) -> None:
        super().frame_displayed(prediction_age_s)
        self._total.frame_displayed(prediction_age_s)


class Camera:
    """A source and everything the run keeps for it.

    Args:
        source: an unopened video source.
        index: its place among several (0-based), None when it is the run's only source.
        stats: its counters.
        status: its status lines.
        style: how its boxes are drawn.
        max_age: answers older than this (seconds) are not drawn.
        detecting: whether an API is asked.
        motion: carry its boxes with their objects.
        hud: start with the HUD shown.
        boxes_log: the run's boxes log.
        on_shown: called with each of its frames newly shown, the boxes drawn and their age.
        clock: monotonic seconds.
        send: which of its frames are worth a call, when not every one is (``--send changes``,
            a request budget); None sends its newest frame whenever a server has room.
        budget: the run's request budget, shared by every camera.
    """

    def __init__(
        self,
        source: VideoSource,
        index: int | None,
        stats: StatsRecorder,
        status: StatusBoard,
        *,
        style: OverlayStyle,
        max_age: float,
        detecting: bool,
        motion: bool,
        hud: bool,
        boxes_log: BoxesLog | None,
        clock: Callable[[], float],
        on_shown: Sequence[ShownHook] = (),
        send: SendPolicy | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self._settings: dict[str, Any] = {
            "style": style,
            "max_age": max_age,
            "detecting": detecting,
            "motion": motion,
            "hud": hud,
            "boxes_log": boxes_log,
            "clock": clock,
            "on_shown": on_shown,
            "send": send,
            "budget": budget,
        }
        self.source = source
        self.index = index
        self.stats = stats
        self.status = status
        self.stop = threading.Event()
        """Stops this camera's threads alone (one of several; a single camera uses the run's)."""
        self.restarts = 0
        """Times the watchdog replaced this camera's capture (one of several)."""
        self._captured_before = 0
        self._reconnects_before = 0
        self.frames: LatestSlot[Frame] = LatestSlot()
        self.predictions: LatestSlot[Predictions] = LatestSlot()
        self.carried: LatestSlot[Carried] | None = LatestSlot() if motion else None
        self.gate: SendGate | None = None
        if send is not None:
            carried = self.carried
            self.gate = SendGate(
                send, self.predictions.peek, clock, carried=carried.peek if carried else None, budget=budget
            )
        self.composer = FrameComposer(
            self.predictions,
            status,
            stats,
            style,
            max_age=max_age,
            detecting=detecting,
            hud=hud,
            clock=clock,
            motion=self.carried,
            boxes_log=boxes_log,
            on_shown=on_shown,
            camera=index,
            confirmed=self.gate.confirmed_at if self.gate is not None else None,
        )
        self.info: SourceInfo | None = None
        self.capture: CaptureThread | None = None
        self.motion: MotionThread | None = None
        self._clock = clock
        self.last_seq = -1
        """The newest frame the display has shown."""
        self.last_frame: Frame | None = None
        self.last_frame_at = clock()
        self.ended = False
        """The source ended and its last frame was shown."""
        self.tile: Image | None = None
        """Its grid tile as last drawn, and when."""
        self.tile_at = -math.inf
        self._blank: Frame | None = None

    def successor(self, source: VideoSource) -> Camera:
        """A fresh camera in this one's place, on ``source``: same counters, status and settings.

        Its slots, motion tracks and capture are new (the old capture may still be stuck in a read).
        """
        new = Camera(source, self.index, self.stats, self.status, **self._settings)
        new.restarts = self.restarts + 1
        new._captured_before = self.frames_captured
        new._reconnects_before = self.reconnects
        new.tile, new.last_frame, new.last_frame_at = self.tile, self.last_frame, self._clock()
        return new

    @property
    def frames_captured(self) -> int:
        """Frames read from its source, over every restart."""
        return self._captured_before + (self.capture.frames_captured if self.capture is not None else 0)

    @property
    def reconnects(self) -> int:
        """Its source's reconnects, over every restart."""
        return self._reconnects_before + (self.capture.reconnects if self.capture is not None else 0)

    def stopped_for(self, now: float) -> float:
        """How long it has shown no new frame (its source ended, stalled or keeps failing)."""
        return now - self.last_frame_at

    @property
    def source_name(self) -> str:
        """What its source is called before it opened (credentials redacted)."""
        name = getattr(self.source, "name", None)  # an OpenCVSource knows; a wrapper may not
        return redact_url(name) if isinstance(name, str) else f"camera {self.number}"

    @property
    def number(self) -> int:
        """Its number as users see it (1 for the first camera)."""
        return (self.index or 0) + 1

    def open(self) -> SourceInfo:
        """Open the source (SourceError if it cannot be)."""
        self.info = self.source.open()
        return self.info

    def start(self, stop: threading.Event, max_frames: int | None) -> None:
        """Start its motion thread (if any) and its capture thread; the source must be open."""
        assert self.info is not None
        if self.carried is not None:
            compensator = Compensator(self.info.fps)
            self.motion = MotionThread(self.frames, self.predictions, stop, compensator, self.carried)
            self.motion.start()
        self.capture = CaptureThread(
            self.source, self.frames, stop, self.status, clock=self._clock, max_frames=max_frames
        )
        self.capture.start()

    def feed(self, on_answer: Iterable[AnswerHook]) -> Feed:
        """What the senders need of this camera."""
        return Feed(self.frames, self.predictions, self.stats, tuple(on_answer), self.gate)

    def newer(self, timeout: float) -> Frame | None:
        """Its frame newer than the last one shown, waiting up to ``timeout``; None if none came.

        Sets :attr:`ended` once the source ended and every frame was shown.
        """
        try:
            frame = self.frames.wait_newer(self.last_seq, timeout=timeout)
        except SlotClosed:
            self.ended = True
            return None
        if frame is not None:
            self.last_seq = frame.seq
            self.last_frame = frame
            self.last_frame_at = self._clock()
        return frame

    def has_newer(self) -> bool:
        """Whether a frame not shown yet is waiting (or the source just ended)."""
        frame = self.frames.peek()
        return (frame is not None and frame.seq > self.last_seq) or (self.frames.closed and not self.ended)

    def shown_frame(self) -> Frame:
        """The frame to redraw when nothing new came: the last one, or a black one with a status."""
        stalled = self._clock() - self.last_frame_at
        if self.last_frame is not None:
            if stalled >= STALL_S and not self.ended:
                self._no_new_video(stalled)
            return self.last_frame
        if self.status.get(OPEN_STATUS_KEY) is None:  # an open under way says more
            self.status.set("video", "Waiting for video")
        if self._blank is None:
            width, height = (self.info.width, self.info.height) if self.info else (640, 360)
            self._blank = Frame(-1, np.zeros((height, width, 3), np.uint8), self._clock())
        return self._blank

    def _no_new_video(self, stalled: float) -> None:
        """Say that no new frame came, unless the capture says it itself: one banner, not two."""
        current = self.status.get("video")
        # A stream's capture declares stalls on its own clock; any source's capture reports dropouts.
        if (self.info is not None and self.info.stall_timeout_s is not None) or self.status.get(STATUS_KEY):
            if current is not None and current.startswith(_NO_NEW_VIDEO):
                self.status.set("video", None)
            return
        self.status.set("video", f"{_NO_NEW_VIDEO} {stalled:.0f} s")

    def join(self, timeout: float) -> list[str]:
        """Wait for its threads (after ``stop``); the names of any still running."""
        stuck: list[str] = []
        if self.capture is not None and not self.capture.join(timeout):
            stuck.append(f"capture {self.number}")
        if self.motion is not None and not self.motion.join(timeout):
            stuck.append(f"motion {self.number}")
        return stuck

    def report(self) -> CameraStats:
        """Its entry of the ``cameras`` statistics (safe to call while it runs)."""
        stats = self.stats.snapshot()
        capture = self.capture
        captured = self.frames_captured
        duration = stats.duration_s
        info = self.info
        return CameraStats(
            source=redact_url(info.name if info is not None else self.source_name),
            source_frames=captured,
            displayed_frames=stats.displayed_frames,
            source_fps=round(captured / duration, 3) if duration > 0 else 0.0,
            display_fps=stats.display_fps,
            requests_sent=stats.requests_sent,
            responses_ok=stats.responses_ok,
            responses_failed=stats.responses_failed,
            prediction_age_ms=stats.prediction_age_ms,
            reconnects=self.reconnects,
            restarts=self.restarts,
            frames_not_shown=max(0, captured - stats.displayed_frames),
            compensated_frames=self.composer.compensated_frames,
            failure=None if capture is None or capture.error is None else type(capture.error).__name__,
        )
