"""Drawing one displayed frame: the newest boxes young enough to show, the HUD and the status lines.

The composer owns what the picture needs from the run (the predictions slot, the motion thread's
carried boxes, the status board, the counters, the boxes log) and nothing about threads or
windows; :class:`~livecam.live.pipeline.LivePipeline` calls :meth:`FrameComposer.compose` once
per shown frame.

With motion compensation the boxes drawn are the motion thread's newest carried boxes, moved on
by their velocity when that thread is up to :data:`MAX_AHEAD` frames behind; further behind (a
loaded machine) the frame is drawn with the boxes where they were detected, and counted skipped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from livecam.frames import Frame, Image
from livecam.live.boxes_log import BoxesLog
from livecam.live.slot import LatestSlot
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.motion import Carried
from livecam.motion.compensator import clipped
from livecam.overlay import OverlayStyle, PredictionPainter, draw_hud, draw_predictions, draw_status
from livecam.predictions import Prediction, Predictions
from livecam.ratemeter import RateMeter

CALLS_WINDOW_S = 60.0
"""The HUD's calls per minute are counted over this window."""
HUD_REFRESH_S = 0.5
"""How often the HUD's latency percentile is recomputed (it sorts thousands of samples)."""

MAX_AHEAD = 3
"""Carried boxes at most this many frames older than the frame shown are moved on by their velocity."""

SKIPPED_HUD_S = 1.0
"""The HUD says compensation was skipped for this long after a skipped frame."""


ShownHook = Callable[[Frame, Predictions | None, float | None], None]
"""Called with each newly displayed frame (undrawn), the boxes drawn on it (None: none) and their age in seconds."""


