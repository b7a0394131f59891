"""The frame value passed from the capture thread to the sender and the display."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
"""A BGR uint8 image of shape (height, width, 3), as OpenCV uses."""


@dataclass(frozen=True, eq=False)
class Frame:
    """One captured frame.

    Attributes:
        seq: capture sequence number, strictly increasing from 0 within one source.
        image: the BGR pixels; never modified after capture (draw on a copy).
        captured_at: monotonic clock time when the frame was read.
        index: 0-based index of the frame in its source (for a file, its index in the file;
            frames a capture skips as unreadable still count); ``seq`` when not given.
    """

    seq: int
    image: Image
    captured_at: float
    index: int = -1

    def __post_init__(self) -> None:
        if self.index < 0:
            object.__setattr__(self, "index", self.seq)
