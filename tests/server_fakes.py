"""Fake detectors injected into the server in tests."""

from __future__ import annotations

import threading

from livecam.frames import Image
from livecam.predictions import Prediction, Predictions

WAIT_S = 10.0


class FixedDetector:
    """Always finds one "person" box covering the image's left half, and counts its calls."""

    class_names = ("person", "car")
    input_size = (320, 320)

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Condition()

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        height, width = image_bgr.shape[:2]
        with self._lock:
            self.calls += 1
            self._lock.notify_all()
        found = [Prediction(0, 0, width / 2, height, 0.9, "person", 0), Prediction(1, 1, 5, 5, 0.5, "car", 1)]
        kept = tuple(d for d in found if d.confidence >= confidence)[:max_detections]
        return Predictions(items=kept, image_size=(width, height))

    def wait_calls(self, count: int) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self.calls >= count, timeout=WAIT_S)


class BlockingDetector(FixedDetector):
    """Blocks inside ``detect`` until ``release`` is set; ``entered`` is set when a call arrives."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        self.entered.set()
        self.release.wait(WAIT_S)
        return super().detect(image_bgr, confidence, iou, max_detections)
