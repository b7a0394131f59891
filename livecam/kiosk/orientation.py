"""Rotation and mirroring of the picture, applied where frames enter the pipeline.

Turning frames before the detector sees them means boxes come back in the turned picture's
coordinates: picture and boxes agree by construction, with no box arithmetic.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2

from livecam.errors import ConfigError
from livecam.frames import Image
from livecam.sources import SourceInfo, VideoSource

ROTATIONS = (0, 90, 180, 270)
"""Allowed rotations, in degrees clockwise."""

_CV2_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


@dataclass(frozen=True)
class Orientation:
    """How the picture is turned for the screen.

    Attributes:
        rotation: degrees clockwise, one of :data:`ROTATIONS`.
        mirror: flip left to right (after rotating), as a mirror shows the viewer.
    """

    rotation: int = 0
    mirror: bool = False

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS:
            raise ConfigError(f"rotation must be 0, 90, 180 or 270 (got {self.rotation})")

    @property
    def identity(self) -> bool:
        """True when frames are left as they are."""
        return self.rotation == 0 and not self.mirror

    def apply(self, image: Image) -> Image:
        """``image`` rotated and mirrored (a new array; ``image`` itself is not changed)."""
        out = image
        if self.rotation:
            out = cv2.rotate(out, _CV2_ROTATE[self.rotation])  # type: ignore[assignment]
        if self.mirror:
            out = cv2.flip(out, 1)  # type: ignore[assignment]
        return out

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) of a ``width`` x ``height`` frame after turning."""
        return (height, width) if self.rotation in (90, 270) else (width, height)


class OrientedSource:
    """A :class:`~livecam.sources.VideoSource` whose frames come out turned by ``orientation``.

    Usage::

        source = OrientedSource(open_source("0"), Orientation(rotation=90))
    """

    def __init__(self, inner: VideoSource, orientation: Orientation) -> None:
        self.inner = inner
        self.orientation = orientation
        self._info: SourceInfo | None = None

    @property
    def info(self) -> SourceInfo | None:
        """The inner source's info with the turned frame size."""
        return self._info

    def open(self) -> SourceInfo:
        """Open the inner source.

        Raises:
            SourceError: the inner source cannot be opened.
        """
        info = self.inner.open()
        width, height = self.orientation.size(info.width, info.height)
        self._info = dataclasses.replace(info, width=width, height=height)
        return self._info

    def read(self) -> Image | None:
        """The next frame, turned; None when the inner read failed."""
        image = self.inner.read()
        if image is None or self.orientation.identity:
            return image
        return self.orientation.apply(image)

    def close(self) -> None:
        """Close the inner source."""
        self.inner.close()
