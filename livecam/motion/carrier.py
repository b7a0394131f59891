"""Moving boxes from one frame to the next with the image motion inside each box.

For every box, corner features are found inside it (a margin in, so the background at its edges
counts less), tracked into the next frame with pyramidal Lucas-Kanade, and checked by tracking
them back (a point that does not return within ``fb_error`` pixels is dropped). A box also holds
background, whose corners can outnumber the object's; so points of a grid outside every box are
tracked too, and their median is the background's motion (zero for a fixed camera, the pan
otherwise). The points of a box that move together form groups (shifts within ``agree`` pixels of
each other); the box moves with the largest group that moves apart from the background when it
holds enough of the points, else with the largest group (an object at rest, or moving with the
background). A group, not the median of all points, so that a box half over another object
follows one of them rather than a point between the two. Where boxes overlap, corners are looked
for only in the part no other box covers (when that is at least a quarter of the box).

A box with too few good points (a plain surface, or an object that left the picture) gets no
shift: it stays where it was and ages out as any answer does. All boxes of one step share one
optical-flow call each way, so the cost grows little with the number of boxes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from livecam.motion.ring import Grey

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in the pixels of the grey frames."""

Shift = tuple[float, float] | None
"""A box's ``(dx, dy)`` from one frame to the next, or None when it could not be estimated."""

Points = npt.NDArray[np.float32]

_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.05)


class BoxCarrier:
    """Estimates how far each box moved between two grey frames.

    Args:
        max_features: corners tracked per box at most.
        min_features: fewer good points than this and the box gets no shift.
        fb_error: forward-backward error (pixels) above which a point is dropped.
        margin: share of the box's width and height left out at each side when finding corners.
        window: Lucas-Kanade window side (pixels).
        levels: pyramid levels beyond the base (each doubles the motion that can be followed).
        still: shifts shorter than this (pixels) are taken as no motion, so a static scene never drifts.
        background_points: grid points tracked outside the boxes for the background's motion.
        apart: a point moving at least this far (pixels) from the background's motion is an object's.
        object_share: the least share of a box's points a moving group needs to be taken as its object.
        agree: points whose shifts are this close (pixels) move together.
    """

    def __init__(
        self,
        *,
        max_features: int = 12,
        min_features: int = 4,
        fb_error: float = 1.0,
        margin: float = 0.15,
        window: int = 11,
        levels: int = 3,
        still: float = 0.05,
        background_points: int = 40,
        apart: float = 0.5,
        object_share: float = 0.2,
        agree: float = 1.0,
    ) -> None:
        self.max_features = max_features
        self.min_features = min_features
        self.fb_error = fb_error
        self.margin = margin
        self.window = window
        self.levels = levels
        self.still = still
        self.background_points = background_points
        self.apart = apart
        self.object_share = object_share
        self.agree = agree

    def shifts(self, prev: Grey, nxt: Grey, boxes: Sequence[Box], priors: Sequence[Shift] = ()) -> list[Shift]:
        """The shift of each box from ``prev`` to ``nxt`` (same size), None where unknown.

        ``priors``: each box's expected shift (its last one), which picks between two groups of
        points that both move apart from the background (two objects in one box).
        """
        points: list[Points] = []
        owners: list[int] = []
        frames = np.asarray(boxes, np.float32).reshape(-1, 4)
        for i, box in enumerate(boxes):
            x1, y1, x2, y2 = box
            overlap = (frames[:, 0] < x2) & (frames[:, 2] > x1) & (frames[:, 1] < y2) & (frames[:, 3] > y1)
            overlap[i] = False
            found = self._corners(prev, box, [boxes[int(j)] for j in np.flatnonzero(overlap)])
            if found is not None:
                points.append(found)
                owners.extend([i] * len(found))
        result: list[Shift] = [None] * len(boxes)
        if not points:
            return result
        background = self._background(prev, boxes)
        if background is not None:
            points.append(background)
            owners.extend([-1] * len(background))
        p0 = np.concatenate(points).reshape(-1, 1, 2)
        win = (self.window, self.window)
        p1, ok1, _ = cv2.calcOpticalFlowPyrLK(
            prev, nxt, p0, None, winSize=win, maxLevel=self.levels, criteria=_CRITERIA
        )
        back, ok2, _ = cv2.calcOpticalFlowPyrLK(
            nxt, prev, p1, None, winSize=win, maxLevel=self.levels, criteria=_CRITERIA
        )
        error = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
        good = (ok1.ravel() == 1) & (ok2.ravel() == 1) & (error < self.fb_error)
        moved = (p1 - p0).reshape(-1, 2)
        owner = np.asarray(owners)
        height, width = nxt.shape[:2]
        ends = p1.reshape(-1, 2)
        good &= (ends[:, 0] >= 0) & (ends[:, 0] < width) & (ends[:, 1] >= 0) & (ends[:, 1] < height)
        ground_points = good & (owner == -1)
        ground = np.median(moved[ground_points], axis=0) if int(ground_points.sum()) >= self.min_features else 0.0
        apart = np.linalg.norm(moved - ground, axis=1) >= self.apart
        for i in range(len(boxes)):
            mine = good & (owner == i)
            if int(mine.sum()) < self.min_features:
                continue
            prior = priors[i] if i < len(priors) else None
            dx, dy = _dominant(moved[mine], apart[mine], self.agree, self.object_share, prior)
            result[i] = (0.0, 0.0) if abs(dx) < self.still and abs(dy) < self.still else (dx, dy)
        return result

    def _corners(self, grey: Grey, box: Box, others: Sequence[Box]) -> Points | None:
        height, width = grey.shape[:2]
        x1, y1, x2, y2 = box
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        left, top = max(0, int(x1 + mx)), max(0, int(y1 + my))
        right, bottom = min(width, int(np.ceil(x2 - mx))), min(height, int(np.ceil(y2 - my)))
        if right - left < 3 or bottom - top < 3:
            return None
        corners = cv2.goodFeaturesToTrack(
            grey[top:bottom, left:right],
            maxCorners=self.max_features,
            qualityLevel=0.01,
            minDistance=2,
            blockSize=3,
            mask=_unshared(left, top, right, bottom, others),
        )
        if corners is None or len(corners) < self.min_features:
            return None
        found: Points = corners.reshape(-1, 2).astype(np.float32)
        found += np.array([left, top], np.float32)
        return found

    def _background(self, grey: Grey, boxes: Sequence[Box]) -> Points | None:
        """Points of a fixed grid outside every box (finding corners in the whole frame costs ~10x more)."""
        if self.background_points <= 0:
            return None
        height, width = grey.shape[:2]
        across = max(2, round(math.sqrt(self.background_points * width / height)))
        down = max(2, round(self.background_points / across))
        xs, ys = np.meshgrid((np.arange(across) + 0.5) * width / across, (np.arange(down) + 0.5) * height / down)
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
        keep = np.ones(len(grid), bool)
        for x1, y1, x2, y2 in boxes:
            keep &= ~((grid[:, 0] >= x1) & (grid[:, 0] <= x2) & (grid[:, 1] >= y1) & (grid[:, 1] <= y2))
        found: Points = grid[keep]
        return found if len(found) else None


