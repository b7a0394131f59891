"""The browser view: the annotated stream as MJPEG, a snapshot, and live stats, over HTTP.

Usage::

    hub = FrameHub(fps=10)
    with WebView(("127.0.0.1", 8080), hub, stats=lambda: {...}) as view:
        ...                     # the display calls hub.publish(picture) for every picture
    # GET /  /stream.mjpg  /snapshot.jpg  /stats  (and /camera/N/stream.mjpg, /camera/N/snapshot.jpg)

Cost to the display is one reference assignment per picture: :class:`FrameHub` encodes at most
one JPEG per ``1 / fps`` tick on its own thread, and only while someone is watching; every
viewer then copies the same bytes. A viewer that stops reading hits the socket send timeout
and is dropped; nothing is ever queued for it.

Connections are bounded: a client must send its whole request within ``request_timeout`` s,
and at most ``max_connections`` are open at once; at the cap, the connection that has waited
longest for its client to send is closed to make room, so idle sockets cannot lock others out.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http import HTTPStatus
from importlib import resources
from types import TracebackType
from typing import Any

from livecam.encode import Encoder, OpenCVEncoder
from livecam.errors import ConfigError
from livecam.frames import Image
from livecam.net import BoundedHandler, BoundedHTTPServer, ConnectionTable
from livecam.workers import JOIN_TIMEOUT_S, Worker

log = logging.getLogger(__name__)

BOUNDARY = "livecamframe"
_WAIT_STEP_S = 1.0
_SNAPSHOT_WAIT_S = 2.0
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 17\r\nConnection: close\r\n\r\ntoo many clients\n"
)


class HubClosed(Exception):
    """Raised by :meth:`FrameHub.wait_jpeg` once the hub is closed."""


class TooManyViewers(Exception):
    """Raised by :meth:`FrameHub.viewer` when the viewer limit is reached."""


class FrameHub:
    """Holds the newest picture and turns it into JPEG bytes at most ``fps`` times a second.

    Args:
        fps: the most JPEGs made per second.
        max_viewers: the most viewers registered at once.
        quality: JPEG quality.
        encoder: the JPEG encoder (OpenCV by default).
        clock: monotonic seconds.
    """

    def __init__(
        self,
        fps: float = 10.0,
        *,
        max_viewers: int = 8,
        quality: int = 80,
        encoder: Encoder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fps <= 0:
            raise ConfigError(f"web fps must be positive (got {fps})")
        self._period = 1.0 / fps
        self._max_viewers = max_viewers
        self._quality = quality
        self._encoder = encoder or OpenCVEncoder()
        self._clock = clock
        self._cond = threading.Condition()
        self._picture: Image | None = None
        self._picture_seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = 0
        self._encoded_from = 0
        self._viewers = 0
        self._closed = threading.Event()
        self._worker = Worker(self._run, "livecam-web-encoder")
        self.encoded = 0
        """JPEGs made so far."""

    def start(self) -> None:
        """Start the encoder thread."""
        self._worker.start()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop encoding and wake every viewer (they then end). Idempotent."""
        self._closed.set()
        with self._cond:
            self._cond.notify_all()
        if not self._worker.join(timeout):
            log.warning("web encoder thread did not stop within %.1f s", timeout)

    def publish(self, picture: Image) -> None:
        """Offer the newest picture. Cheap: keeps a reference; the caller must not change it later."""
        with self._cond:
            self._picture = picture
            self._picture_seq += 1

    @property
    def viewers(self) -> int:
        """Viewers registered now."""
        with self._cond:
            return self._viewers

    @contextlib.contextmanager
    def viewer(self) -> Iterator[None]:
        """Register a viewer for the ``with`` block; JPEGs are only made while one is registered.

        Raises:
            TooManyViewers: ``max_viewers`` are already registered.
        """
        with self._cond:
            if self._viewers >= self._max_viewers:
                raise TooManyViewers(f"already {self._viewers} viewers")
            self._viewers += 1
        try:
            yield
        finally:
            with self._cond:
                self._viewers -= 1

    def wait_jpeg(self, after_seq: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest JPEG once it is newer than ``after_seq``, or None after ``timeout`` s.

        Raises:
            HubClosed: the hub was closed.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._jpeg_seq > after_seq or self._closed.is_set(), timeout)
            if self._closed.is_set():
                raise HubClosed
            if self._jpeg is None or self._jpeg_seq <= after_seq:
                return None
            return self._jpeg_seq, self._jpeg

    def _run(self) -> None:
        next_at = self._clock()
        while not self._closed.is_set():
            delay = next_at - self._clock()
            if delay > 0 and self._closed.wait(delay):
                return
            # Stay on the fps schedule, but never try to catch up after a slow encode.
            next_at = max(next_at + self._period, self._clock())
            with self._cond:
                picture, seq = self._picture, self._picture_seq
                wanted = self._viewers > 0 and seq != self._encoded_from
            if picture is None or not wanted:
                continue
            try:
                data = self._encoder.encode(picture, self._quality)
            except ValueError as exc:
                log.warning("web view: %s", exc)
                continue
            with self._cond:
                self._jpeg = data
                self._jpeg_seq += 1
                self._encoded_from = seq
                self.encoded += 1
                self._cond.notify_all()


