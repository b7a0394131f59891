"""The embedded server's HTTP side: requests to :class:`~livecam.server.app.App` and back.

The bounded server itself (connection cap, deadlines, graceful stop) is :mod:`livecam.net`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import urllib.parse
from typing import Any

from livecam.net import BoundedHandler, BoundedHTTPServer, ConnectionTable
from livecam.redaction import redact
from livecam.server.app import App, Request, Response
from livecam.server.config import ServerConfig
from livecam.server.errors import HttpError
from livecam.server.pool import Budget

log = logging.getLogger(__name__)

_DISCARD_LIMIT = 1024 * 1024
"""Refused bodies up to this size are read and dropped so the client sees the answer."""
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: 50\r\n\r\n"
    b'{"message":"too many connections - retry request"}'
)


class _Handler(BoundedHandler):
    server: ModelHTTPServer
    server_version = "livecam"
    # HTTP/0.9 answers have no status line; garbage requests get a real HTTP error instead.
    default_request_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        head = Request(self.command, url.path, query, {k.lower(): v for k, v in self.headers.items()})
        early = self.server.app.before_body(head)
        if early is not None:  # e.g. no valid key: answered without reading what was sent
            self._refuse_with(early)
            return
        length = self._body_length()
        if length is None:
            return
        bodies = self.server.bodies
        if not bodies.try_reserve(length):
            self._refuse_with(_error_response(bodies.busy()))
            return
        try:
            self._answer(head, length)
        finally:
            bodies.release(length)

    def _answer(self, head: Request, length: int) -> None:
        """Read the body of ``length`` bytes, answer the request, and send the answer."""
        body = b""
        if length:
            self.conn.expect(self.server.config.body_timeout(length))
            body = self.rfile.read(length)
        if not self.conn.answer():
            self.close_connection = True
            return
        request = dataclasses.replace(head, body=body)
        # The answer is counted until it is sent: a graceful stop waits for the count to reach
        # zero before it closes the connections, so an answer made but not yet written is not cut.
        with self.server.tracking_request():
            try:
                response = self.server.app.handle(request)
            except Exception:  # a bug, not bad input: answer 500 and keep serving
                log.exception("internal error answering %s %s", self.command, redact(head.path))
                response = Response.json({"message": "internal server error"}, 500)
            self._send(response)

    def _body_length(self) -> int | None:
        """The body's declared length, or None after refusing a request whose length is unusable."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._refuse(411, "chunked bodies are not accepted; send a Content-Length")
            return None
        text = self.headers.get("Content-Length", "0")
        try:
            length = int(text)
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400, "Content-Length is not a valid length")
            return None
        if length > self.server.config.max_body_bytes:
            self._refuse(
                413,
                f"the body is larger than {self.server.config.max_body_mb:g} MB; "
                "send a smaller (downscaled, JPEG) image",
            )
            return None
        return length

    def _refuse(self, status: int, message: str) -> None:
        self._refuse_with(Response.json({"message": message}, status))

    def _refuse_with(self, response: Response) -> None:
        """Answer without reading the body; the unread body makes the connection unusable afterwards.

        A small body is read and dropped after the answer, so a client that sends all of it
        before reading (most do) still sees the answer rather than a reset connection.
        """
        self.close_connection = True
        self._send(response)
        self._discard_body()

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return
        if not 0 < length <= _DISCARD_LIMIT or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return
        self.conn.expect(self.server.config.body_timeout_s)
        try:
            while length > 0:
                chunk = self.rfile.read1(min(length, 65536))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError as exc:  # TimeoutError included: the client stopped sending; close anyway
            log.debug("did not read a refused body to its end: %s", exc)

    def _send(self, response: Response) -> None:
        if self.server.stopping.is_set():
            self.close_connection = True
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # Status line, headers and body leave in one send: one system call and, with
        # TCP_NODELAY, one packet for a small answer.
        with self.writer.corked():
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed request lines and headers get a JSON error like every other answer."""
        self.close_connection = True
        if code == 501:  # http.server's answer to a method it has no do_X for: the client's mistake
            code, message = 405, f"method {self.command!r} is not allowed; use GET or POST"
        body = json.dumps({"message": message or explain or "bad request"}).encode()
        try:
            self.send_response(code)  # the standard reason phrase; the message is in the body
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:
            log.debug("could not send error %d: %s", code, exc)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        """Timeouts of slow or idle clients are routine: debug level, not a line per client."""
        log.debug("%s %s", self.address_string(), redact(format % args))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        if log.isEnabledFor(logging.INFO):  # the in-process server keeps its access log off
            log.info("%s %s", self.address_string(), redact(format % args))


def _error_response(error: HttpError) -> Response:
    return Response.json({"message": error.message}, error.status, error.headers)


class ModelHTTPServer(BoundedHTTPServer):
    """The embedded server's HTTP front: a bounded server whose graceful stop waits for answers.

    Args:
        config: the server configuration (address, limits, timeouts).
        app: answers the requests.
    """

    def __init__(self, config: ServerConfig, app: App) -> None:
        self.config = config
        self.app = app
        self._requests = threading.Condition()
        self._active_requests = 0
        self.bodies = Budget(
            config.max_body_bytes_in_flight, "the server is receiving too many large bodies - retry request"
        )
        """Request body bytes held by all requests together (503 when a body would go over)."""
        connections = ConnectionTable(config.max_connections, config.socket_timeout_s, time.monotonic)
        super().__init__(
            (config.host, config.port), _Handler, connections, _BUSY, config.header_timeout_s, config.allowed_hosts
        )

    @property
    def active_requests(self) -> int:
        """Requests being answered now (from reading their body until their answer is sent)."""
        with self._requests:
            return self._active_requests

    def tracking_request(self) -> _ActiveRequest:
        """A context that counts one request being answered (graceful stop waits for them)."""
        return _ActiveRequest(self)

    def _enter(self, delta: int) -> None:
        with self._requests:
            self._active_requests += delta
            self._requests.notify_all()

    def wait_quiet(self, timeout: float) -> None:
        with self._requests:
            self._requests.wait_for(lambda: self._active_requests == 0, timeout=timeout)


class _ActiveRequest:
    def __init__(self, server: ModelHTTPServer) -> None:
        self._server = server

    def __enter__(self) -> None:
        self._server._enter(1)

    def __exit__(self, *exc: object) -> None:
        self._server._enter(-1)
