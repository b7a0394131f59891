"""What the server answers: the one serialiser's fields, boxes in pixels of the image as sent
(also when a large JPEG is decoded at a fraction of its size), ids."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
import requests
from server_fakes import FixedDetector

from livecam.frames import Image
from livecam.predictions import Predictions
from livecam.server import EmbeddedServer, ServerConfig
from livecam.server.images import decode_for_model

TIMEOUT = 30


class SizeRecorder(FixedDetector):
    """A :class:`FixedDetector` that remembers the size of every image it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []
        self._seen_lock = threading.Lock()

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        with self._seen_lock:
            self.seen.append((image_bgr.shape[1], image_bgr.shape[0]))
        return super().detect(image_bgr, confidence, iou, max_detections)


@pytest.fixture(scope="module")
def recorder() -> SizeRecorder:
    return SizeRecorder()  # input_size (320, 320)


@pytest.fixture(scope="module")
def server(recorder: SizeRecorder) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ServerConfig(port=0), detector_factory=lambda: recorder) as running:
        yield running


def jpeg(width: int, height: int) -> bytes:
    image = np.zeros((height, width, 3), np.uint8)
    cv2.rectangle(image, (width // 4, height // 4), (width // 2, height // 2), (200, 180, 160), -1)
    return bytes(cv2.imencode(".jpg", image)[1])


def post(server: EmbeddedServer, data: bytes, **query: str) -> requests.Response:
    return requests.post(f"{server.url}/coco/1", params=query, data=base64.b64encode(data), timeout=TIMEOUT)


def test_answer_is_the_predictions_serialiser_plus_ids(server: EmbeddedServer) -> None:
    answer = post(server, jpeg(64, 48)).json()
    parsed = Predictions.from_roboflow(answer)
    assert parsed.image_size == (64, 48)
    assert {k: v for k, v in answer.items() if k not in ("inference_id", "time")} == {
        **parsed.to_roboflow(),
        "predictions": [
            {**entry, "detection_id": sent["detection_id"]}
            for entry, sent in zip(parsed.to_roboflow()["predictions"], answer["predictions"], strict=True)
        ],
    }
    ids = [answer["inference_id"], *(p["detection_id"] for p in answer["predictions"])]
    assert len(set(ids)) == len(ids) == 3 and all(len(i) == 36 and i[14] == "4" for i in ids)


def test_a_large_jpeg_is_decoded_smaller_and_boxes_come_back_in_its_pixels(
    server: EmbeddedServer, recorder: SizeRecorder
) -> None:
    recorder.seen.clear()
    answer = post(server, jpeg(1280, 960)).json()
    assert recorder.seen == [(640, 480)]  # half size still covers the 320x320 model input
    assert answer["image"] == {"width": 1280, "height": 960}
    person = answer["predictions"][0]
    assert (person["x"], person["y"], person["width"], person["height"]) == (320, 480, 640, 960)


def test_drawn_answers_and_other_formats_decode_in_full(server: EmbeddedServer, recorder: SizeRecorder) -> None:
    recorder.seen.clear()
    drawn = post(server, jpeg(1280, 960), format="image")
    assert drawn.headers["Content-Type"] == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(drawn.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[:2] == (960, 1280)

    png = bytes(cv2.imencode(".png", np.zeros((960, 1280, 3), np.uint8))[1])
    assert post(server, png).json()["image"] == {"width": 1280, "height": 960}
    assert recorder.seen == [(1280, 960), (1280, 960)]


def test_decode_for_model_picks_the_largest_reduction_that_covers_the_model() -> None:
    data = jpeg(1920, 1080)
    assert decode_for_model(data, 10**8, (416, 416))[0].shape[:2] == (540, 960)
    assert decode_for_model(data, 10**8, (64, 64))[0].shape[:2] == (135, 240)
    image, size = decode_for_model(jpeg(640, 480), 10**8, (416, 416))
    assert image.shape[:2] == (480, 640) and size == (640, 480)
