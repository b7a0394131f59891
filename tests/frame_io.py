"""In-memory frame inputs and outputs for the annotation engine's tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from livecam.annotate import InputFrame
from livecam.frames import Image


class SyntheticInput:
    """``count`` small frames whose pixels hold their index."""

    def __init__(self, count: int) -> None:
        self.count = count

    @property
    def total(self) -> int | None:
        return self.count

    @property
    def ended_early(self) -> str | None:
        return None

    def __iter__(self) -> Iterator[InputFrame]:
        for i in range(self.count):
            yield InputFrame(i, np.full((48, 64, 3), i % 250, np.uint8), time_s=i / 10)

    def close(self) -> None:
        pass


class FrameList:
    """The given pictures as frames, at 25 fps."""

    def __init__(self, images: list[Image]) -> None:
        self.images = images

    @property
    def total(self) -> int | None:
        return len(self.images)

    @property
    def ended_early(self) -> str | None:
        return None

    def __iter__(self) -> Iterator[InputFrame]:
        for i, image in enumerate(self.images):
            yield InputFrame(i, image, time_s=i / 25)

    def close(self) -> None:
        pass


class ListOutput:
    """Records the index of every frame written, in order."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    @property
    def written(self) -> int:
        return len(self.indices)

    def write(self, frame: InputFrame, image: Image) -> None:
        self.indices.append(frame.index)

    def close(self) -> None:
        pass
