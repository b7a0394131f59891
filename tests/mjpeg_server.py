"""A loopback MJPEG-over-HTTP server for tests: start, stop (dropping clients), restart.

``MjpegServer(port=0).start()`` serves ``multipart/x-mixed-replace`` JPEG frames at
``server.url`` (``http://127.0.0.1:PORT/stream.mjpg``). ``stop()`` closes the listening socket
and every open client connection, so a reader sees the stream die; ``start()`` again binds the
same port, so a reader that reconnects gets frames again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

BOUNDARY = "livecamframe"


def make_jpegs(width: int, height: int, count: int) -> list[bytes]:
    """``count`` distinct JPEG frames (a bright bar moving across a grey picture)."""
    jpegs = []
    for i in range(count):
        image = np.full((height, width, 3), 90, np.uint8)
        x = (i * width // count) % width
        cv2.rectangle(image, (x, height // 4), (x + width // 8, 3 * height // 4), (0, 200, 255), -1)
        ok, buf = cv2.imencode(".jpg", image)
        assert ok
        jpegs.append(buf.tobytes())
    return jpegs


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, owner: MjpegServer) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        owner = self.server.owner
        if self.path.split("?", 1)[0] != "/stream.mjpg":
            self.send_error(404)
            return
        closing = owner.register(self.connection)
        if closing is None:
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        index = 0
        try:
            while not closing.is_set():
                jpeg = owner.jpegs[index % len(owner.jpegs)]
                index += 1
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
                closing.wait(owner.interval)
        except OSError:
            return  # the client went away or stop() shut the socket
        finally:
            owner.unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests do not want request lines on stderr."""


class MjpegServer:
    """An MJPEG stream on 127.0.0.1 that tests can stop and restart on the same port.

    Args:
        port: 0 picks a free port on the first start; later starts reuse it.
        fps: frames per second sent to each client.
        width, height: frame size.
    """

    def __init__(self, port: int = 0, fps: float = 25.0, width: int = 160, height: int = 120) -> None:
        self.port = port
        self.interval = 1.0 / fps
        self.jpegs = make_jpegs(width, height, 10)
        self._lock = threading.Lock()
        self._clients: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stream URL (valid once started)."""
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        """Bind and serve in a background thread; returns self."""
        self._closing = threading.Event()
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="mjpeg-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every client off."""
        if self._server is None or self._thread is None:
            return
        self._closing.set()
        with self._lock:
            clients = list(self._clients)
        for conn in clients:
            with contextlib.suppress(OSError):  # the client may have hung up already
                conn.shutdown(socket.SHUT_RDWR)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        self._server = None
        self._thread = None

    def register(self, conn: socket.socket) -> threading.Event | None:
        """Track a client; returns the event that ends it, or None when stopping."""
        with self._lock:
            if self._closing.is_set():
                return None
            self._clients.add(conn)
            return self._closing

    def unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._clients.discard(conn)

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
