"""Answers in Roboflow's object-detection format, and the drawn-boxes JPEG for ``format=image``.

The prediction fields come from :meth:`~livecam.predictions.Predictions.to_roboflow`, the one
serialiser of the package; the server adds what only a server answer has (ids and timing).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from typing import Any

import cv2

from livecam.frames import Image
from livecam.overlay import OverlayStyle, draw_predictions
from livecam.predictions import Predictions
from livecam.server.errors import HttpError

JPEG_QUALITY = 90


def prediction_json(predictions: Predictions, image_size: tuple[int, int], elapsed_s: float) -> dict[str, Any]:
    """The response body: centre boxes in pixels of the image as sent (``image_size``: its width
    and height), as Roboflow's servers answer."""
    fields = replace(predictions, image_size=image_size).to_roboflow()
    ids = _uuids(1 + len(fields["predictions"]))
    answer = {"inference_id": ids[0], "time": round(elapsed_s, 6), **fields}
    for entry, detection_id in zip(answer["predictions"], ids[1:], strict=True):
        entry["detection_id"] = detection_id
    return answer


def _uuids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs from one read of the system's random source."""
    pool = os.urandom(16 * count)
    return [str(uuid.UUID(bytes=pool[i : i + 16], version=4)) for i in range(0, 16 * count, 16)]


def visualization_jpeg(image: Image, predictions: Predictions, labels: bool, stroke: int) -> bytes:
    """``image`` with the predictions drawn, as JPEG bytes (draws on a copy)."""
    canvas = draw_predictions(image.copy(), predictions, OverlayStyle(labels=labels, thickness=stroke))
    ok, encoded = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise HttpError(422, "the image could not be re-encoded for visualization; use format=json")
    return encoded.tobytes()
