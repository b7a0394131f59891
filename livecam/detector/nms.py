"""Class-aware non-maximum suppression and conversion to :class:`~livecam.predictions.Prediction` values."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from livecam.predictions import Prediction


def select(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.intp],
    names: Sequence[str],
    iou: float,
    max_detections: int,
) -> tuple[Prediction, ...]:
    """Suppress overlapping boxes of the same class and keep the best ``max_detections``.

    Args:
        boxes: (N, 4) corners x1, y1, x2, y2 in image pixels.
        scores: (N,) confidences, already above the caller's threshold.
        class_ids: (N,) class indices into ``names``.
        names: class names.
        iou: overlap above which the weaker of two same-class boxes is dropped.
        max_detections: the most detections returned.
    """
    if len(boxes) == 0 or max_detections <= 0:
        return ()
    xywh = np.column_stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]])
    keep = cv2.dnn.NMSBoxesBatched(
        xywh.astype(np.float64).tolist(),
        scores.astype(np.float64).tolist(),
        class_ids.astype(np.int32).tolist(),
        0.0,
        float(iou),
    )
    order = sorted(np.asarray(keep, np.int64).ravel().tolist(), key=lambda k: -float(scores[k]))
    return tuple(
        Prediction(
            x1=float(boxes[k, 0]),
            y1=float(boxes[k, 1]),
            x2=float(boxes[k, 2]),
            y2=float(boxes[k, 3]),
            confidence=float(scores[k]),
            class_name=_name(names, int(class_ids[k])),
            class_id=int(class_ids[k]),
        )
        for k in order[:max_detections]
    )


def _name(names: Sequence[str], class_id: int) -> str:
    return names[class_id] if 0 <= class_id < len(names) else str(class_id)
