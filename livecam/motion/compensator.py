"""Carrying an answer's boxes from the frame it was computed on to the frame shown now.

Feed :meth:`Compensator.step` every frame (or as many as there is time for) with the newest
answer. When the answer is new, its boxes are carried from their frame through the frames held
in the ring to this one, matched to the boxes being carried for track ids, and replace them;
otherwise the boxes being carried move on by one step. The result is always the newest answer's
boxes, moved to where their objects are in this frame.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from livecam.frames import Image
from livecam.motion.carrier import Box, BoxCarrier
from livecam.motion.ring import FrameRing
from livecam.motion.tracks import TrackMatcher
from livecam.predictions import Points, Prediction, Predictions

Velocity = tuple[float, float]
"""Source pixels per source frame."""

Pins = tuple[bool, bool, bool, bool]
"""Which sides of a box (left, top, right, bottom) stay at the picture's edge.

A box that touches the edge in an answer is taken to hold an object reaching beyond it: as the
picture moves, that side stays at the edge and only the others move (a car driving out of the
picture shrinks its box; a wall filling the height keeps its full height when the camera tilts).
"""

FREE: Pins = (False, False, False, False)

MAX_BOXES = 40
"""Answers with more boxes than this are not carried (see :class:`Compensator`)."""

EDGE_PX = 2.0
"""A side this close to the picture's edge in an answer is pinned to it."""


@dataclass(frozen=True)
class Carried:
    """The newest answer's boxes as they are in frame ``index``.

    Attributes:
        index: the source index of the frame the boxes are placed for.
        seq: grows with every result, so the newest lives in a LatestSlot (a new answer between
            two frames gives a second result for the same frame).
        answer: the answer the boxes came from (its frame, capture time, caption).
        items: the boxes, moved, with track ids, in source pixels (not clipped to the picture).
        velocity: each box's last motion per source frame, for drawing a frame or two ahead.
        pins: each box's sides held at the picture's edge.
        compensated: False when the answer had too many boxes to carry (they are as detected).
        lost: each box whose motion could not be estimated in the last step (too few good flow
            points: a plain surface, or an object that turned, was hidden or left).
    """

    index: int
    seq: int
    answer: Predictions
    items: tuple[Prediction, ...]
    velocity: tuple[Velocity, ...]
    pins: tuple[Pins, ...] = ()
    compensated: bool = True
    lost: tuple[bool, ...] = ()

    def ahead(self, frames: int) -> tuple[Prediction, ...]:
        """The boxes moved on by their last velocity for ``frames`` more frames."""
        if frames <= 0 or not self.compensated:
            return self.items
        pins = self.pins or tuple(FREE for _ in self.items)
        return tuple(
            moved(p, vx * frames, vy * frames, pin)
            for p, (vx, vy), pin in zip(self.items, self.velocity, pins, strict=True)
        )


