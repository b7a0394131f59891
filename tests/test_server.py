"""The embedded server over real loopback HTTP: routes, encodings, auth, real detections."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from samples import sample_frame

from livecam.server import EmbeddedServer, ServerConfig

KEY = "test-key-123"
TIMEOUT = 30


def jpeg_of_frame(name: str, index: int) -> bytes:
    return bytes(cv2.imencode(".jpg", sample_frame(name, index))[1])


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ServerConfig(port=0, api_key=KEY, workers=1, max_pending=4)) as running:
        yield running


@pytest.fixture(scope="module")
def plaza() -> bytes:
    return jpeg_of_frame("vtest.avi", 100)


def legacy(server: EmbeddedServer, data: bytes | str, query: str = "", **kwargs: Any) -> requests.Response:
    url = f"{server.url}/coco/1?api_key={KEY}{query}"
    return requests.post(url, data=data, timeout=TIMEOUT, **kwargs)


def people(answer: dict[str, object]) -> list[dict[str, object]]:
    predictions = answer["predictions"]
    assert isinstance(predictions, list)
    return [p for p in predictions if p["class"] == "person"]


def test_legacy_route_finds_people_in_protocol_format(server: EmbeddedServer, plaza: bytes) -> None:
    response = legacy(server, base64.b64encode(plaza), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"inference_id", "time", "image", "predictions"}
    assert answer["image"] == {"width": 768, "height": 576}
    found = people(answer)
    assert len(found) >= 2
    for p in answer["predictions"]:
        assert set(p) == {"x", "y", "width", "height", "confidence", "class", "class_id", "detection_id"}
        assert p["x"] - p["width"] / 2 >= 0 and p["x"] + p["width"] / 2 <= 768.5
        assert 0.4 <= p["confidence"] <= 1
    assert found[0]["class_id"] == 0


@pytest.mark.parametrize(
    "encode",
    [
        lambda jpg: {"data": base64.b64encode(jpg)},
        lambda jpg: {"data": b"data:image/jpeg;base64," + base64.b64encode(jpg)},
        lambda jpg: {"data": base64.b64encode(jpg), "headers": {"Content-Type": "application/json"}},
        lambda jpg: {"data": base64.encodebytes(jpg), "headers": {"Content-Type": "text/plain"}},
        lambda jpg: {"files": {"file": ("frame.jpg", jpg, "image/jpeg")}},
    ],
    ids=["bare", "data-url", "json-content-type", "line-wrapped", "multipart"],
)
def test_every_body_encoding(server: EmbeddedServer, plaza: bytes, encode: Callable[[bytes], dict[str, Any]]) -> None:
    kwargs = encode(plaza)
    response = requests.post(f"{server.url}/coco/1?api_key={KEY}", timeout=TIMEOUT, **kwargs)
    assert response.status_code == 200, response.text
    assert len(people(response.json())) >= 2


def test_percent_and_fraction_mean_the_same(server: EmbeddedServer, plaza: bytes) -> None:
    body = base64.b64encode(plaza)
    as_percent = legacy(server, body, "&confidence=60&overlap=50").json()["predictions"]
    as_fraction = legacy(server, body, "&confidence=0.6&overlap=0.5").json()["predictions"]
    assert [p["x"] for p in as_percent] == [p["x"] for p in as_fraction]
    assert all(p["confidence"] >= 0.6 for p in as_percent)
    assert len(legacy(server, body, "&confidence=0&max_detections=3").json()["predictions"]) == 3


def test_classes_filter_and_bearer_key(server: EmbeddedServer, plaza: bytes) -> None:
    response = requests.post(
        f"{server.url}/coco/1?classes=car,dog",
        data=base64.b64encode(plaza),
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert {p["class"] for p in response.json()["predictions"]} <= {"car", "dog"}


def test_image_formats(server: EmbeddedServer, plaza: bytes) -> None:
    image = legacy(server, base64.b64encode(plaza), "&format=image&labels=true&stroke=3")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"
    decoded = cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (576, 768, 3)
    both = legacy(server, base64.b64encode(plaza), "&format=image_and_json").json()
    assert both["predictions"] and base64.b64decode(both["visualization"])[:2] == b"\xff\xd8"


def test_json_routes(server: EmbeddedServer, plaza: bytes) -> None:
    assert server.model_id == "coco/1" and server.url.startswith("http://127.0.0.1:")
    image = {"type": "base64", "value": base64.b64encode(plaza).decode()}
    body: dict[str, Any] = {
        "model_id": "coco/1",
        "api_key": KEY,
        "image": image,
        "confidence": 0.5,
        "iou_threshold": 0.4,
    }
    single = requests.post(f"{server.url}/infer/object_detection", json=body, timeout=TIMEOUT).json()
    assert len(people(single)) >= 2 and all(p["confidence"] >= 0.5 for p in single["predictions"])
    batch = requests.post(
        f"{server.url}/infer/object_detection", json={**body, "image": [image, image]}, timeout=TIMEOUT
    ).json()
    assert isinstance(batch, list) and len(batch) == 2
    registry = requests.get(f"{server.url}/model/registry?api_key={KEY}", timeout=TIMEOUT).json()
    assert registry["models"][0] == {
        "model_id": "coco/1",
        "task_type": "object-detection",
        "input_height": 416,
        "input_width": 416,
        "batch_size": 1,
    }
    added = requests.post(f"{server.url}/model/add", json={"model_id": "coco/1", "api_key": KEY}, timeout=TIMEOUT)
    assert added.status_code == 200
    assert set(requests.get(f"{server.url}/info", timeout=TIMEOUT).json()) == {"name", "version", "uuid"}
    assert requests.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200


def test_auth_and_model_id(server: EmbeddedServer, plaza: bytes) -> None:
    body = base64.b64encode(plaza)
    missing = requests.post(f"{server.url}/coco/1", data=body, timeout=TIMEOUT)
    assert missing.status_code == 401 and "api_key" in missing.json()["message"]
    wrong = requests.post(f"{server.url}/coco/1?api_key=nope", data=body, timeout=TIMEOUT)
    assert wrong.status_code == 401 and "nope" not in wrong.text
    other = requests.post(f"{server.url}/other/7?api_key={KEY}", data=body, timeout=TIMEOUT)
    assert other.status_code == 404 and "coco/1" in other.json()["message"]
    added = requests.post(f"{server.url}/model/add", json={"model_id": "x/2", "api_key": KEY}, timeout=TIMEOUT)
    assert added.status_code == 404


def test_keep_alive_serves_several_requests_on_one_connection(server: EmbeddedServer, plaza: bytes) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
    try:
        for _ in range(3):
            connection.request("POST", f"/coco/1?api_key={KEY}", body=base64.b64encode(plaza))
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read())["image"]["width"] == 768
    finally:
        connection.close()


def test_vehicles_on_the_street(server: EmbeddedServer) -> None:
    classes = set()
    for index in (30, 120, 200):
        answer = legacy(server, base64.b64encode(jpeg_of_frame("bikes.mp4", index)), "&confidence=35").json()
        assert answer["image"] == {"width": 640, "height": 272}
        classes |= {p["class"] for p in answer["predictions"]}
    assert classes & {"car", "bicycle", "truck", "bus", "motorcycle"}


def test_blank_frame_gives_few_or_none(server: EmbeddedServer) -> None:
    blank = bytes(cv2.imencode(".png", np.full((300, 400, 3), 200, np.uint8))[1])
    assert len(legacy(server, base64.b64encode(blank)).json()["predictions"]) <= 1
