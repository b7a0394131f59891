"""A stub of Roboflow's upload and annotate routes on 127.0.0.1, recording what clients send.

    with RoboflowStub(key="k") as stub:
        ...   # POST {stub.url}/dataset/{project}/upload and /dataset/{project}/annotate/{id}
        stub.images        # sha256 -> stored image (each stored once: a repeat is a "duplicate")
        stub.requests      # every request, parsed

Like Roboflow, an image already in the project is answered ``{"duplicate": true, "id": ...}``
and a second pre-label for an image with 409 "already annotated". ``block_at(n)`` makes the
n-th request wait on an event after it was handled and before it is answered, so a test can
kill the client at a known point.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Part:
    """One multipart form field."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Received:
    """One request as the stub saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    parts: tuple[Part, ...] = ()

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StoredImage:
    id: str
    name: str
    data: bytes
    project: str
    split: str
    batch: str | None
    tags: list[str]
    metadata: dict[str, Any]
    annotations: list[dict[str, Any]] = field(default_factory=list)


class RoboflowStub:
    """Roboflow's ``/dataset/{project}/upload`` and ``/dataset/{project}/annotate/{id}`` routes.

    Attributes:
        script: called with each request before the normal handling; returning (status, body)
            answers with that instead (e.g. a 503).
    """

    def __init__(self, key: str, projects: tuple[str, ...] = ("birds",)) -> None:
        self.key = key
        self.projects = projects
        self.requests: list[Received] = []
        self.images: dict[str, StoredImage] = {}
        self.uploads_stored = 0
        self.script: Callable[[Received], tuple[int, Any] | None] | None = None
        self.blocked = threading.Event()
        self.release = threading.Event()
        self._block_at: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.arrived = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="roboflow-stub", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RoboflowStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def block_at(self, count: int) -> None:
        """The ``count``-th request (from 1) is handled, then waits for :attr:`release` before answering."""
        self._block_at = count

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        with self.arrived:
            return self.arrived.wait_for(predicate, timeout)

    def by_id(self, image_id: str) -> StoredImage:
        return next(image for image in self.images.values() if image.id == image_id)

    # --- handling -----------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        headers = dict(handler.headers.items())
        received = Received("POST", split.path, parse_qs(split.query), headers, body, _parts(headers, body))
        with self._lock:
            self.requests.append(received)
            number = len(self.requests)
        status, answer = self._answer(received)
        with self.arrived:
            self.arrived.notify_all()
        if self._block_at == number:
            self.blocked.set()
            self.release.wait(60)
            if self._stop.is_set():
                return
        payload = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, received: Received) -> tuple[int, Any]:
        if self.script is not None:
            scripted = self.script(received)
            if scripted is not None:
                return scripted
        if received.query.get("api_key") != [self.key]:
            return 401, {"error": {"message": "This API key does not exist (or has been revoked).", "status": 401}}
        parts = received.path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "dataset" or parts[1] not in self.projects:
            return 404, {"error": {"message": "Project not found"}}
        if parts[2] == "upload" and len(parts) == 3:
            return self._upload(parts[1], received)
        if parts[2] == "annotate" and len(parts) == 4:
            return self._annotate(parts[3], received)
        return 404, {"error": {"message": "no such route"}}

    def _upload(self, project: str, received: Received) -> tuple[int, Any]:
        fields = {p.name: p for p in received.parts}
        file = fields.get("file")
        if file is None or not file.data:
            return 400, {"error": {"message": "no file"}}
        digest = hashlib.sha256(file.data).hexdigest()
        with self._lock:
            if digest in self.images:
                return 200, {"duplicate": True, "id": self.images[digest].id}
            image = StoredImage(
                id=f"img{len(self.images) + 1:04d}",
                name=fields["name"].data.decode() if "name" in fields else file.filename or "",
                data=file.data,
                project=project,
                split=fields["split"].data.decode() if "split" in fields else "train",
                batch=received.query["batch"][0] if "batch" in received.query else None,
                tags=received.query.get("tag", []),
                metadata=json.loads(fields["metadata"].data) if "metadata" in fields else {},
            )
            self.images[digest] = image
            self.uploads_stored += 1
        return 200, {"success": True, "id": image.id}

    def _annotate(self, image_id: str, received: Received) -> tuple[int, Any]:
        try:
            body = received.json()
        except ValueError:
            return 400, {"error": {"message": "body is not JSON"}}
        with self._lock:
            image = next((i for i in self.images.values() if i.id == image_id), None)
            if image is None:
                return 404, {"error": {"message": "image not found"}}
            if image.annotations:
                return 409, {"error": {"message": "Image already annotated"}}
            image.annotations.append(
                {"name": received.query.get("name", [""])[0], "prediction": received.query.get("prediction"), **body}
            )
        return 200, {"success": True}


def _parts(headers: dict[str, str], body: bytes) -> tuple[Part, ...]:
    content_type = headers.get("Content-Type", "")
    if not content_type.startswith("multipart/"):
        return ()
    message = BytesParser(EmailMessage, policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        name = part.get_param("name", header="content-disposition")
        parts.append(
            Part(
                name=name if isinstance(name, str) else "",
                filename=part.get_filename(),
                content_type=part.get("Content-Type"),
                data=payload if isinstance(payload, bytes) else b"",
            )
        )
    return tuple(parts)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: RoboflowStub


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
