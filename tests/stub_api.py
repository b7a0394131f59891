"""A scriptable Roboflow-format API on 127.0.0.1 for tests: real HTTP, chosen answers.

    with StubApi(latency=0.5) as api:          # answers one box after 500 ms
        ApiConfig(api.url, "test/1")
    api.script = lambda req: Reply(500, b"oops")   # change behaviour at any time

Waits are on the server's own stop event, so shutting down never waits out a delay.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np


@dataclass(frozen=True)
class Seen:
    """What the stub received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    image_size: tuple[int, int] | None
    client_port: int = 0
    at: float = 0.0
    """When the request arrived (``time.monotonic()``)."""
    image_mean: float | None = None


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict[str, Any] | list[Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop_connection: bool = False


def one_box(seen: Seen, class_name: str = "person") -> Reply:
    """A single centred box covering the middle half of the image that was sent."""
    width, height = seen.image_size or (640, 480)
    return Reply(
        body={
            "time": 0.01,
            "image": {"width": width, "height": height},
            "predictions": [
                {
                    "x": width / 2,
                    "y": height / 2,
                    "width": width / 2,
                    "height": height / 2,
                    "confidence": 0.9,
                    "class": class_name,
                    "class_id": 0,
                }
            ],
        }
    )


class StubApi:
    """A threaded HTTP server answering ``POST /{project}/{version}`` by ``script``.

    Attributes:
        script: maps what was received to a :class:`Reply`; default :func:`one_box`.
        latency: seconds added before every answer.
        requests: how many requests arrived.
        max_concurrent: the most requests it was handling at once.
        seen: the last few requests (bounded).
    """

    def __init__(self, latency: float = 0.0, script: Callable[[Seen], Reply] | None = None, port: int = 0) -> None:
        self.script: Callable[[Seen], Reply] = script or one_box
        self.latency = latency
        self.requests = 0
        self.active = 0
        self.max_concurrent = 0
        self.seen: list[Seen] = []
        self.arrived = threading.Condition()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="stub-api", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StubApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` requests arrived (False on timeout)."""
        return self.wait_until(lambda: self.requests >= count, timeout)

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds, checked whenever a request arrives (False on timeout)."""
        with self.arrived:
            return self.arrived.wait_for(predicate, timeout)

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        image = _image(body)
        seen = Seen(
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers=dict(handler.headers.items()),
            image_size=None if image is None else (image.shape[1], image.shape[0]),
            client_port=handler.client_address[1],
            at=time.monotonic(),
            image_mean=None if image is None else float(image.mean()),
        )
        with self._lock:
            self.active += 1
            self.max_concurrent = max(self.max_concurrent, self.active)
            self.seen = [*self.seen[-49:], seen]
        with self.arrived:
            self.requests += 1
            self.arrived.notify_all()
        handling = True
        try:
            reply = self.script(seen)
            if self._stop.wait(self.latency + reply.delay):
                return
            # No longer counted before the client can see the answer, so a request it sends after
            # the answer never counts as overlapping this one.
            with self._lock:
                self.active -= 1
                handling = False
            if reply.drop_connection:
                handler.close_connection = True
                handler.connection.close()
                return
            payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            handler.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            if handling:
                with self._lock:
                    self.active -= 1


def _image(body: bytes) -> Any:
    try:
        data = base64.b64decode(body, validate=False)
    except ValueError:
        return None
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: StubApi


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:  # noqa: N802
        try:
            self.server.stub._handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return