class Compensator:
    """Moves the newest answer's boxes with their objects, frame by frame.

    Args:
        fps: the source's frame rate (sizes the ring to ``seconds``).
        seconds: how far back an answer's frame may be and still be carried from.
        long_side: the ring's grey frames are at most this many pixels on their long side.
        carrier: the per-step box motion estimator.
        matcher: gives the boxes track ids.
        catch_up_steps: a new answer is carried to the present in at most this many steps
            (frames are skipped over beyond that), bounding the work per answer.
        max_boxes: an answer with more boxes is drawn as detected, not carried, so the work
            per frame stays bounded whatever an API sends.
    """

    def __init__(
        self,
        fps: float,
        *,
        seconds: float = 2.0,
        long_side: int = 480,
        carrier: BoxCarrier | None = None,
        matcher: TrackMatcher | None = None,
        catch_up_steps: int = 15,
        max_boxes: int = MAX_BOXES,
    ) -> None:
        self.ring = FrameRing(max(8, min(600, math.ceil(seconds * max(fps, 1.0)) + 2)), long_side)
        self.carrier = carrier or BoxCarrier()
        self.matcher = matcher or TrackMatcher()
        self.catch_up_steps = catch_up_steps
        self.max_boxes = max_boxes
        self._answer: Predictions | None = None
        self._items: tuple[Prediction, ...] = ()
        self._velocity: tuple[Velocity, ...] = ()
        self._pins: tuple[Pins, ...] = ()
        self._lost: tuple[bool, ...] = ()
        self._size = (0, 0)
        self._at = -1
        self._version = -1
        self._history: OrderedDict[int, _State] = OrderedDict()
        """The carried boxes of the last frames, by index: what a late answer is matched against."""

    @property
    def tracks_started(self) -> int:
        return self.matcher.tracks_started

    def step(self, index: int, image: Image, answer: Predictions | None) -> Carried | None:
        """Take frame ``index`` and the newest answer; the boxes as they are in this frame.

        Returns None until there is an answer.
        """
        self.ring.add(index, image)
        self._size = (image.shape[1], image.shape[0])
        if self._items and self._at >= 0:
            self._items, self._velocity, self._lost = self._carry(
                self._items, self.ring.path(self._at, index), self._velocity, self._pins
            )
        self._at = index
        if answer is not None:
            self._adopt(answer)
        return self._result()

    def take(self, answer: Predictions) -> Carried | None:
        """A new answer between frames: its boxes carried to the newest frame at once.

        Returns None before the first frame, or when ``answer`` is the one already taken.
        """
        if self._at < 0 or not self._adopt(answer):
            return None
        return self._result()

    def _adopt(self, answer: Predictions) -> bool:
        """Take ``answer`` at the newest frame if it is new; whether it was."""
        if self._answer is not None and answer.frame_seq == self._answer.frame_seq:
            return False
        if len(answer.items) > self.max_boxes:
            self._items, self._velocity, self._pins, self._lost = (), (), (), ()
        else:
            self._take(answer, self._at)
        self._answer = answer
        return True

    def _result(self) -> Carried | None:
        """The boxes as they are in the newest frame, remembered for matching later answers."""
        self._history[self._at] = (self._items, self._velocity, self._pins)
        while len(self._history) > self.ring.capacity:
            self._history.popitem(last=False)
        if self._answer is None:
            return None
        self._version += 1
        if len(self._answer.items) > self.max_boxes:
            return Carried(self._at, self._version, self._answer, self._answer.items, (), (), compensated=False)
        return Carried(self._at, self._version, self._answer, self._items, self._velocity, self._pins, lost=self._lost)

    def _take(self, answer: Predictions, index: int) -> None:
        """Replace the carried boxes by ``answer``'s, carried from its frame to ``index``.

        The answer's boxes are matched, for their track ids, to the boxes as they were carried in
        the answer's own frame (same frame, so even fast objects overlap their track), and each
        starts with its track's velocity, which picks its object when two move in one box.
        """
        then = [i for i in self._history if i <= answer.frame_index]
        before, speeds, _ = self._history[then[-1]] if then else (self._items, self._velocity, self._pins)
        items = self.matcher.assign(before, answer.items)
        by_track = {p.track_id: v for p, v in zip(before, speeds, strict=True)}
        velocity = tuple(by_track.get(p.track_id, (0.0, 0.0)) for p in items)
        self._pins = tuple(_pins(p, self._size) for p in items)
        path = self.ring.path(answer.frame_index, index)
        if len(path) > self.catch_up_steps + 1:
            stride = math.ceil((len(path) - 1) / self.catch_up_steps)
            path = path[::stride] if (len(path) - 1) % stride == 0 else [*path[::stride], path[-1]]
        self._items, self._velocity, self._lost = self._carry(items, path, velocity, self._pins, record=True)

    def _carry(
        self,
        items: Sequence[Prediction],
        path: Sequence[int],
        velocity: tuple[Velocity, ...],
        pins: tuple[Pins, ...],
        *,
        record: bool = False,
    ) -> tuple[tuple[Prediction, ...], tuple[Velocity, ...], tuple[bool, ...]]:
        """``items`` moved along the frames of ``path`` (the first is where they are now).

        With ``record``, the history of each frame along the path becomes these boxes there (frames
        skipped over keep the boxes of the step before), so the next answer is matched against the
        newest answer's tracks.
        """
        between = [k for k in self._history if path[0] <= k <= path[-1]] if record and path else []
        scale = self.ring.scale
        boxes = list(items)
        speeds = list(velocity)
        lost = [False] * len(boxes)
        for a, b in zip(path, path[1:], strict=False):
            for k in between:
                if a <= k < b:
                    self._history[k] = (tuple(boxes), tuple(speeds), pins)
            prev, nxt = self.ring.get(a), self.ring.get(b)
            if prev is None or nxt is None or not boxes:
                continue
            grey: list[Box] = [(p.x1 * scale, p.y1 * scale, p.x2 * scale, p.y2 * scale) for p in boxes]
            priors = [(vx * (b - a) * scale, vy * (b - a) * scale) for vx, vy in speeds]
            for i, shift in enumerate(self.carrier.shifts(prev, nxt, grey, priors)):
                lost[i] = shift is None
                if shift is None:
                    speeds[i] = (0.0, 0.0)
                    continue
                dx, dy = shift[0] / scale, shift[1] / scale
                boxes[i] = moved(boxes[i], dx, dy, pins[i])
                speeds[i] = (dx / (b - a), dy / (b - a))
        return tuple(boxes), tuple(speeds), tuple(lost)


