"""The detector interface every model layout implements (answers are :class:`~livecam.predictions.Predictions`)."""

from __future__ import annotations

from typing import Protocol

from livecam.frames import Image
from livecam.predictions import Predictions


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

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        """Detections at or above ``confidence`` (0..1) after NMS at ``iou`` (0..1), best first,
        with corner boxes in pixels of ``image_bgr`` (its size is the answer's ``image_size``)."""
        ...
