"""A scene of coloured objects on a grey picture, and a detector that finds them exactly.

The cost benchmark and its tests need a truth for every frame that does not depend on a model's
mood: :func:`detect_blobs` boxes every saturated blob, so the answer for a frame is a function of
the frame alone, and the boxes drawn on any frame can be scored against the answer that frame
would have had.

    frames = list(scene_frames(still_s=2, moving_s=2, cycles=2))   # (index, image) pairs
    detect_blobs(frames[0][1])                                     # Roboflow-format predictions
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

SIZE = (640, 360)
FPS = 25.0
MIN_AREA = 60
"""Blobs smaller than this many pixels are not objects."""
_HUES = {"red": 0, "yellow": 30, "green": 60, "blue": 120}


@dataclass(frozen=True)
class Thing:
    """One object: its colour, size, and where it is at the start and end of each moving period."""

    name: str
    side: int
    start: tuple[float, float]
    step: tuple[float, float]
    """Pixels per frame while the scene moves (it bounces off the edges)."""


THINGS = (
    Thing("red", 40, (80.0, 80.0), (3.0, 1.2)),
    Thing("green", 56, (400.0, 200.0), (-2.2, 1.6)),
    Thing("blue", 32, (250.0, 60.0), (1.5, 2.5)),
)


def background(seed: int = 0) -> Image:
    """A textured grey picture (a street scene without colour, so only the things are blobs)."""
    here = Path(__file__).resolve()
    sample = here.parents[2] / "sample_videos" / "vtest.avi"
    capture = cv2.VideoCapture(str(sample))
    ok, frame = capture.read()
    capture.release()
    if not ok:
        rng = np.random.default_rng(seed)
        frame = np.asarray(rng.integers(60, 190, (SIZE[1], SIZE[0], 3)), np.uint8)
    grey = cv2.cvtColor(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    return np.asarray(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), np.uint8)


def scene_frames(
    *,
    still_s: float,
    moving_s: float,
    cycles: int,
    things: Sequence[Thing] = THINGS,
    appear_at: int | None = None,
    noise: float = 2.0,
    seed: int = 0,
) -> Iterator[tuple[int, Image]]:
    """The frames of a clip: ``cycles`` times still for ``still_s`` then moving for ``moving_s``.

    Args:
        appear_at: the index of the frame where the last thing appears (absent before it).
        noise: sensor-like noise, sigma in grey levels.
    """
    base = background(seed)
    rng = np.random.default_rng(seed + 1)
    textures = [texture(t, seed + k) for k, t in enumerate(things)]
    still_n, moving_n = round(still_s * FPS), round(moving_s * FPS)
    positions = [list(t.start) for t in things]
    steps = [list(t.step) for t in things]
    index = 0
    for _ in range(cycles):
        for phase, count in (("still", still_n), ("moving", moving_n)):
            for _ in range(count):
                if phase == "moving":
                    for pos, step, thing in zip(positions, steps, things, strict=True):
                        for axis, limit in ((0, SIZE[0]), (1, SIZE[1])):
                            pos[axis] += step[axis]
                            if not 0 <= pos[axis] <= limit - thing.side:
                                step[axis] = -step[axis]
                                pos[axis] = min(max(pos[axis], 0.0), float(limit - thing.side))
                image = base.copy()
                for k, (pos, thing) in enumerate(zip(positions, things, strict=True)):
                    if appear_at is not None and k == len(things) - 1 and index < appear_at:
                        continue
                    x, y = round(pos[0]), round(pos[1])
                    image[y : y + thing.side, x : x + thing.side] = textures[k]
                if noise > 0:
                    image = np.clip(image + rng.normal(0.0, noise, image.shape), 0, 255).astype(np.uint8)
                yield index, image
                index += 1


def texture(thing: Thing, seed: int) -> Image:
    """The thing's look: its colour, fully saturated, in blocks of varying brightness (so it can be tracked)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(140, 256, (thing.side // 4 + 1, thing.side // 4 + 1), np.uint8)
    value = cv2.resize(blocks, (thing.side, thing.side), interpolation=cv2.INTER_NEAREST)
    hsv = np.dstack([np.full_like(value, _HUES[thing.name]), np.full_like(value, 255), value])
    return np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR), np.uint8)


def write_clip(path: Path, frames: Iterator[tuple[int, Image]]) -> int:
    """Write the frames as a near-lossless video; returns how many."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, SIZE)
    count = 0
    try:
        for _, image in frames:
            writer.write(image)
            count += 1
    finally:
        writer.release()
    return count


def detect_blobs(image: Image) -> list[dict[str, Any]]:
    """Every saturated blob as a Roboflow prediction (centre format, the image's pixels)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    mask = np.asarray((hsv[..., 1] > 120) & (hsv[..., 2] > 80), np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    found = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < MIN_AREA:
            continue
        hue = float(np.median(hsv[y : y + h, x : x + w, 0][mask[y : y + h, x : x + w] > 0]))
        name = min(_HUES, key=lambda n: min(abs(hue - _HUES[n]), 180 - abs(hue - _HUES[n])))
        found.append(
            {"x": x + w / 2, "y": y + h / 2, "width": w, "height": h, "confidence": 0.9, "class": name, "class_id": 0}
        )
    return found


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def corners(p: dict[str, Any]) -> tuple[float, float, float, float]:
    """A centre-format prediction as ``(x1, y1, x2, y2)``."""
    return (p["x"] - p["width"] / 2, p["y"] - p["height"] / 2, p["x"] + p["width"] / 2, p["y"] + p["height"] / 2)


def frame_score(truth: Sequence[dict[str, Any]], drawn: Sequence[dict[str, Any]]) -> float:
    """How well ``drawn`` matches ``truth`` on one frame: matched IoU over the larger count (1 if both empty).

    Boxes are matched greedily by IoU within the same class; a missing or extra box counts 0.
    """
    if not truth and not drawn:
        return 1.0
    pairs = sorted(
        (
            (iou(corners(t), corners(d)), i, j)
            for i, t in enumerate(truth)
            for j, d in enumerate(drawn)
            if t["class"] == d["class"]
        ),
        reverse=True,
    )
    used_t: set[int] = set()
    used_d: set[int] = set()
    total = 0.0
    for value, i, j in pairs:
        if value <= 0 or i in used_t or j in used_d:
            continue
        used_t.add(i)
        used_d.add(j)
        total += value
    return total / max(len(truth), len(drawn))


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def bracketing_shares(frames: int, calls: int) -> tuple[int, int]:
    """The two ``--every N`` around ``calls`` calls over ``frames`` frames: (more calls, fewer calls)."""
    ratio = frames / max(1, calls)
    return max(2, math.floor(ratio)), max(2, math.ceil(ratio))


def at_calls(calls: int, points: Sequence[tuple[int, float]]) -> float:
    """The score at ``calls`` calls, read off the straight line through two (calls, score) points
    (their mean when both made as many calls)."""
    (c0, s0), (c1, s1) = points
    if c0 == c1:
        return (s0 + s1) / 2
    return s0 + (calls - c0) / (c1 - c0) * (s1 - s0)
