"""Annotating from keyframes (``--keyframes auto|N``): a few frames are sent, the rest placed.

Only keyframes are sent. The boxes of every frame between two keyframes come from the answers on
both sides: the first keyframe's boxes are carried forward frame by frame with optical flow
(:class:`~livecam.motion.carrier.BoxCarrier`), the second's carried backward, the two sets
matched by where they meet, and each matched pair blended by distance (a frame near the first
keyframe takes mostly its carried box).

Keyframes are asked for boxes down to :data:`TRACK_CONFIDENCE`, below the display threshold, so
that an object the model sees at 0.5 on one keyframe and at 0.3 on the next is still one object.
A placed box's confidence is interpolated between its two keyframes, and it is drawn where that
clears the display threshold: a detection that flickers around the threshold is drawn on the
frames nearer its confident side, not on all or none of them. A box found on one side only fades
towards the side that does not see it (its confidence interpolated towards 0) and ends where its
flow is lost.

``auto`` sends a keyframe at least every :data:`MAX_GAP` frames and at a scene cut (the change
measure of ``--send changes``, after removing the camera's own motion), then checks each pair of
keyframes: where they disagree (a confident object on one side not seen at all on the other, or
not where the motion between them puts it), the frame halfway between is sent too, and so on
while at least :data:`MIN_SPLIT` frames lie between. Calls go where the picture is hard to follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from livecam.client import ApiConfig
from livecam.cost.change import ChangeMeter, Thumb, thumbnail
from livecam.frames import Image
from livecam.motion.carrier import Box, BoxCarrier, Shift
from livecam.motion.compensator import moved
from livecam.motion.ring import Grey
from livecam.predictions import Prediction, Predictions

MAX_GAP = 16
"""``auto``: a keyframe at least this often (frames), so a missed object is found soon."""
MIN_SPLIT = 6
"""``auto``: two disagreeing keyframes with fewer frames than this between them get no keyframe
between: on the sample footage those calls bought less than the same calls spread evenly."""
FLOW_LONG_SIDE = 480
"""Optical flow runs on grey frames halved until their long side is at most this (as the motion
thread's); at 320, people 60 pixels tall in a 768x576 picture had too few points to be followed."""
TRACK_CONFIDENCE = 0.20
"""Keyframes are asked for boxes down to this confidence (0-1), for matching and interpolating only."""
SHOWN_CONFIDENCE = 0.40
"""The display threshold a placed box's interpolated confidence must clear, unless told."""
MATCH_IOU = 0.3
"""A box carried forward and one carried backward are the same object above this overlap."""
AGREE_IOU = 0.3
"""``auto``: two keyframes agree when each object carried from one lands on it in the other this well."""
AGREE_CONFIDENCE = 0.6
"""``auto``: a box this confident seen on one side only (not even at :data:`TRACK_CONFIDENCE` on the
other) means the keyframes disagree."""
SCENE_CUT = 0.5
"""``auto``: a keyframe where this share of the picture changed since the last one."""

Keyframes = int | str
"""``"auto"`` or every Nth frame."""


def parse_keyframes(value: str) -> Keyframes:
    """``auto`` or a whole number of at least 2.

    Raises:
        ValueError: anything else.
    """
    if value.strip().lower() == "auto":
        return "auto"
    try:
        every = int(value)
    except ValueError:
        raise ValueError(f"must be auto or a whole number (got {value!r})") from None
    if every < 2:
        raise ValueError(f"must be auto or at least 2 (got {every}); send every frame without --keyframes")
    return every


def asking_for_tracks(api: ApiConfig, choice: Keyframes | None) -> ApiConfig:
    """``api`` asking for boxes down to :data:`TRACK_CONFIDENCE` when keyframes are placed (only
    those above ``--confidence`` are drawn); unchanged without ``--keyframes``."""
    if choice is None:
        return api
    lowest = TRACK_CONFIDENCE * 100
    if api.lowest_confidence is not None:
        lowest = min(lowest, api.lowest_confidence)
    return api if lowest >= api.confidence else replace(api, lowest_confidence=lowest)


def gap_of(choice: Keyframes) -> int:
    """The most frames from one keyframe to the next."""
    return MAX_GAP if choice == "auto" else int(choice)


class KeyframePicker:
    """Says, frame by frame in input order, which frames are keyframes.

    Args:
        choice: ``"auto"`` or every Nth frame.
        total: the input's frame count when known (its last frame is then a keyframe too).
        meter: the change measure (``auto``).
    """

    def __init__(self, choice: Keyframes, total: int | None = None, meter: ChangeMeter | None = None) -> None:
        self.choice = choice
        self.total = total
        self._meter = meter or ChangeMeter()
        self._last = -1
        self._reference: Thumb | None = None

    def is_key(self, index: int, image: Image) -> bool:
        """Whether frame ``index`` is sent."""
        key = index == 0 or (self.total is not None and index == self.total - 1)
        if self.choice == "auto":
            thumb = thumbnail(index, image)
            if not key and self._reference is not None:
                changed = self._meter.changed_cells(self._reference, thumb, aligned=True)
                key = index - self._last >= MAX_GAP or changed >= SCENE_CUT * thumb.grey.size
            if key or self._reference is None:
                self._reference = thumb
        elif not key:
            key = index % int(self.choice) == 0
        if key:
            self._last = index
        return key


@dataclass(frozen=True)
class Placed:
    """The boxes placed on one frame between keyframes ``k0`` and ``k1`` (``k1`` None after the last)."""

    predictions: Predictions
    k0: int
    k1: int | None


class Track:
    """One box carried across the frames between two keyframes.

    Attributes:
        at: where it is on each frame (where it was last seen once its flow is lost).
        lost_from: the first step whose flow was lost, if any.
    """

    def __init__(self, prediction: Prediction, steps: int) -> None:
        self.prediction = prediction
        self.at: list[Prediction] = [prediction] * steps
        self.lost_from: int | None = None

    def seen(self, step: int) -> Prediction | None:
        """Where it is on frame ``step``, while its flow holds."""
        return self.at[step] if self.lost_from is None or step < self.lost_from else None

    def reversed(self) -> None:
        """Turn a track carried backward into frame order (its flow then holds from ``lost_from`` on)."""
        self.at.reverse()
        if self.lost_from is not None:
            self.lost_from = len(self.at) - self.lost_from


@dataclass(frozen=True)
class Key:
    """A keyframe: its index, picture and answer (None when its request failed)."""

    index: int
    image: Image
    answer: Predictions | None


class Segment:
    """The frames between two keyframes, with each keyframe's boxes carried across them.

    Args:
        first: the keyframe before.
        between: the pictures of the frames in between, in order.
        last: the keyframe after, or None after the last keyframe.
        shown: the display threshold (0-1): a placed box is drawn where its interpolated
            confidence reaches it. The keyframes' boxes below it (their ``below_threshold``) are
            tracked too, for matching and interpolating.
    """

    def __init__(
        self,
        first: Key,
        between: Sequence[Image],
        last: Key | None,
        carrier: BoxCarrier,
        shown: float = SHOWN_CONFIDENCE,
    ) -> None:
        self.first, self.last, self.shown = first, last, shown
        self.steps = steps = len(between)
        greys, scale = _greys([first.image, *between, *([last.image] if last is not None else [])])
        self.forward = _carried(_tracked(first.answer), greys[: steps + 1], scale, carrier)
        self.backward: list[Track] = []
        if last is not None and last.answer is not None:
            self.backward = _carried(_tracked(last.answer), greys[::-1][: steps + 1], scale, carrier)
        self.pairs: dict[int, int] = {}
        self._overlaps: list[float] = []
        if self.backward:
            at_end = [_carry_one_more(t, greys, steps, scale, carrier) for t in self.forward]
            at_start = [_carry_one_more(t, greys[::-1], steps, scale, carrier) for t in self.backward]
            self.pairs, self._overlaps = _match(
                [t.prediction for t in self.forward], at_end, [t.prediction for t in self.backward], at_start
            )
            for track in self.backward:
                track.reversed()

    def agrees(self) -> bool:
        """Whether the two keyframes tell the same story: every confident box on either side found
        on the other, where the motion between them puts it (else a keyframe between is needed)."""
        if self.last is None or self.first.answer is None or self.last.answer is None:
            return True
        matched_back = set(self.pairs.values())
        lonely = [t for i, t in enumerate(self.forward) if i not in self.pairs] + [
            t for j, t in enumerate(self.backward) if j not in matched_back
        ]
        if any(t.prediction.confidence >= AGREE_CONFIDENCE for t in lonely):
            return False
        return all(overlap >= AGREE_IOU for overlap in self._overlaps)

    def split_at(self) -> int | None:
        """``auto``: the place in ``between`` of the frame worth asking about too (the middle one),
        when the keyframes disagree and at least :data:`MIN_SPLIT` frames lie between; else None."""
        if self.last is None or self.steps < MIN_SPLIT or self.agrees():
            return None
        return self.steps // 2

    def placed(self) -> list[Placed]:
        """The boxes of each frame in between."""
        first, last = self.first, self.last
        template = first.answer or (last.answer if last is not None else None) or Predictions()
        k1 = last.index if last is not None else None
        # A box seen on one side only fades towards a keyframe that answered without it; after
        # the last keyframe, or before a failed one, nothing says it left.
        fades = last is not None and last.answer is not None
        matched_back = set(self.pairs.values())
        placed: list[Placed] = []
        for step in range(self.steps):
            weight = (step + 1) / (self.steps + 1)  # how far from the first keyframe
            items: list[Prediction] = []
            for i, track in enumerate(self.forward):
                j = self.pairs.get(i)
                if j is not None:
                    items.append(_blend(track.at[step], self.backward[j].at[step], weight))
                elif (alone := track.seen(step)) is not None:
                    items.append(replace(alone, confidence=alone.confidence * (1 - weight if fades else 1)))
            for j, track in enumerate(self.backward):
                if j not in matched_back and (alone := track.seen(step)) is not None:
                    items.append(replace(alone, confidence=alone.confidence * weight))
            shown = tuple(p for p in items if p.confidence >= self.shown)
            placed.append(Placed(replace(template, items=shown, below_threshold=()), first.index, k1))
        return placed


def place_between(
    first: Key,
    between: Sequence[Image],
    last: Key | None,
    carrier: BoxCarrier | None = None,
    shown: float = SHOWN_CONFIDENCE,
) -> list[Placed]:
    """The boxes of each frame of ``between``, from the answers of the keyframes on both sides."""
    if not between:
        return []
    return Segment(first, between, last, carrier or BoxCarrier(), shown).placed()


def _tracked(answer: Predictions | None) -> tuple[Prediction, ...]:
    """A keyframe's boxes, those under the display threshold included."""
    return () if answer is None else (*answer.items, *answer.below_threshold)


def _greys(images: Sequence[Image]) -> tuple[list[Grey], float]:
    greys: list[Grey] = []
    scale = 1.0
    for image in images:
        grey: Grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)
        while max(grey.shape[:2]) > FLOW_LONG_SIDE and min(grey.shape[:2]) >= 2:
            grey = np.asarray(cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA))
        scale = grey.shape[1] / image.shape[1]
        greys.append(grey)
    return greys, scale


