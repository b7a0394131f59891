"""NanoDet: BGR mean/std input, three strides, GFL box distributions (the bundled COCO model)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from livecam.detector.nms import select
from livecam.detector.runtime import Array, Runner
from livecam.frames import Image
from livecam.predictions import Predictions

_MEAN = np.array([103.53, 116.28, 123.675], np.float32)
_STD = np.array([57.375, 57.12, 58.395], np.float32)
_INV_STD = (1 / _STD).astype(np.float32)


@dataclass(frozen=True)
class Head:
    """One output pair: per-cell class scores and box-side distributions at a stride."""

    stride: int
    scores: int
    boxes: int


class NanoDetDetector:
    """Detects with a NanoDet graph (sigmoid scores, ``4 x bins`` side distributions per cell)."""

    def __init__(
        self, runner: Runner, size: tuple[int, int], heads: tuple[Head, ...], class_names: tuple[str, ...]
    ) -> None:
        self._runner = runner
        self._size = size
        self._heads = heads
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
        outputs = self._runner.run(preprocess(image_bgr, self._size))
        boxes, scores, ids = [], [], []
        for head in self._heads:
            b, s, c = decode_head(
                outputs[head.scores][0],
                outputs[head.boxes][0],
                head.stride,
                self._size[0] // head.stride,
                confidence,
            )
            boxes.append(b)
            scores.append(s)
            ids.append(c)
        scale = np.array([width / self._size[0], height / self._size[1]] * 2, np.float32)
        all_boxes = np.concatenate(boxes) * scale
        np.clip(all_boxes, 0, [width, height, width, height], out=all_boxes)
        items = select(all_boxes, np.concatenate(scores), np.concatenate(ids), self._names, iou, max_detections)
        return Predictions(items=items, image_size=(width, height))


def preprocess(image_bgr: Image, size: tuple[int, int]) -> Array:
    """Stretch to ``size``, normalise each BGR channel by NanoDet's mean and std, HWC to NCHW."""
    resized = cv2.resize(image_bgr, size, interpolation=cv2.INTER_LINEAR)
    # Plane by plane in place: about 5x faster than float HWC arithmetic plus a transposing copy.
    blob: Array = np.empty((1, 3, size[1], size[0]), np.float32)
    for channel, plane in enumerate(cv2.split(resized)):
        blob[0, channel] = plane
        blob[0, channel] -= _MEAN[channel]
        blob[0, channel] *= _INV_STD[channel]
    return blob


def decode_head(
    scores: Array, distributions: Array, stride: int, columns: int, threshold: float
) -> tuple[Array, Array, npt.NDArray[np.intp]]:
    """Boxes (model input pixels), scores and class ids of the cells scoring above ``threshold``.

    Args:
        scores: (cells, classes) sigmoid scores.
        distributions: (cells, 4 * bins) logits for the left, top, right, bottom distances.
        stride: pixels per cell.
        columns: cells per row.
        threshold: minimum best-class score.
    """
    class_ids = scores.argmax(axis=1)
    best = scores[np.arange(len(scores)), class_ids]
    keep = np.flatnonzero(best >= threshold)
    if len(keep) == 0:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.intp)
    logits = distributions[keep].reshape(len(keep), 4, -1)
    weights = np.exp(logits - logits.max(axis=2, keepdims=True))
    weights /= weights.sum(axis=2, keepdims=True)
    distances = (weights * np.arange(logits.shape[2], dtype=np.float32)).sum(axis=2) * stride
    cx = (keep % columns + 0.5) * stride
    cy = (keep // columns + 0.5) * stride
    boxes = np.column_stack(
        [cx - distances[:, 0], cy - distances[:, 1], cx + distances[:, 2], cy + distances[:, 3]]
    ).astype(np.float32)
    return boxes, best[keep].astype(np.float32), class_ids[keep]
