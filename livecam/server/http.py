"""The HTTP/1.1 plumbing: a bounded threading server with keep-alive, timeouts and graceful stop.

Built on the standard library's ``http.server``: the server needs no framework, the model (not
HTTP parsing) is the bottleneck, and a thread per connection with a hard connection cap and
socket timeouts is simple to reason about and to stop.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from livecam.redaction import redact
from livecam.server.app import App, Request, Response
from livecam.server.config import ServerConfig
from livecam.server.connections import ConnectionTable, DeadlineReader, DeadlineWriter, send_busy

log = logging.getLogger(__name__)

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: 50\r\n\r\n"
    b'{"message":"too many connections - retry request"}'
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BoundedHTTPServer
    server_version = "livecam"
    # HTTP/0.9 answers have no status line; garbage requests get a real HTTP error instead.
    default_request_version = "HTTP/1.0"

    def setup(self) -> None:
        self.connection = self.request
        self.conn = self.server.connections.find(self.request)
        # Headers and body go out in separate writes; without this, Nagle plus the client's
        # delayed ACK adds ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = io.BufferedReader(DeadlineReader(self.conn))
        self.writer = DeadlineWriter(self.conn)
        self.wfile = self.writer

    def handle_one_request(self) -> None:
        # The next request line and headers must arrive in full within the limit; while none
        # comes this is also the keep-alive idle timeout.
        self.conn.expect(self.server.config.header_timeout_s)
        super().handle_one_request()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        if not self.conn.answer():
            self.close_connection = True
            return
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        request = Request(self.command, url.path, query, {k.lower(): v for k, v in self.headers.items()}, body)
        with self.server.tracking_request():
            try:
                response = self.server.app.handle(request)
            except Exception:  # a bug, not bad input: answer 500 and keep serving
                log.exception("internal error answering %s %s", self.command, redact(url.path))
                response = Response.json({"message": "internal server error"}, 500)
        self._send(response)

    def _read_body(self) -> bytes | None:
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
        if not length:
            return b""
        self.conn.expect(self.server.config.body_timeout(length))
        return self.rfile.read(length)

    def _refuse(self, status: int, message: str) -> None:
        # The unread body makes the connection unusable for another request.
        self.close_connection = True
        self._send(Response.json({"message": message}, status))

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
            self.send_response(code, message)
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


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them; stops gracefully.

    Slow clients cannot hold the slots: see :mod:`livecam.server.connections`.

    Args:
        config: the server configuration (address, limits, timeouts).
        app: answers the requests.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes a burst of new clients wait for SYN retries.
    request_queue_size = 128

    def __init__(self, config: ServerConfig, app: App) -> None:
        self.config = config
        self.app = app
        self.stopping = threading.Event()
        self.connections = ConnectionTable(config.max_connections, config.socket_timeout_s, time.monotonic)
        self._lock = threading.Condition()
        self._active_requests = 0
        self._open: dict[threading.Thread, socket.socket] = {}
        super().__init__((config.host, config.port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.stopping.is_set() or self.connections.open(request) is None:
            send_busy(request, _BUSY)
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="livecam-http",
            daemon=True,
        )
        with self._lock:
            self._open[thread] = request
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.pop(threading.current_thread(), None)
            self.connections.close(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer is routine; anything else is a bug to log."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s hung up: %s", client_address[0], error)
        else:
            log.exception("internal error on a connection from %s", client_address[0])

    def tracking_request(self) -> _ActiveRequest:
        """A context that counts one request being answered (graceful stop waits for them)."""
        return _ActiveRequest(self)

    def _enter(self, delta: int) -> None:
        with self._lock:
            self._active_requests += delta
            self._lock.notify_all()

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let requests in progress finish (up to ``grace_s``), close idle connections.

        Call from a thread other than the one running ``serve_forever``.
        """
        self.stopping.set()
        self.shutdown()
        deadline = time.monotonic() + grace_s
        with self._lock:
            self._lock.wait_for(lambda: self._active_requests == 0, timeout=grace_s)
            open_now = dict(self._open)
        for sock in open_now.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                log.debug("connection already closed: %s", exc)
        for thread in open_now:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("an HTTP connection thread did not stop in time")
        self.server_close()


class _ActiveRequest:
    def __init__(self, server: BoundedHTTPServer) -> None:
        self._server = server

    def __enter__(self) -> None:
        self._server._enter(1)

    def __exit__(self, *exc: object) -> None:
        self._server._enter(-1)
