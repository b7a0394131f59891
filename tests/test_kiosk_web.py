import http.client
import json
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from stepped import SteppedDisplay, run_every_frame

from livecam.kiosk.display import KioskDisplay
from livecam.kiosk.keys import QuitSequence
from livecam.kiosk.web import BOUNDARY, FrameHub, WebView
from livecam.live.pipeline import LiveConfig
from livecam.overlay import OverlayStyle, draw_predictions
from livecam.predictions import Prediction, Predictions
from livecam.sources import SourceInfo

GREEN = (0, 255, 0)
STATS = {
    "fps": 29.9,
    "detections_per_s": 5.0,
    "latency_ms": 120.0,
    "age_ms": 150.0,
    "status": ["Detection service unreachable - retrying"],
}


def boxed_picture() -> np.ndarray:
    image = np.full((480, 640, 3), 90, np.uint8)
    box = Predictions(items=(Prediction(100, 100, 400, 300, 0.9, "target"),))
    return draw_predictions(image, box, OverlayStyle(thickness=8, colors={"target": GREEN}))


def get(view: WebView, path: str) -> tuple[int, str, bytes]:
    host, port = view.url.split("//")[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def read_parts(view: WebView, count: int) -> list[bytes]:
    """Read ``count`` JPEG parts from /stream.mjpg."""
    host, port = view.url.split("//")[1].rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        stream = sock.makefile("rb")
        status = stream.readline()
        assert b" 200 " in status
        headers: dict[str, str] = {}
        while line := stream.readline().strip():
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        assert headers["content-type"] == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
        parts: list[bytes] = []
        while len(parts) < count:
            assert stream.readline().strip() == f"--{BOUNDARY}".encode()
            part_headers: dict[str, str] = {}
            while line := stream.readline().strip():
                name, _, value = line.decode().partition(":")
                part_headers[name.lower()] = value.strip()
            assert part_headers["content-type"] == "image/jpeg"
            parts.append(stream.read(int(part_headers["content-length"])))
            assert stream.readline() == b"\r\n"
        return parts


@pytest.fixture
def view() -> Iterator[WebView]:
    hub = FrameHub(fps=20)
    with WebView(("127.0.0.1", 0), hub, lambda: dict(STATS), title="Lobby <1>") as web:
        yield web


def test_stream_serves_jpeg_parts_of_the_published_pictures(view: WebView) -> None:
    stop = threading.Event()

    def publish() -> None:
        shade = 0
        while not stop.wait(0.02):
            shade = (shade + 5) % 250
            view.hub.publish(np.full((120, 160, 3), shade, np.uint8))

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    try:
        parts = read_parts(view, 3)
    finally:
        stop.set()
        publisher.join(5)
    images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert all(i is not None and i.shape == (120, 160, 3) for i in images)
    assert len({int(i.mean()) for i in images if i is not None}) == 3  # three different frames, not one repeated


def test_stats_page_and_snapshot(view: WebView) -> None:
    view.hub.publish(boxed_picture())
    status, kind, body = get(view, "/stats")
    assert status == 200 and kind == "application/json"
    assert json.loads(body) == STATS
    status, kind, body = get(view, "/")
    assert status == 200 and kind.startswith("text/html")
    assert b"/stream.mjpg" in body and b"/stats" in body and b"Lobby &lt;1&gt;" in body
    status, kind, body = get(view, "/snapshot.jpg")
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert status == 200 and kind == "image/jpeg" and image is not None and image.shape == (480, 640, 3)
    assert get(view, "/nothing")[0] == 404


def test_nothing_is_encoded_without_viewers(view: WebView) -> None:
    for _ in range(5):
        view.hub.publish(boxed_picture())
    assert get(view, "/stats")[0] == 200
    assert view.hub.encoded == 0


def test_viewers_beyond_the_limit_are_refused() -> None:
    hub = FrameHub(fps=20, max_viewers=1)
    with WebView(("127.0.0.1", 0), hub, dict) as web:
        with hub.viewer():
            assert get(web, "/stream.mjpg")[0] == 503


def address(view: WebView) -> tuple[str, int]:
    host, port = view.url.split("//")[1].rstrip("/").rsplit(":", 1)
    return host, int(port)


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server closes ``sock`` (waits up to the socket's timeout)."""
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


def test_idle_connections_neither_lock_out_stats_nor_stay_open() -> None:
    with WebView(
        ("127.0.0.1", 0), FrameHub(fps=10), lambda: dict(STATS), request_timeout=0.5, max_connections=8
    ) as web:
        idle = [socket.create_connection(address(web), timeout=10) for _ in range(50)]
        try:
            idle[-1].sendall(b"GET /st")  # half a request line, then nothing
            status, _, body = get(web, "/stats")
            assert status == 200 and json.loads(body) == STATS
            assert all(closed_by_server(sock) for sock in idle)
        finally:
            for sock in idle:
                sock.close()
        assert get(web, "/stats")[0] == 200


def test_connections_beyond_the_cap_are_refused_while_every_one_is_answering() -> None:
    with WebView(("127.0.0.1", 0), FrameHub(fps=10), dict, max_connections=2) as web:
        streams = [socket.create_connection(address(web), timeout=10) for _ in range(2)]
        try:
            for sock in streams:
                sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert b" 200 " in sock.makefile("rb").readline()
            status, _, body = get(web, "/stats")
        finally:
            for sock in streams:
                sock.close()
    assert status == 503 and body == b"too many clients\n"


class NoiseClip:
    """A finite 30 fps clip of noise: its JPEGs are big, so a viewer that does not read stalls fast."""

    def __init__(self, frames: int, width: int = 640, height: int = 360) -> None:
        rng = np.random.default_rng(1)
        self._pictures = [rng.integers(0, 256, (height, width, 3), np.uint8) for _ in range(4)]
        self.frames, self.width, self.height = frames, width, height
        self.info: SourceInfo | None = None
        self._index = 0

    def open(self) -> SourceInfo:
        self._index = 0
        self.info = SourceInfo(
            fps=30.0,
            width=self.width,
            height=self.height,
            live=False,
            frame_count=self.frames,
            name="noise",
            kind="file",
            paced=True,
        )
        return self.info

    def read(self) -> np.ndarray | None:
        if self._index >= self.frames:
            return None
        self._index += 1
        return self._pictures[self._index % 4]

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_viewers_and_a_stalled_viewer_do_not_slow_the_display() -> None:
    hub = FrameHub(fps=10)
    with WebView(("127.0.0.1", 0), hub, dict, send_timeout=0.5, send_buffer=32 * 1024) as web:
        host, port = web.url.split("//")[1].rstrip("/").rsplit(":", 1)
        received: list[int] = []
        readers = []
        for _ in range(3):
            thread = threading.Thread(target=lambda: received.append(len(read_parts(web, 3))), daemon=True)
            thread.start()
            readers.append(thread)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((host, int(port)))
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # and never reads

        def kiosk(shown: SteppedDisplay) -> KioskDisplay:
            return KioskDisplay(shown, QuitSequence.parse("none"), threading.Event(), publish=hub.publish)

        # Every frame is shown (asserted), each read once the previous one was: a display held up
        # by a viewer would stop the clip. From the 30th on, frames also wait for the viewers'
        # side of the story, so it is told however fast the clip plays.
        _, stats = run_every_frame(
            NoiseClip(90),
            None,
            LiveConfig(hud=False),
            display=kiosk,
            may_go=lambda _, index: index < 30 or (web.viewer_dropped.is_set() and len(received) == 3),
        )
        for thread in readers:
            thread.join(10)
        assert web.viewer_dropped.wait(10), "the viewer that stopped reading was not dropped"
        stalled.close()
    assert stats["source_frames"] == stats["displayed_frames"] == 90
    assert received == [3, 3, 3]
    assert web.dropped_viewers >= 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)")
def test_headless_chromium_shows_the_picture_with_its_box(tmp_path: Path) -> None:
    assert CHROMIUM is not None
    hub = FrameHub(fps=10)
    with WebView(("127.0.0.1", 0), hub, lambda: dict(STATS)) as web:
        hub.publish(boxed_picture())
        shot = tmp_path / "page.png"
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [
                    CHROMIUM,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={profile}",
                    f"--screenshot={shot}",
                    "--window-size=800,600",
                    "--timeout=5000",
                    web.url,
                ],
                check=True,
                capture_output=True,
                timeout=90,
            )
    picture = cv2.imread(str(shot))
    assert picture is not None
    green = (picture[:, :, 1] > 200) & (picture[:, :, 0] < 60) & (picture[:, :, 2] < 60)
    # The 8-pixel outline of a 300x200 box, scaled to fit the page, is thousands of green pixels.
    assert green.sum() > 2000
