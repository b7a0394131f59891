"""A loopback Roboflow-format API that answers after a fixed delay, without running a model.

It stands in for a remote detection service: each request holds one of ``slots`` places for
``latency_ms`` (more requests wait for a place, as on a server with that many workers), then
gets two boxes in Roboflow JSON scaled to the image it was sent. The only CPU it spends is
HTTP parsing and reading the JPEG header, so on a 2-core machine it leaves the client's
measurements alone.

    python scripts/bench_support/latency_server.py --latency-ms 200 --slots 8
    # prints "PORT 40123" on stdout, serves until SIGTERM or SIGINT
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from livecam.server.imagesize import header_size

DEFAULT_SIZE = (640, 480)

Reply = tuple[int, bytes, dict[str, str]]
"""An answer's status, JSON body and extra headers."""
Respond = Callable[[bytes, float], Reply]
"""What a request body gets, given the server's latency in seconds."""


def answer(width: int, height: int) -> bytes:
    """Roboflow's answer with two boxes for a ``width`` x ``height`` image."""
    boxes = [
        {
            "x": width * 0.3,
            "y": height * 0.5,
            "width": width * 0.2,
            "height": height * 0.4,
            "confidence": 0.91,
            "class": "person",
            "class_id": 0,
        },
        {
            "x": width * 0.7,
            "y": height * 0.6,
            "width": width * 0.25,
            "height": height * 0.3,
            "confidence": 0.77,
            "class": "car",
            "class_id": 2,
        },
    ]
    return json.dumps({"time": 0.0, "image": {"width": width, "height": height}, "predictions": boxes}).encode()


def two_boxes(body: bytes, latency_s: float) -> Reply:
    """:func:`answer` for the size of the image in ``body``."""
    return 200, answer(*(_image_size(body) or DEFAULT_SIZE)), {}


class LatencyServer(ThreadingHTTPServer):
    """A threaded HTTP server whose every answered POST waits ``latency_s`` in one of ``slots`` places.

    ``respond`` makes each answer from the request body (two boxes by default); an error answer
    is sent at once.
    """

    daemon_threads = True

    def __init__(
        self, port: int, latency_s: float, slots: int, stop: threading.Event, respond: Respond = two_boxes
    ) -> None:
        self.latency_s = latency_s
        self.slots = threading.BoundedSemaphore(slots)
        self.stop = stop
        self.respond = respond
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LatencyServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        """Quiet: one line per request would cost more than the request."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        status, payload, headers = server.respond(body, server.latency_s)
        if status == 200:
            while not server.slots.acquire(timeout=0.5):
                if server.stop.is_set():
                    return
            try:
                server.stop.wait(server.latency_s)
            finally:
                server.slots.release()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _image_size(body: bytes) -> tuple[int, int] | None:
    try:
        head = base64.b64decode(body[: 4096 - 4096 % 4], validate=False)
    except (binascii.Error, ValueError):
        return None
    return header_size(head)


def main(argv: list[str] | None = None, respond: Respond = two_boxes, description: str | None = __doc__) -> int:
    """Serve until SIGTERM/SIGINT; the chosen port is printed first as ``PORT n``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0] if description else None)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument("--slots", type=int, default=8, help="requests delayed at once; more wait")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    server = LatencyServer(args.port, args.latency_ms / 1000, max(1, args.slots), stop, respond)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"PORT {server.server_address[1]}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
