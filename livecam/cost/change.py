"""Whether a frame may change what is drawn: a cheap comparison of small grey frames.

A frame is reduced to a thumbnail: grey, area-averaged to cells of a few dozen source pixels
each, so sensor noise and JPEG artefacts average out (at 640x360, a cell is 10x10 pixels: noise
of sigma 2 becomes 0.2 grey levels). Two measures compare a thumbnail with the one of the last
frame sent for detection:

- **outside the boxes**: cells that changed by more than ``cell_threshold`` grey levels (after
  removing the median change, so an exposure step or a flicker is not "something new"), not
  counting cells under a box being drawn. Something new may have appeared there.
- **under a box**: the share of a box's cells that changed since the frame its answer came from.
  Without motion compensation that is an object that moved, turned or left its box; with it, it
  counts only for a box the motion carrier lost (too few flow points to follow), since a box it
  follows moves with its object.

Thresholds were chosen on the sample footage with added sensor noise (see BENCHMARKS.md, "Cost").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from livecam.frames import Image
from livecam.predictions import Prediction

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)`` in source pixels."""

CELL_PX = 10
"""Source pixels per thumbnail cell along the long side (at most ``MAX_CELLS`` cells)."""
MAX_CELLS = 96
"""The thumbnail's long side at most, in cells."""


@dataclass(frozen=True, eq=False)
class Thumb:
    """A frame as a small grey image.

    Attributes:
        seq: the frame's sequence number.
        grey: the cells, float32 grey levels 0-255.
        scale: thumbnail pixels per source pixel.
    """

    seq: int
    grey: npt.NDArray[np.float32]
    scale: float


def thumbnail(seq: int, image: Image, *, cell_px: int = CELL_PX, max_cells: int = MAX_CELLS) -> Thumb:
    """``image`` area-averaged to cells of about ``cell_px`` source pixels."""
    height, width = image.shape[:2]
    long_side = max(width, height)
    cells = max(8, min(max_cells, round(long_side / cell_px)))
    scale = cells / long_side
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return Thumb(seq, np.asarray(small, np.float32), scale)


@dataclass(frozen=True)
class ChangeMeter:
    """The two change measures, with their thresholds.

    Attributes:
        cell_threshold: a cell changed when its grey level moved by more than this.
        min_cells: this many changed cells outside the boxes make a change.
        box_share: what lies under a box changed when more than this share of its cells did.
        margin: boxes are widened by this share of their size on each side when masking, so an
            object's edge moving inside its box does not count as outside.
    """

    cell_threshold: float = 10.0
    min_cells: int = 3
    box_share: float = 0.3
    margin: float = 0.15

    def changed_cells(
        self, reference: Thumb, current: Thumb, boxes: Iterable[Box] = (), *, aligned: bool = False
    ) -> int:
        """Cells outside ``boxes`` that changed from ``reference`` to ``current``.

        With ``aligned``, the reference is first moved by the whole picture's shift (a camera that
        pans or shakes), so only what moved within the picture counts; the cells the shift
        uncovered at the edges count as changed.
        """
        if reference.grey.shape != current.grey.shape:
            return current.grey.size
        before = _aligned(reference.grey, current.grey) if aligned else reference.grey
        diff = current.grey - before - _exposure_step(reference, current)
        changed = np.abs(diff) > self.cell_threshold
        mask = self._mask(current, boxes)
        if mask is not None:
            changed &= ~mask
        return int(np.count_nonzero(changed))

    def outside_changed(self, reference: Thumb, current: Thumb, boxes: Iterable[Box] = ()) -> bool:
        """Whether something changed outside ``boxes`` since ``reference``."""
        return self.changed_cells(reference, current, boxes) >= self.min_cells

    def changed_share(self, then: Thumb, now: Thumb, boxes: Iterable[Box]) -> float:
        """The share of the cells under ``boxes`` that changed from ``then`` to ``now`` (1 if none is visible)."""
        mask = self._mask(now, boxes, margin=0.0)
        if mask is None or then.grey.shape != now.grey.shape:
            return 1.0
        diff = now.grey - then.grey - _exposure_step(then, now)
        changed = (np.abs(diff) > self.cell_threshold) & mask
        return float(np.count_nonzero(changed)) / float(np.count_nonzero(mask))

    def box_changed(self, then: Thumb, now: Thumb, boxes: Iterable[Box]) -> bool:
        """Whether what lies under ``boxes`` changed since ``then`` (an object moved, turned or left)."""
        return self.changed_share(then, now, boxes) > self.box_share

    def _mask(self, thumb: Thumb, boxes: Iterable[Box], margin: float | None = None) -> npt.NDArray[np.bool_] | None:
        mask: npt.NDArray[np.bool_] | None = None
        height, width = thumb.grey.shape
        share = self.margin if margin is None else margin
        cell = 1.0 / thumb.scale if share > 0 else 0.0  # at least one cell: objects are not cell-aligned
        for x1, y1, x2, y2 in boxes:
            mx, my = max(cell, (x2 - x1) * share), max(cell, (y2 - y1) * share)
            c1 = max(0, int(np.floor((x1 - mx) * thumb.scale)))
            r1 = max(0, int(np.floor((y1 - my) * thumb.scale)))
            c2 = min(width, int(np.ceil((x2 + mx) * thumb.scale)))
            r2 = min(height, int(np.ceil((y2 + my) * thumb.scale)))
            if c1 >= c2 or r1 >= r2:
                continue
            if mask is None:
                mask = np.zeros((height, width), np.bool_)
            mask[r1:r2, c1:c2] = True
        return mask


def _aligned(reference: npt.NDArray[np.float32], current: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``reference`` moved by the whole picture's shift towards ``current`` (unchanged when there is none)."""
    (dx, dy), response = cv2.phaseCorrelate(reference, current)
    if response < 0.1 or (abs(dx) < 0.25 and abs(dy) < 0.25):
        return reference
    shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
    height, width = reference.shape
    moved = cv2.warpAffine(reference, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(moved, np.float32)


def _exposure_step(then: Thumb, now: Thumb) -> float:
    """The change of the whole picture's brightness (the median cell's), which is not news."""
    if then.grey.shape != now.grey.shape:
        return 0.0
    return float(np.median(now.grey - then.grey))


def boxes_of(items: Sequence[Prediction]) -> list[Box]:
    """The ``(x1, y1, x2, y2)`` of predictions."""
    return [(p.x1, p.y1, p.x2, p.y2) for p in items]
