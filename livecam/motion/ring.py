"""A bounded ring of downscaled grey copies of recent frames, keyed by their source index."""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
import numpy.typing as npt

from livecam.frames import Image

Grey = npt.NDArray[np.uint8]
"""A single-channel uint8 image."""


class FrameRing:
    """The last ``capacity`` frames as small grey images (long side at most ``long_side``).

    All frames are assumed to have the size of the first one; :attr:`scale` converts source
    pixels to ring pixels.
    """

    def __init__(self, capacity: int, long_side: int = 400) -> None:
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.capacity = capacity
        self.long_side = long_side
        self.scale = 1.0
        self.size: tuple[int, int] | None = None
        """(width, height) of the ring's images."""
        self._frames: OrderedDict[int, Grey] = OrderedDict()

    def add(self, index: int, image: Image) -> Grey:
        """Store a grey copy of ``image`` as frame ``index`` (indices must increase); returns it."""
        height, width = image.shape[:2]
        if self.size is None:
            self.scale = min(1.0, self.long_side / max(width, height))
            self.size = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        small = image if self.scale == 1.0 else cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        grey: Grey = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), np.uint8)
        self._frames[index] = grey
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)
        return grey

    def get(self, index: int) -> Grey | None:
        """Frame ``index``, if still held."""
        return self._frames.get(index)

    def path(self, start: int, end: int) -> list[int]:
        """The held indices from the first one at or after ``start`` up to ``end``, in order."""
        return [i for i in self._frames if start <= i <= end]

    @property
    def newest(self) -> int | None:
        """The newest index held."""
        return next(reversed(self._frames)) if self._frames else None

    def __len__(self) -> int:
        return len(self._frames)
