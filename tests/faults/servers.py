"""A raw-socket HTTP/1.1 server on 127.0.0.1 whose every answer a test scripts, faults included.

    server = FaultServer(lambda got: Answer.json({"predictions": []})).start()
    server.script = lambda got: RESET            # from now on, reset every connection
    server.stop()                                # cut every client off, free the port...
    server.start()                               # ...and listen on the same port again

Answers can be ordinary (any status, headers, body), or faults no HTTP library would produce:
a TCP reset, a close without an answer, a body dripped a byte at a time, a body far larger than
any client should read (streamed, never held in memory), or no answer at all. Every wait inside
the server is on its stop event, so ``stop`` never waits out a delay.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

_MAX_HEAD = 64 * 1024
_FILL = b" " * 65536
JOIN_S = 5.0


@dataclass(frozen=True)
class Received:
    """One request as the server read it.

    Attributes:
        index: 0 for the first request since the server object was made, counting across restarts.
        method, path: from the request line (path without the query).
        query: the last value of each query parameter.
        headers: header names lower-cased.
        body_size: bytes of body read.
        arrived: monotonic time the request was complete.
    """

    index: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body_size: int
    arrived: float


@dataclass(frozen=True)
class Answer:
    """What the server does with one request.

    Attributes:
        status: HTTP status code.
        body: body bytes.
        headers: extra headers (Content-Length is added unless ``declared_length`` is given).
        delay: seconds to wait before answering at all.
        reset: abort the connection with a TCP reset instead of answering.
        close: close the connection (FIN) without answering.
        hang: never answer; the connection stays open until the client or ``stop`` ends it.
        drip: send the body one byte per this many seconds (after the headers).
        filler: send this many filler bytes as the body instead of ``body``, in 64 KB writes.
        declared_length: Content-Length to announce (may disagree with what is sent).
    """

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    delay: float = 0.0
    reset: bool = False
    close: bool = False
    hang: bool = False
    drip: float | None = None
    filler: int | None = None
    declared_length: int | None = None

    @classmethod
    def json(
        cls, data: Any, status: int = 200, headers: tuple[tuple[str, str], ...] = (), delay: float = 0.0
    ) -> Answer:
        """A JSON answer; ``data`` is encoded without rejecting NaN or infinity."""
        return cls(status, json.dumps(data).encode(), (("Content-Type", "application/json"), *headers), delay=delay)

    @classmethod
    def text(
        cls, status: int, body: str, content_type: str = "text/html", headers: tuple[tuple[str, str], ...] = ()
    ) -> Answer:
        """A non-JSON answer, e.g. a proxy's HTML error page."""
        return cls(status, body.encode(), (("Content-Type", content_type), *headers))


RESET = Answer(reset=True)
"""Abort the connection with a TCP RST."""
CLOSE = Answer(close=True)
"""Close the connection without a word."""
HANG = Answer(hang=True)
"""Never answer."""
EMPTY = Answer.json({"time": 0.01, "image": {"width": 640, "height": 360}, "predictions": []})
"""A valid answer with no detections."""


def one_box(received: Received | None = None, width: int = 640, height: int = 360) -> Answer:
    """A valid answer with one centred "person" box (for a 640x360 image)."""
    return Answer.json(
        {
            "time": 0.01,
            "image": {"width": width, "height": height},
            "predictions": [
                {
                    "x": width / 2,
                    "y": height / 2,
                    "width": width / 4,
                    "height": height / 4,
                    "confidence": 0.9,
                    "class": "person",
                    "class_id": 0,
                }
            ],
        }
    )


def many_boxes(count: int, width: int = 640, height: int = 360) -> Answer:
    """A valid answer with ``count`` small boxes."""
    preds = [
        {
            "x": 10 + (i * 7) % (width - 20),
            "y": 10 + (i * 13) % (height - 20),
            "width": 8,
            "height": 8,
            "confidence": 0.5 + (i % 50) / 100,
            "class": f"c{i % 7}",
            "class_id": i % 7,
        }
        for i in range(count)
    ]
    return Answer.json({"image": {"width": width, "height": height}, "predictions": preds})


def always(answer: Answer) -> Callable[[Received], Answer]:
    """A script that gives every request the same answer."""
    return lambda _received: answer