def _unshared(left: int, top: int, right: int, bottom: int, others: Sequence[Box]) -> npt.NDArray[np.uint8] | None:
    """A mask of the region without the parts other boxes cover, or None when little would be left."""
    mask: npt.NDArray[np.uint8] | None = None
    for x1, y1, x2, y2 in others:
        ox1, oy1 = max(left, int(x1)), max(top, int(y1))
        ox2, oy2 = min(right, int(np.ceil(x2))), min(bottom, int(np.ceil(y2)))
        if ox1 >= ox2 or oy1 >= oy2:
            continue
        if mask is None:
            mask = np.full((bottom - top, right - left), 255, np.uint8)
        mask[oy1 - top : oy2 - top, ox1 - left : ox2 - left] = 0
    if mask is not None and np.count_nonzero(mask) < mask.size // 4:
        return None
    return mask


def _dominant(
    moved: Points, apart: npt.NDArray[np.bool_], agree: float, share: float, prior: Shift
) -> tuple[float, float]:
    """The median shift of the largest group of points moving together, preferring a moving group
    (the one nearest ``prior`` when there are several)."""
    close = np.linalg.norm(moved[:, None, :] - moved[None, :, :], axis=2) <= agree
    support = close.sum(axis=1)
    seed = int(np.argmax(support))
    strong = apart & (support >= max(3, share * len(moved)))
    if strong.any():
        if prior is not None and prior != (0.0, 0.0):
            distance = np.linalg.norm(moved - np.asarray(prior, np.float32), axis=1)
            seed = int(np.argmin(np.where(strong, distance, np.inf)))
        else:
            seed = int(np.argmax(np.where(strong, support, -1)))
    dx, dy = np.median(moved[close[seed]], axis=0)
    return float(dx), float(dy)
