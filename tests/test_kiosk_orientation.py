import base64
import io
import json
import threading
from typing import Any

import cv2
import numpy as np
import pytest
import requests
import urllib3
from json_view import loose
from requests.adapters import BaseAdapter

from livecam.client import ApiConfig, DetectionClient
from livecam.display import NO_KEY
from livecam.kiosk.orientation import Orientation, OrientedSource
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.overlay import OverlayStyle
from livecam.sources import SourceInfo

WIDTH, HEIGHT = 320, 240
BLOCK = (20, 30, 80, 70)  # x1, y1, x2, y2 (exclusive) of the red block in the camera's picture
RED = (0, 0, 255)
GREEN = (0, 255, 0)


def camera_picture() -> np.ndarray:
    image = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    x1, y1, x2, y2 = BLOCK
    image[y1:y2, x1:x2] = RED
    return image


def turned_block(orientation: Orientation) -> tuple[int, int, int, int]:
    """Where the block must land, from the geometry of each turn (independent of cv2.rotate)."""
    x1, y1, x2, y2 = BLOCK
    w, h = WIDTH, HEIGHT
    if orientation.rotation == 90:
        x1, y1, x2, y2, w, h = h - y2, x1, h - y1, x2, h, w
    elif orientation.rotation == 180:
        x1, y1, x2, y2 = w - x2, h - y2, w - x1, h - y1
    elif orientation.rotation == 270:
        x1, y1, x2, y2, w, h = y1, w - x2, y2, w - x1, h, w
    if orientation.mirror:
        x1, x2 = w - x2, w - x1
    return x1, y1, x2, y2


def red_extent(image: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero((image[:, :, 2] > 180) & (image[:, :, 1] < 80) & (image[:, :, 0] < 80))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


ORIENTATIONS = [Orientation(r, m) for r in (0, 90, 180, 270) for m in (False, True)]


@pytest.mark.parametrize("orientation", ORIENTATIONS, ids=str)
def test_the_picture_is_turned(orientation: Orientation) -> None:
    turned = orientation.apply(camera_picture())
    assert (turned.shape[1], turned.shape[0]) == orientation.size(WIDTH, HEIGHT)
    assert red_extent(turned) == turned_block(orientation)


class BlockSource:
    """A finite clip of the same picture, like a short file."""

    def __init__(self, frames: int = 20) -> None:
        self.frames = frames
        self.info: SourceInfo | None = None
        self._left = 0

    def open(self) -> SourceInfo:
        self._left = self.frames
        self.info = SourceInfo(fps=20.0, width=WIDTH, height=HEIGHT, live=False, name="block", kind="file", paced=True)
        return self.info

    def read(self) -> np.ndarray | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return camera_picture()

    def close(self) -> None:
        self._left = 0


class BlockFinder(BaseAdapter):
    """A detection API in a transport: answers with a box around the red pixels of the sent image."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert isinstance(request.body, (bytes, str))
        image = cv2.imdecode(np.frombuffer(base64.b64decode(request.body), np.uint8), cv2.IMREAD_COLOR)
        assert image is not None
        x1, y1, x2, y2 = red_extent(image)
        body = json.dumps(
            {
                "image": {"width": image.shape[1], "height": image.shape[0]},
                "predictions": [
                    {
                        "x": (x1 + x2) / 2,
                        "y": (y1 + y2) / 2,
                        "width": x2 - x1,
                        "height": y2 - y1,
                        "confidence": 0.9,
                        "class": "block",
                        "class_id": 0,
                    }
                ],
            }
        ).encode()
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=200, preload_content=False)
        assert request.url is not None
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


class LastPicture:
    """A display that keeps the last picture that had the detector's box drawn on it."""

    fullscreen = False
    closed_by_user = False

    def __init__(self) -> None:
        self.boxed: np.ndarray | None = None

    def show(self, image: np.ndarray) -> int:
        if (np.all(image == GREEN, axis=2)).any():
            self.boxed = image.copy()
        return NO_KEY

    def set_fullscreen(self, on: bool) -> None:
        pass

    def close(self) -> None:
        pass


def make_client() -> DetectionClient:
    session = requests.Session()
    session.mount("http://", BlockFinder())
    return DetectionClient(ApiConfig("http://finder.invalid", "block/1", encoder="opencv"), session)


@pytest.mark.parametrize("orientation", [Orientation(90), Orientation(270, True), Orientation(180)], ids=str)
def test_boxes_land_on_the_turned_picture(orientation: Orientation) -> None:
    display = LastPicture()
    style = OverlayStyle(labels=False, thickness=2, colors={"block": GREEN})
    source = OrientedSource(BlockSource(), orientation)
    pipeline = LivePipeline(
        source,
        ApiConfig("http://finder.invalid", "block/1"),
        display,
        LiveConfig(hud=False, style=style, max_prediction_age=60),
        make_client=make_client,
        stop=threading.Event(),
    )
    with pipeline:
        stats = loose(pipeline.run().to_json())
    assert stats["responses_ok"] >= 1 and display.boxed is not None
    green = np.all(display.boxed == GREEN, axis=2)
    ys, xs = np.nonzero(green)
    x1, y1, x2, y2 = turned_block(orientation)
    # The box outline hugs the block (JPEG blurs its edge by a pixel or two).
    assert abs(int(xs.min()) - x1) <= 3 and abs(int(xs.max()) + 1 - x2) <= 3
    assert abs(int(ys.min()) - y1) <= 3 and abs(int(ys.max()) + 1 - y2) <= 3
