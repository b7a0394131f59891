"""A loopback Roboflow-format API that answers with the coloured blobs of each image it is sent.

Each request holds one of ``slots`` places for ``latency_ms``, then gets :func:`blobs.detect_blobs`
of the decoded image, in the pixels of the image as sent, with an ``x-processing-time`` header as
hosted Roboflow sends (the latency, in seconds).

    python scripts/bench_support/blob_server.py --latency-ms 200 --slots 4
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_support.blobs import detect_blobs  # noqa: E402 - run as a script, beside its package


class BlobServer(ThreadingHTTPServer):
    """A threaded HTTP server whose every POST waits ``latency_s`` in one of ``slots`` places."""

    daemon_threads = True

    def __init__(self, port: int, latency_s: float, slots: int, stop: threading.Event) -> None:
        self.latency_s = latency_s
        self.slots = threading.BoundedSemaphore(slots)
        self.stop = stop
        self.requests = 0
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BlobServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            data = base64.b64decode(body, validate=False)
        except (binascii.Error, ValueError):
            data = b""
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            self._reply(400, b'{"message": "not an image"}')
            return
        server = self.server
        while not server.slots.acquire(timeout=0.5):
            if server.stop.is_set():
                return
        try:
            server.requests += 1
            server.stop.wait(server.latency_s)
        finally:
            server.slots.release()
        height, width = image.shape[:2]
        answer = {"time": server.latency_s, "image": {"width": width, "height": height}}
        answer["predictions"] = detect_blobs(np.asarray(image, np.uint8))
        self._reply(200, json.dumps(answer).encode(), {"x-processing-time": f"{server.latency_s:.4f}"})

    def _reply(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the chosen port is printed first as ``PORT n``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every answer")
    parser.add_argument("--slots", type=int, default=8, help="requests delayed at once; more wait")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    server = BlobServer(args.port, args.latency_ms / 1000, max(1, args.slots), stop)
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
