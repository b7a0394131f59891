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

    Frames are halved until they fit: OpenCV's area resize is fast only for exact halves (0.4 ms
    for 720p, against 4.7 ms for an arbitrary ratio), so 720p becomes 320 pixels wide and 1080p
    480 with the default. All frames are assumed to have the size of the first one; :attr:`scale`
    converts source pixels to ring pixels.
    """

    def __init__(self, capacity: int, long_side: int = 480) -> None:
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
        grey: Grey = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), np.uint8)
        while max(grey.shape[:2]) > self.long_side and min(grey.shape[:2]) >= 2:
            grey = np.asarray(cv2.resize(grey, (grey.shape[1] // 2, grey.shape[0] // 2), interpolation=cv2.INTER_AREA))
        if self.size is None:
            self.scale = grey.shape[1] / image.shape[1]
            self.size = (grey.shape[1], grey.shape[0])
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
