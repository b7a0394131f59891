"""The routes of the Roboflow-compatible server, independent of the HTTP plumbing.

``App.handle`` takes a parsed request and returns a response; every client mistake becomes a
4xx :class:`HttpError` with a message saying what to send instead.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import livecam
from livecam.frames import Image
from livecam.predictions import Predictions
from livecam.server.config import ServerConfig
from livecam.server.errors import HttpError
from livecam.server.fetch import fetch_image
from livecam.server.images import decode_base64, decode_planned, image_bytes_from_body, plan_decode
from livecam.server.params import InferenceParams, json_params, legacy_params
from livecam.server.pool import Admission, Budget, DetectorPool
from livecam.server.render import prediction_json, visualization_jpeg

MAX_BATCH = 16
_WRONG_KEY = "the API key is not valid for this server"
_OPEN_ROUTES = ("/healthz", "/info")
_BODY_KEY_ROUTES = ("/model/add", "/infer/object_detection")
"""Routes whose clients (Roboflow's inference-sdk) may send the key inside the JSON body."""


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request (query values: the first of each name; header names lower-case)."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    """One HTTP response."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON response."""
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers or {})


class App:
    """The server's request handling: auth, model id, parameters, inference, answer.

    Args:
        config: the server configuration.
        pool: the detectors inference borrows from.
        input_size: the model's (width, height), for the model registry.
        stop: set when the server shuts down; ends simulated-latency waits early.
        clock: monotonic seconds, for the ``time`` field.
    """

    def __init__(
        self,
        config: ServerConfig,
        pool: DetectorPool,
        input_size: tuple[int, int],
        stop: threading.Event,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._config = config
        self._pool = pool
        self._admission = Admission(config.max_pending)
        self._pixels = Budget(
            config.max_pixels_in_flight, "the server is decoding too many large images - retry request"
        )
        self._input_size = input_size
        self._stop = stop
        self._clock = clock
        self._uuid = str(uuid.uuid4())

    def handle(self, request: Request) -> Response:
        """The response to ``request``; client mistakes come back as JSON 4xx answers."""
        try:
            return self._route(request)
        except HttpError as exc:
            return Response.json({"message": exc.message}, exc.status, exc.headers)

    def before_body(self, request: Request) -> Response | None:
        """The answer to a request without a valid key, decided before its body is read; else None.

        With ``api_key`` set, a key missing from the query and headers, or a wrong one, is
        answered from the request line and headers alone (401, or the 404/405 the route gives
        first), so nobody without the key makes the server read a large body. Only the routes
        whose clients may put the key in the JSON body read it first when no key came outside it.
        """
        path = request.path.rstrip("/") or "/"
        if self._config.api_key is None or path in _OPEN_ROUTES:
            return None
        given = _key_outside_body(request)
        if path in _BODY_KEY_ROUTES:
            if given is None or self._key_is(given):
                return None
            return Response.json({"message": _WRONG_KEY}, 401)
        if given is not None and self._key_is(given):
            return None
        # Every other route checks the key (or refuses the route) before it looks at a body.
        return self.handle(Request(request.method, request.path, request.query, request.headers))

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        fixed: dict[str, tuple[str, Callable[[Request], Response]]] = {
            "/healthz": ("GET", self._healthz),
            "/info": ("GET", self._info),
            "/model/registry": ("GET", self._registry),
            "/model/add": ("POST", self._add_model),
            "/infer/object_detection": ("POST", self._infer_json),
        }
        if path in fixed:
            method, handler = fixed[path]
            _require_method(request, method)
            return handler(request)
        parts = path.strip("/").split("/")
        if len(parts) == 2 and all(parts):
            if request.method != "POST":
                self._check_model("/".join(parts))
                _require_method(request, "POST")
            return self._infer_legacy(request, "/".join(parts))
        raise HttpError(404, f"no route {path}; POST /{self._config.model_id} with a base64 image, or see GET /info")

    def _healthz(self, request: Request) -> Response:
        return Response.json({"status": "healthy"})

    def _info(self, request: Request) -> Response:
        return Response.json({"name": "livecam inference server", "version": livecam.__version__, "uuid": self._uuid})

    def _registry(self, request: Request) -> Response:
        self._authorize(request, None)
        return Response.json(self._models())

    def _add_model(self, request: Request) -> Response:
        body = _json_object(request.body)
        self._authorize(request, body)
        self._check_model(body.get("model_id"))
        return Response.json(self._models())

    def _models(self) -> dict[str, Any]:
        width, height = self._input_size
        return {
            "models": [
                {
                    "model_id": self._config.model_id,
                    "task_type": "object-detection",
                    "input_height": height,
                    "input_width": width,
                    "batch_size": 1,
                }
            ]
        }

    def _infer_legacy(self, request: Request, model_id: str) -> Response:
        self._authorize(request, None)
        self._check_model(model_id)
        params = legacy_params(request.query)
        with self._admission.admitted():
            started = self._clock()
            url = request.query.get("image")
            if url:
                data = fetch_image(url, self._config.max_body_bytes, self._config.allow_image_urls)
            else:
                data = image_bytes_from_body(request.body, request.headers.get("content-type", ""))
            drawn = params.format != "json"
            image, found, size = self._detect(data, params, full_size=drawn)
            answer = prediction_json(found, size, self._clock() - started)
            self._simulate_latency()
        if params.format == "json":
            return Response.json(answer)
        jpeg = visualization_jpeg(image, found, params.labels, params.stroke)
        if params.format == "image":
            return Response(200, jpeg, "image/jpeg")
        answer["visualization"] = base64.b64encode(jpeg).decode("ascii")
        return Response.json(answer)

    def _infer_json(self, request: Request) -> Response:
        body = _json_object(request.body)
        self._authorize(request, body)
        self._check_model(body.get("model_id"))
        params = json_params(body)
        images = body.get("image")
        batch = images if isinstance(images, list) else [images]
        if not 1 <= len(batch) <= MAX_BATCH:
            raise HttpError(400, f"'image' must be one image or a list of 1 to {MAX_BATCH}")
        with self._admission.admitted():
            answers = []
            for item in batch:
                started = self._clock()
                _image, found, size = self._detect(self._json_image(item), params, full_size=False)
                answers.append(prediction_json(found, size, self._clock() - started))
            self._simulate_latency()
        return Response.json(answers if isinstance(images, list) else answers[0])

    def _detect(
        self, data: bytes, params: InferenceParams, full_size: bool
    ) -> tuple[Image, Predictions, tuple[int, int]]:
        """Decode, detect, filter: the image the model saw, its answer in full-image pixels, the full size.

        Unless the answer is drawn (``full_size``), a large JPEG is decoded at a fraction of its
        size that still covers the model's input (:func:`plan_decode`). The decoded pixels are
        reserved against the budget of all requests until the model has run (503 when over).
        """
        limit = self._config.max_image_pixels
        plan = plan_decode(data, limit, None if full_size else self._input_size)
        with self._pixels.reserved(plan.pixels):
            image, size = decode_planned(data, plan, limit)
            with self._pool.borrowed() as detector:
                found = detector.detect(image, params.confidence, params.iou, params.max_detections)
        found = _filtered(found, params)
        if size != (image.shape[1], image.shape[0]):
            found = found.scaled(size[0] / image.shape[1], size[1] / image.shape[0])
        return image, found, size

    def _json_image(self, item: Any) -> bytes:
        if not isinstance(item, Mapping) or not isinstance(item.get("value"), str):
            raise HttpError(400, 'each image must be {"type": "base64", "value": "..."}')
        kind = item.get("type", "base64")
        if kind == "base64":
            return decode_base64(item["value"])
        if kind == "url":
            return fetch_image(item["value"], self._config.max_body_bytes, self._config.allow_image_urls)
        raise HttpError(400, f"image type {kind!r} is not supported; use base64")

    def _simulate_latency(self) -> None:
        if self._config.simulate_latency_ms > 0:
            self._stop.wait(self._config.simulate_latency_ms / 1000)

    def _authorize(self, request: Request, body: Mapping[str, Any] | None) -> None:
        expected = self._config.api_key
        if expected is None:
            return
        given = _key_outside_body(request)
        if not given and body is not None and isinstance(body.get("api_key"), str):
            given = body["api_key"]
        if not given:
            raise HttpError(401, "this server needs an API key: pass ?api_key=KEY or 'Authorization: Bearer KEY'")
        if not self._key_is(given):
            raise HttpError(401, _WRONG_KEY)

    def _key_is(self, given: str) -> bool:
        expected = self._config.api_key or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))

    def _check_model(self, model_id: Any) -> None:
        if not isinstance(model_id, str) or model_id.strip("/") != self._config.model_id:
            raise HttpError(404, f"this server serves only the model {self._config.model_id!r}")


def _key_outside_body(request: Request) -> str | None:
    """The key from ``?api_key=`` or ``Authorization: Bearer``, or None."""
    given = request.query.get("api_key")
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return given or None


def _filtered(found: Predictions, params: InferenceParams) -> Predictions:
    return found if params.classes is None else found.filtered(params.classes)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise HttpError(400, "the body must be a JSON object") from exc
    if not isinstance(data, dict):
        raise HttpError(400, "the body must be a JSON object")
    return data


def _require_method(request: Request, method: str) -> None:
    if request.method != method:
        raise HttpError(405, f"{request.path} answers {method} only", {"Allow": method})
