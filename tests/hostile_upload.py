"""A hostile HTTP server on 127.0.0.1 for the upload and detection clients, and a child's peak memory.

    with HostileServer(["huge", "ok"]) as server:   # the 1st request gets a 1 GiB answer, the 2nd a normal one
        ...  server.url, server.arrived (set when a request was read), server.requests

Modes, one per request in order (then ``ok`` for the rest):

- ``ok``: what Roboflow answers: ``{"success": true, "id": ...}`` (upload) or ``{"success": true}``.
- ``huge``: a 200 with a 1 GiB body (written lazily, until the client goes away).
- ``bomb``: a 200 of about 2 MB ``Content-Encoding: gzip`` that inflates to 2 GiB.
- ``drip``: the whole answer one byte every ``drip_s`` seconds.
- ``hang``: reads the request and never answers (until the server closes).
- ``deaf``: reads the request's head, never its body, and never answers.

Waits are on the server's own stop event, so closing it never waits out a drip or a hang.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from bench_support.peak import measured, peak_mb  # noqa: E402

GIB = 1 << 30
_CHUNK = 1 << 20


@functools.cache
def gzip_bomb() -> bytes:
    """About 2 MB of gzip that inflates to 2 GiB of zeros (32 gzip members of 64 MiB each)."""
    member = gzip.compress(bytes(64 << 20), compresslevel=9)
    return member * 32


class HostileServer:
    """Answers each request by the next of ``modes``; counts requests, connections and the bytes it sent."""

    def __init__(self, modes: Sequence[str] = (), drip_s: float = 2.0) -> None:
        self.modes = list(modes)
        self.drip_s = drip_s
        self.requests = 0
        self.connections = 0
        self.bytes_sent = 0
        self.arrived = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hostile = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="hostile", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next_mode(self) -> str:
        with self._lock:
            self.requests += 1
            return self.modes.pop(0) if self.modes else "ok"

    def _handle(self, handler: _Handler) -> None:
        mode = self._next_mode()
        if mode == "deaf":
            self.arrived.set()
            self._stop.wait()
            handler.close_connection = True
            return
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        self.arrived.set()
        if mode == "hang":
            self._stop.wait()
            handler.close_connection = True
            return
        if mode == "drip":
            self._drip(handler)
            return
        if mode == "huge":
            self._send_head(handler, GIB)
            self._send_zeros(handler, GIB)
            return
        if mode == "bomb":
            bomb = gzip_bomb()
            self._send_head(handler, len(bomb), {"Content-Encoding": "gzip"})
            self._write(handler, bomb)
            return
        answer = (
            {"success": True, "id": f"img{self.requests:04d}"}
            if handler.path.split("?")[0].endswith("/upload")
            else {"success": True}
        )
        payload = json.dumps(answer).encode()
        self._send_head(handler, len(payload))
        self._write(handler, payload)

    def _send_head(self, handler: _Handler, length: int, headers: dict[str, str] | None = None) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()

    def _send_zeros(self, handler: _Handler, length: int) -> None:
        block = b"0" * _CHUNK
        while length > 0 and not self._stop.is_set():
            self._write(handler, block[: min(length, _CHUNK)])
            length -= _CHUNK

    def _drip(self, handler: _Handler) -> None:
        payload = json.dumps({"success": True, "id": "drip"}).encode()
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload)
        for byte in answer:
            self._write(handler, bytes([byte]))
            if self._stop.wait(self.drip_s):
                return

    def _write(self, handler: _Handler, data: bytes) -> None:
        handler.wfile.write(data)
        handler.wfile.flush()
        with self._lock:
            self.bytes_sent += len(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hostile: HostileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up on a hostile answer is what the tests want; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        hostile = self.server.hostile
        with hostile._lock:
            hostile.connections += 1

    def do_POST(self) -> None:  # noqa: N802
        try:
            self.server.hostile._handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return


def run_measured(command: Sequence[str], env: dict[str, str], timeout: float = 120.0) -> tuple[int, str, str, float]:
    """Run ``command`` to its end: its exit status, stdout, stderr and peak RSS in MB.

    The peak is the command's own (see ``scripts/bench_support/peak.py``), not this large test
    process's size.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            measured(command),
            env=env,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            status = proc.wait(timeout)
        out.seek(0)
        err.seek(0)
        errors, peak = peak_mb(err.read())
        return status, out.read(), errors, peak