def _carried(items: Sequence[Prediction], greys: Sequence[Grey], scale: float, carrier: BoxCarrier) -> list[Track]:
    """Each box moved through ``greys[1:]`` from ``greys[0]``; a box whose flow is lost stays put."""
    steps = len(greys) - 1
    tracks = [Track(p, steps) for p in items]
    current = list(items)
    velocity: list[Shift] = [(0.0, 0.0)] * len(tracks)
    for step in range(steps):
        if not tracks:
            break
        boxes: list[Box] = [_grey_box(p, scale) for p in current]
        for i, shift in enumerate(carrier.shifts(greys[step], greys[step + 1], boxes, velocity)):
            if shift is None:
                velocity[i] = (0.0, 0.0)
                if tracks[i].lost_from is None:
                    tracks[i].lost_from = step
            else:
                current[i] = moved(current[i], shift[0] / scale, shift[1] / scale)
                velocity[i] = shift
            tracks[i].at[step] = current[i]
    return tracks


def _carry_one_more(track: Track, greys: Sequence[Grey], steps: int, scale: float, carrier: BoxCarrier) -> Prediction:
    """Where a track is on the keyframe at the other end (``greys`` in the track's own direction)."""
    here = track.at[steps - 1] if steps else track.prediction
    shift = carrier.shifts(greys[steps], greys[steps + 1], [_grey_box(here, scale)])[0]
    return here if shift is None else moved(here, shift[0] / scale, shift[1] / scale)


