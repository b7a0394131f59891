"""YOLOv8 export layout: RGB/255 input, one ``[1, 4 + classes, anchors]`` output of centre boxes."""

from __future__ import annotations

import cv2
import numpy as np

from livecam.detector.nms import select
from livecam.detector.runtime import Array, Runner
from livecam.frames import Image
from livecam.predictions import Predictions


class YoloV8Detector:
    """Detects with a YOLOv8-style graph (scores already per class, no objectness)."""

    def __init__(self, runner: Runner, size: tuple[int, int], class_names: tuple[str, ...]) -> None:
        self._runner = runner
        self._size = size
        self._names = class_names

    @property
    def class_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def input_size(self) -> tuple[int, int]:
        return self._size

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        """Detections in pixels of ``image_bgr``, best first (see :class:`~livecam.detector.Detector`)."""
        height, width = image_bgr.shape[:2]
        rows = self._runner.run(preprocess(image_bgr, self._size))[0][0].T  # (anchors, 4 + classes)
        class_scores = rows[:, 4:]
        class_ids = class_scores.argmax(axis=1)
        best = class_scores[np.arange(len(rows)), class_ids]
        keep = np.flatnonzero(best >= confidence)
        cx, cy, w, h = (rows[keep, i] for i in range(4))
        sx, sy = width / self._size[0], height / self._size[1]
        corners = np.column_stack([(cx - w / 2) * sx, (cy - h / 2) * sy, (cx + w / 2) * sx, (cy + h / 2) * sy])
        boxes = np.clip(corners, 0, [width, height, width, height]).astype(np.float32)
        items = select(boxes, best[keep].astype(np.float32), class_ids[keep], self._names, iou, max_detections)
        return Predictions(items=items, image_size=(width, height))


def preprocess(image_bgr: Image, size: tuple[int, int]) -> Array:
    """Stretch to ``size``, BGR to RGB, scale to 0..1, HWC to NCHW."""
    blob: Array = np.asarray(cv2.dnn.blobFromImage(image_bgr, 1 / 255.0, size, swapRB=True, crop=False), np.float32)
    return blob