Stats = Callable[[], dict[str, Any]]
"""Returns the ``/stats`` JSON object."""


class WebView:
    """An HTTP server for the browser view, on its own thread; a context manager.

    Args:
        address: (host, port); port 0 picks a free one (see :attr:`url`).
        hub: where pictures come from; started and closed with the view.
        stats: builds the ``/stats`` answer.
        title: the page title.
        send_timeout: seconds a viewer may take to accept one frame before it is dropped.
        send_buffer: socket send buffer per viewer, in bytes (small, so a stalled viewer is
            noticed quickly instead of filling kernel memory).
        request_timeout: seconds a client has to send its whole request (also the keep-alive
            idle timeout).
        max_connections: connections open at once (streams count while they last).
        allowed_hosts: ``Host`` names answered besides the bound address and localhost; other
            names get 421, so a page that rebinds its name to this address cannot read the view.
        cameras: with several sources, one hub per camera, served at ``/camera/N/stream.mjpg``
            and ``/camera/N/snapshot.jpg`` (N from 1); started and closed with the view.

    Raises:
        ConfigError: the address cannot be bound.
    """

    def __init__(
        self,
        address: tuple[str, int],
        hub: FrameHub,
        stats: Stats,
        *,
        title: str = "livecam",
        send_timeout: float = 5.0,
        send_buffer: int = 256 * 1024,
        request_timeout: float = 10.0,
        max_connections: int = 32,
        allowed_hosts: tuple[str, ...] = (),
        cameras: Sequence[FrameHub] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if request_timeout <= 0 or max_connections < 1:
            raise ConfigError(
                f"web view: request_timeout must be positive and max_connections at least 1 "
                f"(got {request_timeout}, {max_connections})"
            )
        self.hub = hub
        self.cameras = tuple(cameras)
        self.stats = stats
        self.title = title
        self.send_timeout = send_timeout
        self.send_buffer = send_buffer
        self.request_timeout = request_timeout
        self.connections = ConnectionTable(max_connections, send_timeout, clock)
        """The open connections (``len()`` gives how many)."""
        self.dropped_viewers = 0
        """Viewers dropped because they stopped reading or went away."""
        self.viewer_dropped = threading.Event()
        """Set each time a viewer is dropped."""
        self.allowed_hosts = allowed_hosts
        try:
            self._server = _Server(address, self)
        except OSError as exc:
            raise ConfigError(
                f"web view: cannot listen on {address[0]}:{address[1]} ({exc.strerror}); choose another --web HOST:PORT"
            ) from exc
        self._worker = Worker(lambda: self._server.serve_forever(poll_interval=0.5), "livecam-web")

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8080/``."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/"

    def start(self) -> None:
        """Start encoding and serving."""
        self.hub.start()
        for camera in self.cameras:
            camera.start()
        self._worker.start()
        log.info("web view at %s", self.url)

    def close(self) -> None:
        """Stop serving, end every stream, and join the threads (bounded). Idempotent."""
        self.hub.close()
        for camera in self.cameras:
            camera.close()
        if self._worker.is_alive():
            self._server.shutdown()
            self._worker.join()
        self._server.server_close()

    def __enter__(self) -> WebView:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def page(self) -> bytes:
        """The HTML page at ``/``."""
        return _PAGE.replace("{title}", html.escape(self.title)).encode("utf-8")

    def dropped(self, peer: str, reason: str) -> None:
        self.dropped_viewers += 1
        self.viewer_dropped.set()
        log.info("web viewer %s dropped: %s", peer, reason)


class _Server(BoundedHTTPServer):
    def __init__(self, address: tuple[str, int], view: WebView) -> None:
        self.view = view
        super().__init__(address, _Handler, view.connections, _BUSY, view.request_timeout, view.allowed_hosts)


class _Handler(BoundedHandler):
    server: _Server

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if not self.conn.answer():  # closed meanwhile to make room for a new client
            self.close_connection = True
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches on
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self.server.view.page())
        elif path == "/stats":
            body = json.dumps(self.server.view.stats(), sort_keys=True).encode("utf-8")
            self._send(HTTPStatus.OK, "application/json", body)
        elif path == "/snapshot.jpg":
            self._snapshot(self.server.view.hub)
        elif path == "/stream.mjpg":
            self._stream(self.server.view.hub)
        elif (camera := _CAMERA_PATH.match(path)) is not None and (hub := self._camera(camera.group(1))) is not None:
            if camera.group(2) == "snapshot.jpg":
                self._snapshot(hub)
            else:
                self._stream(hub)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("web %s: %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _camera(self, number: str) -> FrameHub | None:
        """The hub of camera ``number`` (counted from 1), if there is one."""
        cameras = self.server.view.cameras
        index = int(number) - 1
        return cameras[index] if 0 <= index < len(cameras) else None

    def _snapshot(self, hub: FrameHub) -> None:
        try:
            with hub.viewer():
                item = hub.wait_jpeg(0, timeout=_SNAPSHOT_WAIT_S)
        except TooManyViewers:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", b"too many viewers\n")
            return
        except HubClosed:
            item = None
        if item is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", b"no picture yet\n")
            return
        self._send(HTTPStatus.OK, "image/jpeg", item[1])

    def _stream(self, hub: FrameHub) -> None:
        view = self.server.view
        self.close_connection = True
        try:
            with hub.viewer():
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, view.send_buffer)
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                self._pump(hub)
        except TooManyViewers:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", b"too many viewers\n")
        except HubClosed:
            return
        except TimeoutError:
            view.dropped(self.address_string(), f"not reading for {view.send_timeout:g} s")
        except OSError as exc:
            view.dropped(self.address_string(), exc.strerror or type(exc).__name__)

    def _pump(self, hub: FrameHub) -> None:
        seq = 0
        while True:
            item = hub.wait_jpeg(seq, timeout=_WAIT_STEP_S)
            if item is None:
                continue
            seq, data = item
            head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n").encode("ascii")
            self.wfile.write(head)
            self.wfile.write(data)
            self.wfile.write(b"\r\n")


_CAMERA_PATH = re.compile(r"^/camera/([1-9][0-9]?)/(stream\.mjpg|snapshot\.jpg)$")

_PAGE = resources.files("livecam.kiosk").joinpath("page.html").read_text(encoding="utf-8")
"""The page at ``/`` (``{title}`` is replaced by the escaped title)."""
