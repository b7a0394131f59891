"""One image at a time: ask a detection API for its boxes, and draw them as livecam draws them.

client = Client("http://127.0.0.1:9001", model="coco/1")
predictions = client.infer("photo.jpg")           # or a BGR ndarray
picture = draw(image, predictions)                 # a new image; ``image`` is left as it was
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from livecam.frames import Image
from livecam.predictions import Predictions


class Client:
    """A detection client for one model on a Roboflow-format server (hosted, ``inference``, or ``serve()``).

    Args:
        url: the server's base URL, e.g. ``https://detect.roboflow.com`` or what ``serve()`` yields.
        model: ``project/version``.
        api_key: the Roboflow key (never shown in messages or ``repr``).
        options: further API options by their long names with underscores (``confidence=50``,
            ``overlap``, ``classes``, ``max_side``, ``jpeg_quality``, ``timeout``, ``encoder``).

    Raises:
        TypeError: an unknown option. ValueError: a bad value (each naming it).

    Not shared between threads: give each thread its own client. Use it as a context manager
    (or call :meth:`close`) to close its connections.
    """

    def __init__(self, url: str, *, model: str, api_key: str | None = None, **options: Any) -> None:
        from livecam.client import DetectionClient
        from livecam.connection import ApiSettings
        from livecam.public.options import API_OPTIONS, keyword_values

        per_request = tuple(o for o in API_OPTIONS if o.keyword not in ("api_url", "model", "api_key", "in_flight"))
        values = keyword_values({"api_url": url, "model": model, "api_key": api_key}, API_OPTIONS)
        values.update(keyword_values(options, per_request))
        settings = ApiSettings.given({o.dest: v for o, v in values.items()}, {})
        config = settings.api_config(settings.api_url or (url,), model)
        self._client = DetectionClient(config)

    def infer(self, image: Image | str | Path) -> Predictions:
        """The boxes for ``image`` (a BGR array, or the path of an image file), in its own pixels.

        Raises:
            ValueError: the path is not an image OpenCV can read.
            livecam.DetectionError: the request failed (``AuthError``, ``ModelNotFoundError``, ...).
        """
        if isinstance(image, str | Path):
            image = read_image(Path(image))
        return self._client.detect(image)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_image(path: Path) -> Image:
    """The image file at ``path`` as a BGR array.

    Raises:
        ValueError: it is missing or not an image OpenCV can read.
    """
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        what = "does not exist" if not path.exists() else "is not an image OpenCV can read"
        raise ValueError(f"{path} {what}")
    return image.astype(np.uint8, copy=False)


def draw(image: Image, predictions: Predictions, *, labels: bool | str | list[str] = True) -> Image:
    """A copy of ``image`` with ``predictions`` drawn as livecam draws them (boxes, labels, masks, keypoints).

    Args:
        labels: what labels show, as ``--labels`` takes it: True, False, or parts among
            ``class``, ``confidence`` and ``id`` (e.g. ``"class,id"``).

    Raises:
        ValueError: a bad ``labels`` value.
    """
    from livecam.overlay import draw_predictions
    from livecam.public.options import LABELS, keyword_values, label_style

    parts = keyword_values({"labels": labels}, (LABELS,))[LABELS]
    return draw_predictions(image.copy(), predictions, label_style(parts))