class FrameComposer:
    """Draws frames for the display loop and counts what was shown.

    Args:
        predictions: the newest answer (its ``captured_at`` gives its age).
        status: status lines drawn over the picture.
        stats: counts displayed frames and prediction ages.
        style: how boxes and labels look.
        max_age: answers older than this (seconds) are not drawn.
        detecting: whether an API is asked at all (the HUD then shows detection figures).
        hud: start with the HUD shown.
        clock: monotonic seconds.
        motion: the motion thread's carried boxes; None draws answers where they were detected.
        boxes_log: where each displayed frame's boxes are logged.
        on_shown: called with each newly displayed frame and what was drawn on it.
        camera: the camera's index when it is one of several: its boxes log lines say so, its
            status lines start with "camera N:" (counting from 1) and its HUD is one compact line.
    """

    def __init__(
        self,
        predictions: LatestSlot[Predictions],
        status: StatusBoard,
        stats: StatsRecorder,
        style: OverlayStyle,
        *,
        max_age: float,
        detecting: bool,
        hud: bool,
        clock: Callable[[], float],
        motion: LatestSlot[Carried] | None = None,
        boxes_log: BoxesLog | None = None,
        on_shown: Sequence[ShownHook] = (),
        camera: int | None = None,
        confirmed: Callable[[int], float | None] | None = None,
    ) -> None:
        self._camera = camera
        self._predictions = predictions
        self._status = status
        self._stats = stats
        self._painter = PredictionPainter(style)
        self._max_age = max_age
        self._detecting = detecting
        self.hud = hud
        self._clock = clock
        self._display_rate = RateMeter()
        self._prediction_rate = RateMeter()
        self._last_prediction_seq = -1
        self._latency_p50: float | None = None
        self._latency_at = -HUD_REFRESH_S
        self._calls: deque[tuple[float, int]] = deque()
        """(time, requests sent so far) at each HUD refresh of the last minute: calls per minute."""
        self._motion = motion
        self._boxes_log = boxes_log
        self._on_shown = tuple(on_shown)
        self._confirmed = confirmed
        self.compensated_frames = 0
        """Displayed frames whose boxes were carried to them."""
        self.skipped_frames = 0
        """Displayed frames with boxes that the motion thread was too far behind to carry."""
        self._skipped_at = -SKIPPED_HUD_S
        self._age: float | None = None
        self._now = 0.0

    def compose(self, frame: Frame, new: bool, *, decorate: bool = True) -> Image:
        """The frame with the newest predictions, HUD and status drawn; counted if ``new``.

        With ``decorate`` False only the boxes are drawn; :meth:`decorate` adds the rest later
        (a grid tile gets its HUD and status after it is scaled to its cell).
        """
        now = self._now = self._clock()
        canvas = frame.image.copy()
        predictions = self._predictions.peek()
        age: float | None = None
        shown: Predictions | None = None
        if predictions is not None:
            if predictions.frame_seq != self._last_prediction_seq:
                self._last_prediction_seq = predictions.frame_seq
                self._prediction_rate.tick(now)
            shown = self._carried(frame, predictions, new, now)
            age = now - shown.captured_at
            if age <= self._max_age or self._still_right(shown, now):
                self._painter.draw(canvas, shown)
            else:
                age = None
        if new:
            self._stats.frame_displayed(age)
            self._display_rate.tick(now)
            self._status.set("video", None)
            if self._boxes_log is not None:
                _log(self._boxes_log, frame, shown, age, self._camera)
            for hook in self._on_shown:
                hook(frame, shown if age is not None else None, age)
        self._age = age
        if decorate:
            self.decorate(canvas)
        return canvas

    def decorate(self, canvas: Image, more: Sequence[str] = ()) -> None:
        """Draw the HUD (if shown, with ``more`` lines) and the status lines of the last composed frame."""
        if self.hud:
            if self._camera is None:
                draw_hud(canvas, [*self._hud_lines(self._now, self._age), *more])
            else:
                draw_hud(canvas, [self._tile_line(self._now, self._age), *more], anchor="top-left")
        lines = self.status_lines()
        if lines:
            draw_status(canvas, lines)

    def status_lines(self) -> list[str]:
        """The status lines shown over this camera's picture ("camera N: ..." for one of several)."""
        lines = self._status.lines()
        if self._camera is None:
            return lines
        return [f"camera {self._camera + 1}: {line[:1].lower()}{line[1:]}" for line in lines]

    def rates(self, now: float) -> tuple[float, float]:
        """(frames shown, answers drawn) per second over the last seconds."""
        return self._display_rate.rate(now), self._prediction_rate.rate(now)

    def _tile_line(self, now: float, age: float | None) -> str:
        """A grid tile's HUD: its number, frame rate, answers per second and the boxes' age."""
        parts = [f"{self._camera + 1 if self._camera is not None else 1}", f"{self._display_rate.rate(now):.0f} fps"]
        if self._detecting:
            parts.append(f"{self._prediction_rate.rate(now):.1f}/s")
            parts.append("age -" if age is None else f"age {age * 1000:.0f} ms")
        return "  ".join(parts)

    def _still_right(self, shown: Predictions, now: float) -> bool:
        """Whether the send gate found the picture unchanged since ``shown`` within ``max_age``."""
        confirmed = self._confirmed(shown.frame_seq) if self._confirmed is not None else None
        return confirmed is not None and now - confirmed <= self._max_age

    def _carried(self, frame: Frame, newest: Predictions, new: bool, now: float) -> Predictions:
        """What to draw on ``frame``: the carried boxes when there are any close enough, else ``newest``."""
        if self._motion is None:
            return newest
        carried = self._motion.peek()
        height, width = frame.image.shape[:2]
        if carried is not None and carried.compensated:
            behind = frame.index - carried.index
            if abs(behind) <= MAX_AHEAD:
                if new:
                    self.compensated_frames += 1
                items = clipped(carried.ahead(behind), width, height)
                return replace(carried.answer, items=items)
        if new:
            self.skipped_frames += 1
            self._skipped_at = now
        return newest

    def _hud_lines(self, now: float, age: float | None) -> list[str]:
        if now - self._latency_at >= HUD_REFRESH_S:
            self._latency_at = now
            self._latency_p50, _ = self._stats.latency_ms()
            self._calls.append((now, self._stats.requests_sent))
            while now - self._calls[0][0] > CALLS_WINDOW_S:
                self._calls.popleft()
        p50 = self._latency_p50
        parts = [f"video {self._display_rate.rate(now):.1f} fps"]
        if self._detecting:
            parts.append(f"detections {self._prediction_rate.rate(now):.1f}/s")
            parts.append("latency -" if p50 is None else f"latency {p50:.0f} ms")
            parts.append(self._calls_per_minute())
            parts.append("age -" if age is None else f"age {age * 1000:.0f} ms")
            if self._motion is None:
                parts.append("motion off")
            elif now - self._skipped_at < SKIPPED_HUD_S:
                parts.append("motion skipped")
        return ["  ".join(parts)]

    def _calls_per_minute(self) -> str:
        (first_at, first), (last_at, last) = self._calls[0], self._calls[-1]
        if last_at - first_at < HUD_REFRESH_S:
            return "calls -/min"
        return f"calls {(last - first) * 60 / (last_at - first_at):.0f}/min"


def _log(boxes_log: BoxesLog, frame: Frame, shown: Predictions | None, age: float | None, camera: int | None) -> None:
    """Log what was drawn on ``frame``: nothing before the first answer or when it was too old."""
    if shown is None:
        boxes_log.write(frame.index, None, None, (), camera=camera)
    elif age is None:
        boxes_log.write(frame.index, shown.frame_index, None, (), camera=camera)
    else:
        boxes_log.write(frame.index, shown.frame_index, age * 1000, shown.items, camera=camera)


def warm_up_drawing(size: tuple[int, int], style: OverlayStyle) -> None:
    """Draw once on a blank frame: OpenCV's first text call takes ~100 ms, longer than a frame."""
    width, height = size
    blank = np.zeros((height, width, 3), np.uint8)
    sample = Predictions(items=(Prediction(1, 1, 10, 10, 0.5, "warm-up"),))
    draw_predictions(blank, sample, style)
    draw_hud(blank, ["warm-up"])
    draw_status(blank, ["warm-up"])
