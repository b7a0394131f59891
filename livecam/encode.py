"""JPEG encoders: OpenCV (always there) and PyTurboJPEG (the optional ``livecam[turbojpeg]`` extra).

``auto`` is OpenCV, fixed, not chosen at start-up: opencv-python bundles libjpeg-turbo 3.x,
which measured as fast as PyTurboJPEG 1.x on the system's libjpeg-turbo 2.1, with the same
bytes, and needs no system library (``scripts/bench.py encoder``; BENCHMARKS.md), so a start-up
race between two equals would only pick by noise. PyTurboJPEG is imported only for
``--encoder turbojpeg``; when it is not installed or its library does not load, the encoder
falls back to OpenCV with one warning saying how to install it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, cast

import cv2

from livecam.errors import ConfigError
from livecam.frames import Image

log = logging.getLogger(__name__)

ENCODER_NAMES = ("auto", "opencv", "turbojpeg")
DEFAULT_ENCODER = "opencv"
"""What ``auto`` is: always OpenCV (measured as fast as PyTurboJPEG by ``scripts/bench.py encoder``)."""


class Encoder(Protocol):
    """Turns a BGR image into JPEG bytes."""

    name: str

    def encode(self, image: Image, quality: int) -> bytes: ...


class OpenCVEncoder:
    """``cv2.imencode``; thread-safe, no extra library."""

    name = "opencv"

    def encode(self, image: Image, quality: int) -> bytes:
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise ValueError("OpenCV could not JPEG-encode the frame")
        return buffer.tobytes()


class TurboJPEGEncoder:
    """PyTurboJPEG on the system libjpeg-turbo.

    Raises:
        ConfigError: the ``turbojpeg`` module or its shared library cannot be loaded.
    """

    name = "turbojpeg"

    def __init__(self, library_path: str | None = None) -> None:
        try:
            from turbojpeg import TJPF_BGR, TJSAMP_420, TurboJPEG
        except ImportError as exc:
            raise ConfigError("PyTurboJPEG is not installed (pip install 'livecam[turbojpeg]')") from exc
        try:
            self._jpeg: Any = TurboJPEG(library_path) if library_path else TurboJPEG()
        except (OSError, RuntimeError) as exc:
            raise ConfigError(
                "the libjpeg-turbo library could not be loaded (Debian: apt-get install libturbojpeg0)"
            ) from exc
        self._pixel_format = TJPF_BGR
        self._subsample = TJSAMP_420

    def encode(self, image: Image, quality: int) -> bytes:
        data: bytes = self._jpeg.encode(
            image, quality=int(quality), pixel_format=self._pixel_format, jpeg_subsample=self._subsample
        )
        return data


_announced: set[str] = set()


def _announce(message: str, *args: object, level: int = logging.INFO) -> None:
    """Log which encoder is used once per process, not once per sender thread."""
    key = message % args
    if key not in _announced:
        _announced.add(key)
        log.log(level, message, *args)


def make_encoder(name: str = "auto", turbojpeg: Callable[[], Encoder] = TurboJPEGEncoder) -> Encoder:
    """The encoder called ``name``; ``auto`` is :data:`DEFAULT_ENCODER` (OpenCV).

    Asking for ``turbojpeg`` when it cannot load falls back to OpenCV and logs why, once.

    Args:
        name: one of :data:`ENCODER_NAMES`.
        turbojpeg: builds the PyTurboJPEG encoder (raises ConfigError when it cannot).
    """
    if name not in ENCODER_NAMES:
        raise ConfigError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}")
    chosen = DEFAULT_ENCODER if name == "auto" else name
    if chosen == "turbojpeg":
        try:
            encoder: Encoder = turbojpeg()
        except ConfigError as exc:
            _announce("JPEG encoder: PyTurboJPEG unavailable (%s); using OpenCV", exc, level=logging.WARNING)
            return OpenCVEncoder()
        _announce("JPEG encoder: PyTurboJPEG")
        return encoder
    _announce("JPEG encoder: OpenCV %s", cv2.__version__)
    return OpenCVEncoder()


def fit_max_side(image: Image, max_side: int | None) -> tuple[Image, float]:
    """Downsize so the longest side is at most ``max_side``; returns (image, scale <= 1).

    Boxes computed on the result map back to ``image`` by dividing by ``scale``.
    """
    height, width = image.shape[:2]
    longest = max(height, width)
    if not max_side or longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cast(Image, cv2.resize(image, size, interpolation=cv2.INTER_AREA)), scale