_State = tuple[tuple[Prediction, ...], tuple[Velocity, ...], tuple[Pins, ...]]


def _pins(p: Prediction, size: tuple[int, int]) -> Pins:
    width, height = size
    return (p.x1 <= EDGE_PX, p.y1 <= EDGE_PX, p.x2 >= width - EDGE_PX, p.y2 >= height - EDGE_PX)


def moved(p: Prediction, dx: float, dy: float, pins: Pins = FREE) -> Prediction:
    """``p`` (box, polygon, keypoints) moved by ``(dx, dy)``; pinned sides stay where they are."""
    if dx == 0 and dy == 0:
        return p
    left, top, right, bottom = pins
    x1 = p.x1 if left else p.x1 + dx
    y1 = p.y1 if top else p.y1 + dy
    x2 = p.x2 if right else p.x2 + dx
    y2 = p.y2 if bottom else p.y2 + dy
    return replace(
        p,
        x1=x1,
        y1=y1,
        x2=max(x2, x1),
        y2=max(y2, y1),
        points=_shifted(p.points, dx, dy),
        keypoints=tuple(replace(k, x=k.x + dx, y=k.y + dy) for k in p.keypoints),
    )


def _shifted(points: Sequence[tuple[float, float]], dx: float, dy: float) -> Sequence[tuple[float, float]]:
    """A polygon moved by (dx, dy): one array operation for the vertex array answers carry."""
    if isinstance(points, Points):
        return Points(points.array + (dx, dy))
    return tuple((x + dx, y + dy) for x, y in points)


def clipped(items: Sequence[Prediction], width: int, height: int) -> tuple[Prediction, ...]:
    """The boxes cut to the picture, dropping those wholly outside (what is drawn and logged)."""
    out = []
    for p in items:
        x1, y1, x2, y2 = max(0.0, p.x1), max(0.0, p.y1), min(float(width), p.x2), min(float(height), p.y2)
        if x1 < x2 and y1 < y2:
            out.append(p if (x1, y1, x2, y2) == (p.x1, p.y1, p.x2, p.y2) else replace(p, x1=x1, y1=y1, x2=x2, y2=y2))
    return tuple(out)
