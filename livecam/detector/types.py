"""The detection value and the detector interface every model layout implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from livecam.frames import Image


@dataclass(frozen=True)
class Detection:
    """One detected object with a corner box in pixels of the image given to ``detect``."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float
    class_id: int
    class_name: str


class Detector(Protocol):
    """A loaded model that finds objects in BGR images.

    A detector is not thread-safe: give each worker thread its own.
    """

    @property
    def class_names(self) -> tuple[str, ...]:
        """The model's class names, indexed by class id."""
        ...

    @property
    def input_size(self) -> tuple[int, int]:
        """The (width, height) the model sees."""
        ...

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> list[Detection]:
        """Detections at or above ``confidence`` (0..1) after NMS at ``iou`` (0..1), best first."""
        ...
