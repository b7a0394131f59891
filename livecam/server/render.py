"""Answers in Roboflow's object-detection format, and the drawn-boxes JPEG for ``format=image``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import cv2

from livecam.detector import Detection
from livecam.frames import Image
from livecam.overlay import OverlayStyle, draw_predictions
from livecam.predictions import Prediction, Predictions
from livecam.server.errors import HttpError

JPEG_QUALITY = 90


def prediction_json(detections: Sequence[Detection], image_size: tuple[int, int], elapsed_s: float) -> dict[str, Any]:
    """The response body: centre boxes in pixels of the image as sent (Roboflow's wire format)."""
    width, height = image_size
    return {
        "inference_id": str(uuid.uuid4()),
        "time": round(elapsed_s, 6),
        "image": {"width": width, "height": height},
        "predictions": [
            {
                "x": round((d.x1 + d.x2) / 2, 1),
                "y": round((d.y1 + d.y2) / 2, 1),
                "width": round(d.x2 - d.x1, 1),
                "height": round(d.y2 - d.y1, 1),
                "confidence": round(d.confidence, 4),
                "class": d.class_name,
                "class_id": d.class_id,
                "detection_id": str(uuid.uuid4()),
            }
            for d in detections
        ],
    }


def visualization_jpeg(image: Image, detections: Sequence[Detection], labels: bool, stroke: int) -> bytes:
    """``image`` with the detections drawn, as JPEG bytes (draws on a copy)."""
    predictions = Predictions(
        items=tuple(Prediction(d.x1, d.y1, d.x2, d.y2, d.confidence, d.class_name, d.class_id) for d in detections)
    )
    canvas = draw_predictions(image.copy(), predictions, OverlayStyle(labels=labels, thickness=stroke))
    ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise HttpError(422, "the image could not be re-encoded for visualization; use format=json")
    return encoded.tobytes()