def _grey_box(p: Prediction, scale: float) -> Box:
    return (p.x1 * scale, p.y1 * scale, p.x2 * scale, p.y2 * scale)


def _match(
    first: Sequence[Prediction],
    first_at_end: Sequence[Prediction],
    last: Sequence[Prediction],
    last_at_start: Sequence[Prediction],
) -> tuple[dict[int, int], list[float]]:
    """Forward track index -> backward track index, greedily by overlap, same class; and each pair's overlap.

    Two boxes are the same object when the first carried to the second keyframe overlaps the
    second, or the second carried back to the first keyframe overlaps the first (whichever is
    more), so one failed carry does not split an object in two.
    """
    pairs = sorted(
        (
            (max(_iou(a_end, b), _iou(a, b_start)), i, j)
            for i, (a, a_end) in enumerate(zip(first, first_at_end, strict=True))
            for j, (b, b_start) in enumerate(zip(last, last_at_start, strict=True))
            if a.class_name == b.class_name
        ),
        reverse=True,
    )
    matched: dict[int, int] = {}
    overlaps: list[float] = []
    taken: set[int] = set()
    for overlap, i, j in pairs:
        if overlap < MATCH_IOU or i in matched or j in taken:
            continue
        matched[i] = j
        overlaps.append(overlap)
        taken.add(j)
    return matched, overlaps


def _blend(ahead: Prediction, behind: Prediction, weight: float) -> Prediction:
    """One object's box from its two carried estimates (``weight``: 0 at the first keyframe, 1 at the second)."""
    near = ahead if weight < 0.5 else behind
    x1 = ahead.x1 + (behind.x1 - ahead.x1) * weight
    y1 = ahead.y1 + (behind.y1 - ahead.y1) * weight
    x2 = ahead.x2 + (behind.x2 - ahead.x2) * weight
    y2 = ahead.y2 + (behind.y2 - ahead.y2) * weight
    shifted = moved(near, (x1 + x2 - near.x1 - near.x2) / 2, (y1 + y2 - near.y1 - near.y2) / 2)
    confidence = ahead.confidence + (behind.confidence - ahead.confidence) * weight
    return replace(shifted, x1=x1, y1=y1, x2=x2, y2=y2, confidence=confidence)


def _iou(a: Prediction, b: Prediction) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter
    return inter / union if union > 0 else 0.0
