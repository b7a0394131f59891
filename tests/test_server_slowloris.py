"""Slow and idle clients cannot lock real clients out of ``livecam serve``: whole-request read
deadlines close them, and at the connection cap the longest-waiting unanswered one makes room."""

from __future__ import annotations

import base64
import select
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import requests
from server_fakes import BlockingDetector, FixedDetector

from livecam.frames import Image
from livecam.net.connections import ConnectionTable
from livecam.predictions import Predictions
from livecam.server import EmbeddedServer, ServerConfig

TIMEOUT = 30.0
SLOW_SOCKETS = 120
PARTIAL_HEAD = b"POST /coco/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def address(server: EmbeddedServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def jpeg_body() -> bytes:
    return base64.b64encode(cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes())


def open_slow(server: EmbeddedServer, count: int, first: bytes = PARTIAL_HEAD) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(address(server), timeout=TIMEOUT)
        sock.sendall(first)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (reads what is left; waits up to TIMEOUT for the end)."""
    sock.settimeout(TIMEOUT)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def drip_until_closed(sockets: list[socket.socket], stop: threading.Event) -> set[int]:
    """Send one more byte to each open socket every 0.2 s until the server closed them all (bounded)."""
    open_now = {sock.fileno(): sock for sock in sockets}
    closed: set[int] = set()
    rounds = int(TIMEOUT / 0.2)
    for _ in range(rounds):
        if not open_now or stop.wait(0.2):
            break
        for fd, sock in list(open_now.items()):
            try:
                sock.sendall(b"x")
            except OSError:
                closed.add(fd)
                del open_now[fd]
        readable, _, _ = select.select(list(open_now.values()), [], [], 0) if open_now else ([], [], [])
        for sock in readable:
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed.add(sock.fileno())
                open_now.pop(sock.fileno(), None)
    return closed


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


@pytest.fixture
def patient_server() -> Iterator[EmbeddedServer]:
    """Deadlines far beyond the test: only making room at the cap can help real clients."""
    config = ServerConfig(port=0, max_connections=32, header_timeout_s=600, socket_timeout_s=600)
    with EmbeddedServer(config, detector_factory=FixedDetector) as running:
        yield running


def test_real_clients_are_answered_while_many_slow_sockets_are_open(patient_server: EmbeddedServer) -> None:
    slow = open_slow(patient_server, SLOW_SOCKETS)
    try:
        for _ in range(10):
            answer = requests.post(f"{patient_server.url}/coco/1", data=jpeg_body(), timeout=TIMEOUT)
            assert answer.status_code == 200
            assert answer.json()["predictions"][0]["class"] == "person"
        # The oldest slow sockets were closed to make room; at most the cap stays open.
        oldest = slow[: SLOW_SOCKETS - 32]
        assert all(closed_by_server(sock) for sock in oldest)
    finally:
        close_all(slow)


def test_a_keep_alive_client_whose_idle_connection_made_room_reconnects(patient_server: EmbeddedServer) -> None:
    with requests.Session() as session:
        assert session.get(f"{patient_server.url}/healthz", timeout=TIMEOUT).status_code == 200
        slow = open_slow(patient_server, SLOW_SOCKETS)
        try:
            # The idle session connection waited longest, so it went first; once the server has
            # taken in every slow socket (the last one to make room is closed), the session sees
            # its connection closed and opens a new one.
            assert closed_by_server(slow[SLOW_SOCKETS - 32 - 1])
            for _ in range(5):
                assert session.post(f"{patient_server.url}/coco/1", data=jpeg_body(), timeout=TIMEOUT).ok
        finally:
            close_all(slow)


@pytest.fixture
def strict_server() -> Iterator[EmbeddedServer]:
    """Short whole-request deadlines; the per-read stall limit alone would never end a drip."""
    config = ServerConfig(
        port=0, header_timeout_s=0.5, body_timeout_s=0.5, min_upload_bytes_per_s=1e9, socket_timeout_s=600
    )
    with EmbeddedServer(config, detector_factory=FixedDetector) as running:
        yield running


@pytest.mark.parametrize(
    "first",
    [
        PARTIAL_HEAD,
        b"POST /coco/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nAAAA",
    ],
    ids=["dripped-headers", "dripped-body"],
)
def test_dripping_clients_are_closed_by_the_request_deadline(strict_server: EmbeddedServer, first: bytes) -> None:
    slow = open_slow(strict_server, 20, first)
    try:
        closed = drip_until_closed(slow, threading.Event())
        assert len(closed) == len(slow)
        assert requests.get(f"{strict_server.url}/healthz", timeout=TIMEOUT).status_code == 200
    finally:
        close_all(slow)


def test_idle_keep_alive_connections_are_closed(strict_server: EmbeddedServer) -> None:
    with socket.create_connection(address(strict_server), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" not in answer
        assert closed_by_server(sock)


def test_a_large_body_gets_time_in_proportion_to_its_size() -> None:
    config = ServerConfig(port=0, header_timeout_s=600, body_timeout_s=600)
    assert config.body_timeout(1000) == 600
    assert ServerConfig(min_upload_bytes_per_s=100_000, body_timeout_s=10).body_timeout(20_000_000) == 200


class CountingBlockingDetector(BlockingDetector):
    """A :class:`BlockingDetector` that can wait until ``count`` calls are inside ``detect``."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self._entries = threading.Condition()

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        with self._entries:
            self.inside += 1
            self._entries.notify_all()
        return super().detect(image_bgr, confidence, iou, max_detections)

    def wait_inside(self, count: int) -> bool:
        with self._entries:
            return self._entries.wait_for(lambda: self.inside >= count, timeout=TIMEOUT)


