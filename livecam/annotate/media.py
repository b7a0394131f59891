"""What ``annotate`` reads and writes: a video file or a folder of images, in and out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2

from livecam.display import VideoRecorder
from livecam.errors import ConfigError, OutputError, SourceError
from livecam.frames import Image
from livecam.sources import OpenCVSource

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


@dataclass(frozen=True)
class InputFrame:
    """One frame to annotate.

    Attributes:
        index: position in the input, from 0.
        image: the decoded BGR pixels.
        time_s: position in the video in seconds (None for images).
        name: the image's file name in folder mode (None for video).
    """

    index: int
    image: Image
    time_s: float | None = None
    name: str | None = None


class FrameInput(Protocol):
    """Frames in order; iteration ends at the end of the input."""

    @property
    def total(self) -> int | None:
        """How many frames to expect, when known."""
        ...

    @property
    def ended_early(self) -> str | None:
        """Why iteration stopped before the end of the input (damaged or truncated), else None."""
        ...

    def __iter__(self) -> Iterator[InputFrame]: ...

    def close(self) -> None:
        """Release the file; safe to call twice."""
        ...


class FrameOutput(Protocol):
    """Where annotated frames go, in order."""

    @property
    def written(self) -> int:
        """Frames written so far."""
        ...

    def write(self, frame: InputFrame, image: Image) -> None:
        """Append the annotated ``image`` of ``frame``."""
        ...

    def close(self) -> None:
        """Finish the output so it is valid; safe to call twice."""
        ...


class VideoInput:
    """The frames of a video file OpenCV can read, decoded as fast as it goes (not paced).

    ``start`` and ``end`` choose the frames ``[start, end)`` (a segment; ``end`` None: to the
    end of the file); frames keep their index and time in the whole file.

    Raises:
        ConfigError: the file is missing, not a video OpenCV can read, or cannot be positioned.
    """

    def __init__(self, path: Path, start: int = 0, end: int | None = None) -> None:
        self.path = path
        self.start = start
        self._source = OpenCVSource(str(path))
        try:
            info = self._source.open()
            self._source.seek(start)
        except SourceError as exc:
            self._source.close()
            raise ConfigError(f"{exc}") from exc
        self.fps = info.fps
        self.size = (info.width, info.height)
        self.frame_count = info.frame_count
        """Frames the whole file's header promises, when it says."""
        last = info.frame_count if end is None else end
        self.end = end
        self._total = None if last is None else max(0, last - start)
        self._ended_early: str | None = None

    @property
    def total(self) -> int | None:
        return self._total

    @property
    def ended_early(self) -> str | None:
        return self._ended_early

    def __iter__(self) -> Iterator[InputFrame]:
        index = self.start
        while self.end is None or index < self.end:
            try:
                image = self._source.read()
            except SourceError as exc:
                self._ended_early = f"{exc}; the file may be damaged"
                return
            if image is None:
                if self._total is not None and index < self.start + self._total:
                    # The container's header promises more frames than could be decoded: a cut-off file.
                    self._ended_early = (
                        f"{self.path} decodes no further than its first {index} frames; "
                        f"the file is probably truncated or damaged"
                    )
                return
            yield InputFrame(index, image, time_s=round(index / self.fps, 4))
            index += 1

    def close(self) -> None:
        self._source.close()


class ImageFolderInput:
    """The images (jpg, png, bmp, webp) of a folder, in name order; unreadable ones are skipped.

    Raises:
        ConfigError: the folder holds no image.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise ConfigError(f"{folder} holds no .jpg, .png, .bmp or .webp image; give a video or an image folder")

    @property
    def total(self) -> int | None:
        return len(self.paths)

    @property
    def ended_early(self) -> str | None:
        """Always None: an unreadable image is skipped with a warning, not an early end."""
        return None

    def __iter__(self) -> Iterator[InputFrame]:
        index = 0
        for path in self.paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("%s: not an image OpenCV can read; skipped", path)
                continue
            yield InputFrame(index, image, name=path.name)  # type: ignore[arg-type]
            index += 1

    def close(self) -> None:
        return None


class VideoOutput:
    """Annotated frames as a video of the input's size and frame rate (H.264 when available)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self._recorder = VideoRecorder(path, fps, size)

    @property
    def codec(self) -> str:
        """The FourCC the file is written with, e.g. ``avc1`` or ``mp4v``."""
        return self._recorder.codec

    @property
    def written(self) -> int:
        return self._recorder.frames_written

    def write(self, frame: InputFrame, image: Image) -> None:
        self._recorder.write(image)

    def close(self) -> None:
        self._recorder.close()


class ImageFolderOutput:
    """Annotated images written into a folder under their input names."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._written = 0

    @property
    def written(self) -> int:
        return self._written

    def write(self, frame: InputFrame, image: Image) -> None:
        """Write the image under the input's name.

        Raises:
            OutputError: the image cannot be written (folder gone, disk full).
        """
        path = self.folder / (frame.name or f"frame_{frame.index:06d}.png")
        try:
            ok = cv2.imwrite(str(path), image)
        except cv2.error as exc:
            raise OutputError(f"cannot write {path}; check the folder and free space") from exc
        if not ok:
            raise OutputError(f"cannot write {path}; check the folder and free space")
        self._written += 1

    def close(self) -> None:
        return None
