"""Moving boxes from one frame to the next with the image motion inside each box.

For every box, corner features are found inside it (a margin in, so the background at its edges
counts less), tracked into the next frame with pyramidal Lucas-Kanade, checked by tracking them
back (a point that does not return within ``fb_error`` pixels is dropped), and the box moves by
the median shift of what is left. A box with too few good points (a plain surface, or an object
that left the picture) gets no shift: it stays where it was and ages out as any answer does.
All boxes of one step share one optical-flow call each way, so the cost grows little with boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from livecam.motion.ring import Grey

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in the pixels of the grey frames."""

Shift = tuple[float, float] | None
"""A box's ``(dx, dy)`` from one frame to the next, or None when it could not be estimated."""

_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)


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
    """

    def __init__(
        self,
        *,
        max_features: int = 20,
        min_features: int = 4,
        fb_error: float = 1.0,
        margin: float = 0.15,
        window: int = 15,
        levels: int = 3,
        still: float = 0.05,
    ) -> None:
        self.max_features = max_features
        self.min_features = min_features
        self.fb_error = fb_error
        self.margin = margin
        self.window = window
        self.levels = levels
        self.still = still

    def shifts(self, prev: Grey, nxt: Grey, boxes: Sequence[Box]) -> list[Shift]:
        """The shift of each box from ``prev`` to ``nxt`` (same size), None where unknown."""
        points: list[npt.NDArray[np.float32]] = []
        owners: list[int] = []
        for i, box in enumerate(boxes):
            found = self._corners(prev, box)
            if found is not None:
                points.append(found)
                owners.extend([i] * len(found))
        result: list[Shift] = [None] * len(boxes)
        if not points:
            return result
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
        inside = (ends[:, 0] >= 0) & (ends[:, 0] < width) & (ends[:, 1] >= 0) & (ends[:, 1] < height)
        good &= inside
        for i in range(len(boxes)):
            mine = good & (owner == i)
            if int(mine.sum()) < self.min_features:
                continue
            dx, dy = (float(v) for v in np.median(moved[mine], axis=0))
            result[i] = (0.0, 0.0) if abs(dx) < self.still and abs(dy) < self.still else (dx, dy)
        return result

    def _corners(self, grey: Grey, box: Box) -> npt.NDArray[np.float32] | None:
        height, width = grey.shape[:2]
        x1, y1, x2, y2 = box
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        left, top = max(0, int(x1 + mx)), max(0, int(y1 + my))
        right, bottom = min(width, int(np.ceil(x2 - mx))), min(height, int(np.ceil(y2 - my)))
        if right - left < 3 or bottom - top < 3:
            return None
        roi = grey[top:bottom, left:right]
        corners = cv2.goodFeaturesToTrack(
            roi, maxCorners=self.max_features, qualityLevel=0.01, minDistance=2, blockSize=3
        )
        if corners is None or len(corners) < self.min_features:
            return None
        found: npt.NDArray[np.float32] = corners.reshape(-1, 2).astype(np.float32)
        found += np.array([left, top], np.float32)
        return found