def test_connections_being_answered_are_never_closed_for_room() -> None:
    blocking = CountingBlockingDetector()
    config = ServerConfig(port=0, workers=2, max_pending=2, max_connections=2, header_timeout_s=600)
    with EmbeddedServer(config, detector_factory=lambda: blocking) as server, ThreadPoolExecutor(2) as pool:

        def post() -> requests.Response:
            return requests.post(f"{server.url}/coco/1", data=jpeg_body(), timeout=TIMEOUT)

        try:
            first: Future[requests.Response] = pool.submit(post)
            second: Future[requests.Response] = pool.submit(post)
            assert blocking.wait_inside(2)
            # Both slots hold requests being answered: a newcomer is turned away, not admitted by closing one.
            refused = requests.get(f"{server.url}/healthz", timeout=TIMEOUT)
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        finally:
            blocking.release.set()
        assert first.result(TIMEOUT).status_code == 200
        assert second.result(TIMEOUT).status_code == 200


def test_table_makes_room_by_closing_the_longest_waiting_unanswered_connection() -> None:
    now = [0.0]
    table = ConnectionTable(limit=3, stall_s=30, clock=lambda: now[0])
    pairs = [socket.socketpair() for _ in range(5)]
    try:
        conns = []
        for server_side, _ in pairs[:3]:
            now[0] += 1
            conn = table.open(server_side)
            assert conn is not None
            conns.append(conn)
        assert conns[0].answer()  # the oldest is being answered: it must stay
        now[0] += 1
        conns[1].expect(10)  # the second just answered and waits again: newest wait now
        fourth = table.open(pairs[3][0])
        assert fourth is not None and conns[2].evicted and not conns[1].evicted and len(table) == 3
        assert pairs[2][1].recv(1) == b""  # its socket was shut down, ending its blocked read
        assert not conns[2].answer()
        with pytest.raises(TimeoutError):
            conns[2].read_timeout()
        conns[1].answer()
        fourth.answer()
        assert table.open(pairs[4][0]) is None  # every slot is answering
    finally:
        for a, b in pairs:
            a.close()
            b.close()