def free_port() -> int:
    """A loopback port nothing listens on right now (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FaultServer:
    """A scriptable HTTP/1.1 server on 127.0.0.1 with keep-alive, stoppable and restartable.

    Args:
        script: maps each :class:`Received` request to an :class:`Answer`; may be replaced at any time.
        port: 0 picks a free port on the first :meth:`start`; later starts reuse it.

    Attributes:
        requests: requests received so far (all starts together).
        arrivals: monotonic arrival times of every request.
        starts: monotonic times of every :meth:`start`.
    """

    def __init__(self, script: Callable[[Received], Answer] = one_box, port: int = 0) -> None:
        self.script = script
        self.port = port
        self.requests = 0
        self.arrivals: list[float] = []
        self.starts: list[float] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._conns: dict[threading.Thread, socket.socket] = {}

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._listener is not None

    def start(self) -> FaultServer:
        """Listen (on the same port as before, if any) and serve in background threads."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self.port))
        except OSError:
            listener.close()
            raise
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._stop = threading.Event()
        self._listener = listener
        with self._cond:
            self.starts.append(time.monotonic())
        self._acceptor = threading.Thread(
            target=self._accept, args=(listener, self._stop), name="fault-server", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop listening, cut every client off, and join every thread (bounded)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stop.set()
        with contextlib.suppress(OSError):  # wakes the blocked accept()
            listener.shutdown(socket.SHUT_RDWR)
        if self._acceptor is not None:
            self._acceptor.join(JOIN_S)
        listener.close()
        with self._cond:
            conns = dict(self._conns)
        for conn in conns.values():
            with contextlib.suppress(OSError):  # the client may have gone already
                conn.shutdown(socket.SHUT_RDWR)
        for thread in conns:
            thread.join(JOIN_S)
        stuck = [t.name for t in conns if t.is_alive()]
        if stuck or (self._acceptor is not None and self._acceptor.is_alive()):
            raise RuntimeError(f"fault server threads did not stop: {stuck}")

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests arrived in total (False on timeout)."""
        with self._cond:
            return self._cond.wait_for(lambda: self.requests >= count, timeout)

    def requests_since(self, moment: float) -> int:
        """Requests that arrived after the monotonic time ``moment``."""
        with self._cond:
            return sum(1 for t in self.arrivals if t > moment)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # stop() shut the listener
            thread = threading.Thread(target=self._serve, args=(conn, stop), name="fault-conn", daemon=True)
            with self._cond:
                if stop.is_set():
                    conn.close()
                    return
                self._conns[thread] = conn
            thread.start()

    def _serve(self, conn: socket.socket, stop: threading.Event) -> None:
        reader = _Reader(conn)
        try:
            while not stop.is_set():
                head = reader.head()
                if head is None:
                    return
                received = self._received(head, reader)
                if received is None:
                    return
                answer = self.script(received)
                if not self._answer(conn, answer, stop):
                    return
        except OSError:
            return  # the client went away, or stop() shut the socket
        finally:
            with self._cond:
                self._conns.pop(threading.current_thread(), None)
            conn.close()

    def _received(self, head: bytes, reader: _Reader) -> Received | None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2:
            return None
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if not reader.body(length):
            return None
        url = urlsplit(parts[1])
        with self._cond:
            index = self.requests
            self.requests += 1
            arrived = time.monotonic()
            self.arrivals.append(arrived)
            self._cond.notify_all()
        return Received(
            index, parts[0], url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}, headers, length, arrived
        )

    def _answer(self, conn: socket.socket, answer: Answer, stop: threading.Event) -> bool:
        """Carry out ``answer``; False when the connection must end."""
        if answer.delay and stop.wait(answer.delay):
            return False
        if answer.hang:
            stop.wait()
            return False
        if answer.reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if answer.close:
            return False
        size = answer.filler if answer.filler is not None else len(answer.body)
        length = answer.declared_length if answer.declared_length is not None else size
        head = [
            f"HTTP/1.1 {answer.status} {_REASONS.get(answer.status, 'Status')}",
            *(f"{k}: {v}" for k, v in answer.headers),
            f"Content-Length: {length}",
        ]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if answer.filler is not None:
            left = answer.filler
            while left > 0 and not stop.is_set():
                chunk = _FILL[: min(left, len(_FILL))]
                conn.sendall(chunk)
                left -= len(chunk)
            return False
        if answer.drip is not None:
            for byte in answer.body:
                if stop.wait(answer.drip):
                    return False
                conn.sendall(bytes([byte]))
            return False
        conn.sendall(answer.body)
        return length == size


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class _Reader:
    """Buffered reads of request heads and bodies from one connection."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._buf = b""

    def head(self) -> bytes | None:
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HEAD:
                return None
            chunk = self._conn.recv(65536)
            if not chunk:
                return None
            self._buf += chunk
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        return head

    def body(self, length: int) -> bool:
        while len(self._buf) < length:
            chunk = self._conn.recv(max(65536, length - len(self._buf)))
            if not chunk:
                return False
            self._buf += chunk
        self._buf = self._buf[length:]
        return True


@dataclass
class Flaky:
    """A seeded script of random faults and latency, for soak runs.

    Each request draws one outcome: a valid answer after 0 to ``max_latency`` s (most), or a
    500, a 503 with Retry-After, an HTML 502, a reset, a close, a not-JSON body, or an answer
    dripped past the client's read timeout.
    """

    seed: int = 1
    max_latency: float = 0.15
    error_rate: float = 0.2
    drip_s: float = 0.05
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import random

        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def __call__(self, received: Received) -> Answer:
        with self._lock:
            roll = self._rng.random()
            latency = self._rng.uniform(0.0, self.max_latency)
            kind = "ok" if roll >= self.error_rate else self._rng.choice(_FLAKY_KINDS)
            self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind == "ok":
            answer = one_box()
            return Answer(answer.status, answer.body, answer.headers, delay=latency)
        return _flaky_answer(kind, latency, self.drip_s)


_FLAKY_KINDS = ("500", "503", "502html", "reset", "close", "notjson", "drip")


def _flaky_answer(kind: str, latency: float, drip_s: float) -> Answer:
    if kind == "500":
        return Answer.json({"message": "internal error"}, 500, delay=latency)
    if kind == "503":
        return Answer.json(
            {"message": "Model is temporarily not ready - retry request."}, 503, (("Retry-After", "1"),), delay=latency
        )
    if kind == "502html":
        return Answer.text(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    if kind == "reset":
        return RESET
    if kind == "close":
        return CLOSE
    if kind == "notjson":
        return Answer.text(200, "<html>maintenance</html>")
    return Answer(200, one_box().body, drip=drip_s)
