"""Several cameras on one picture: the grid's layout and the composition of its tiles.

Usage::

    layout = GridLayout.auto(4, cell=(640, 360))      # 2x2 tiles of 640x360: a 1280x720 canvas
    canvas = layout.compose([tile0, tile1, None, tile3])  # None: a black tile

Each tile is letterboxed into its cell (scaled to fit, black bars), so sources of any size and
aspect ratio mix. :class:`GridView` is what the keys change: the grid, or one camera shown on the
whole canvas.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np

from livecam.frames import Image

MAX_CANVAS = (1920, 1080)
"""The grid's canvas is at most this big; cells shrink to fit (a tile never grows past its source)."""

_AUTO = {1: (1, 1), 2: (2, 1), 3: (2, 2), 4: (2, 2), 5: (3, 2), 6: (3, 2)}
"""Auto layouts (columns, rows) by camera count; 7 to 9 cameras take 3x3, more a square grid."""


def auto_shape(cameras: int) -> tuple[int, int]:
    """The (columns, rows) of the automatic layout: 1; 2 side by side; 2x2; 3x2; 3x3; then square."""
    if cameras < 1:
        raise ValueError("a grid needs at least one camera")
    if cameras in _AUTO:
        return _AUTO[cameras]
    side = math.ceil(math.sqrt(cameras))
    return side, math.ceil(cameras / side)


@dataclass(frozen=True)
class GridLayout:
    """``cols`` x ``rows`` cells of ``cell`` (width, height) pixels each."""

    cols: int
    rows: int
    cell: tuple[int, int]

    @classmethod
    def fit(cls, shape: tuple[int, int], sizes: list[tuple[int, int]]) -> GridLayout:
        """Cells as big as the largest source, shrunk so the canvas fits :data:`MAX_CANVAS`."""
        cols, rows = shape
        width = max(w for w, _ in sizes)
        height = max(h for _, h in sizes)
        scale = min(1.0, MAX_CANVAS[0] / (width * cols), MAX_CANVAS[1] / (height * rows))
        # Even sizes: video encoders (--record) want them.
        cell = (max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2))
        return cls(cols, rows, cell)

    @property
    def size(self) -> tuple[int, int]:
        """The canvas (width, height)."""
        return self.cols * self.cell[0], self.rows * self.cell[1]

    def origin(self, index: int) -> tuple[int, int]:
        """The top-left corner of tile ``index`` (row by row)."""
        row, col = divmod(index, self.cols)
        return col * self.cell[0], row * self.cell[1]

    def compose(self, tiles: list[Image | None]) -> Image:
        """The canvas with each tile letterboxed into its cell (a None tile stays black)."""
        width, height = self.size
        canvas = np.zeros((height, width, 3), np.uint8)
        for index, tile in enumerate(tiles[: self.cols * self.rows]):
            if tile is not None:
                x, y = self.origin(index)
                fit_into(canvas[y : y + self.cell[1], x : x + self.cell[0]], tile)
        return canvas

    def single(self, tile: Image) -> Image:
        """One camera on the whole canvas, letterboxed."""
        width, height = self.size
        canvas = np.zeros((height, width, 3), np.uint8)
        fit_into(canvas, tile)
        return canvas


def fit_into(area: Image, image: Image) -> None:
    """Scale ``image`` to fit ``area`` (keeping its aspect ratio), centred, black around it."""
    area_h, area_w = area.shape[:2]
    height, width = image.shape[:2]
    scale = min(area_w / width, area_h / height)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if (new_w, new_h) != (width, height):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cast(Image, cv2.resize(image, (new_w, new_h), interpolation=interpolation))
    x, y = (area_w - new_w) // 2, (area_h - new_h) // 2
    area[y : y + new_h, x : x + new_w] = image


class GridView:
    """What the window shows: the grid (``selected`` None) or one camera; the keys change it."""

    def __init__(self, cameras: int) -> None:
        self._cameras = cameras
        self._lock = threading.Lock()
        self._selected: int | None = None

    @property
    def selected(self) -> int | None:
        """The camera shown alone (0-based), or None for the grid."""
        with self._lock:
            return self._selected

    def select(self, camera: int | None) -> bool:
        """Show camera ``camera`` alone (None: the grid); False if there is no such camera."""
        if camera is not None and not 0 <= camera < self._cameras:
            return False
        with self._lock:
            self._selected = camera
        return True
