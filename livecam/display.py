"""Where drawn frames go: an OpenCV window or nowhere (headless), and a video file as well.

Usage::

    display = WindowDisplay("livecam")
    with VideoRecorder(Path("out.mp4"), fps=30.0, size=(1280, 720)) as recorder:
        while not stop.is_set():
            recorder.write(canvas)
            key = display.show(canvas)
            if key == ord("q") or display.closed_by_user:
                break
    display.close()

A window is only created by the first :meth:`WindowDisplay.show`, and ``show`` is where OpenCV
pumps its GUI events, so call it from one thread only (the main thread with the Qt backend).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, cast

import cv2

from livecam.errors import ConfigError, OutputError
from livecam.frames import Image

log = logging.getLogger(__name__)

NO_KEY = -1
"""What :meth:`Display.show` returns when no key was pressed."""

_FOURCCS_BY_SUFFIX: dict[str, tuple[str, ...]] = {
    ".mp4": ("avc1", "mp4v"),
    ".m4v": ("avc1", "mp4v"),
    ".mov": ("avc1", "mp4v"),
    ".mkv": ("avc1", "mp4v", "MJPG"),
    ".avi": ("MJPG", "XVID"),
}
_DEFAULT_FOURCCS = ("avc1", "mp4v")

# Codecs that failed where a later candidate opened the same path: the build lacks them, so later
# recorders skip them instead of printing FFmpeg's errors again.
_UNAVAILABLE: set[tuple[str, str]] = set()


class Display(Protocol):
    """A sink for drawn frames."""

    def show(self, image: Image) -> int:
        """Show one frame; returns the code of a key pressed meanwhile, or :data:`NO_KEY`."""
        ...

    def set_fullscreen(self, on: bool) -> None:
        """Switch fullscreen on or off (a no-op where there is no screen)."""
        ...

    @property
    def fullscreen(self) -> bool:
        """Whether fullscreen is requested."""
        ...

    @property
    def closed_by_user(self) -> bool:
        """Whether the user closed the window (the live loop should then end)."""
        ...

    def close(self) -> None:
        """Release the window or file; safe to call twice."""
        ...


class HeadlessDisplay:
    """A display with no screen: makes no OpenCV GUI calls at all and never reports a key."""

    def __init__(self) -> None:
        self._fullscreen = False

    def show(self, image: Image) -> int:
        """Discard the frame; returns :data:`NO_KEY`."""
        return NO_KEY

    def set_fullscreen(self, on: bool) -> None:
        """Remember the request; there is nothing to resize."""
        self._fullscreen = on

    @property
    def fullscreen(self) -> bool:
        """Whether fullscreen was requested."""
        return self._fullscreen

    @property
    def closed_by_user(self) -> bool:
        """Always False: there is no window to close."""
        return False

    def close(self) -> None:
        """Nothing to release."""


def letterbox(image: Image, screen_size: tuple[int, int]) -> Image:
    """``image`` padded with black to the screen's aspect ratio, centred.

    The GUI backend would otherwise fill the bars with its own (light grey) window colour.
    """
    screen_w, screen_h = screen_size
    height, width = image.shape[:2]
    if width * screen_h == height * screen_w:
        return image
    if width * screen_h > height * screen_w:  # wider than the screen: bars above and below
        pad = round(width * screen_h / screen_w) - height
        top, bottom, left, right = pad // 2, pad - pad // 2, 0, 0
    else:
        pad = round(height * screen_w / screen_h) - width
        top, bottom, left, right = 0, 0, pad // 2, pad - pad // 2
    return cast(Image, cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(0, 0, 0)))


_X_CONNECT_TIMEOUT_S = 5.0
# Qt platforms that draw without a window system (offscreen, vnc, eglfs, linuxfb, ...) need no X.
_X_PLATFORMS = ("", "xcb")


def require_display(env: Mapping[str, str], hint: str = "") -> None:
    """Fail early, with what to do (and ``hint``, a sentence), when no window can be opened.

    Without this, OpenCV's Qt aborts the whole process (exit 134) on its first window.

    Raises:
        ConfigError: the display cannot be reached.
    """
    problem = display_problem(env)
    if problem is not None:
        message = f"no usable display ({problem}): use --headless, or run under a desktop session"
        raise ConfigError(f"{message}. {hint}" if hint else message)


def display_problem(env: Mapping[str, str], platform: str = sys.platform) -> str | None:
    """Why no window can be opened with ``env``, or None when one can (or X is not how windows open).

    macOS and Windows have no X: nothing is checked. ``QT_QPA_PLATFORM`` naming a platform
    other than X (offscreen, vnc, eglfs) counts as usable when OpenCV's Qt has its plugin (the
    pip wheels carry only xcb), and so does ``WAYLAND_DISPLAY``; otherwise ``DISPLAY`` must name
    an X server that accepts a connection.
    """
    if platform.startswith(("darwin", "win32", "cygwin")):
        return None
    qt_platform = env.get("QT_QPA_PLATFORM", "").split(":", 1)[0].strip().lower()
    if qt_platform:
        present = qt_platforms(env)
        if present is not None and qt_platform not in present:
            return f"QT_QPA_PLATFORM={qt_platform}, a platform OpenCV's Qt does not have; it has {', '.join(present)}"
    if qt_platform.startswith("wayland"):
        return None if env.get("WAYLAND_DISPLAY") else f"QT_QPA_PLATFORM={qt_platform} but WAYLAND_DISPLAY is not set"
    if qt_platform not in _X_PLATFORMS:
        return None
    if not qt_platform and env.get("WAYLAND_DISPLAY"):
        return None
    name = env.get("DISPLAY", "").strip()
    if not name:
        return "DISPLAY is not set"
    if not x_display_opens(name):
        return f"DISPLAY={name} cannot be opened"
    return None


def qt_platforms(env: Mapping[str, str]) -> list[str] | None:
    """The Qt platform plugins OpenCV's own Qt can load, or None when OpenCV bundles no Qt (then unknown)."""
    bundled = Path(cv2.__file__).parent / "qt" / "plugins" / "platforms"
    if not bundled.is_dir():
        return None
    folders = [bundled]
    folders += [Path(p) / "platforms" for p in env.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    folders += [Path(p) for p in env.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if p]
    names = {f.name[len("libq") : -len(".so")] for d in folders if d.is_dir() for f in d.glob("libq*.so")}
    return sorted(names)


def x_display_opens(name: str) -> bool:
    """Whether the X display ``name`` (``:0``, ``host:10.0``) accepts a client, as Qt will need.

    The server's socket must accept a connection; with libX11 present, ``XOpenDisplay`` must
    also succeed (it checks the authorization), on a thread given a bounded time.
    """
    host, sep, rest = name.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit():
        return False
    if host.startswith("/"):  # a launchd-style socket path (XQuartz); Xlib knows it
        reachable = True
    elif host in ("", "unix"):
        reachable = _unix_socket_accepts(f"/tmp/.X11-unix/X{number}")
    else:
        reachable = _tcp_accepts(host, 6000 + int(number))
    return reachable and _xlib_opens(name) is not False


def _unix_socket_accepts(path: str) -> bool:
    # Linux X servers also listen on an abstract socket of the same name, which survives a
    # container that does not share /tmp.
    for address in ("\0" + path, path) if sys.platform.startswith("linux") else (path,):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(_X_CONNECT_TIMEOUT_S)
            try:
                sock.connect(address)
            except OSError:
                continue
            return True
    return False


def _tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=_X_CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False


def _xlib_opens(name: str) -> bool | None:
    """``XOpenDisplay``'s verdict, or None when libX11 cannot be loaded (then the socket decides)."""
    library = ctypes.util.find_library("X11") or "libX11.so.6"
    try:
        x11 = ctypes.CDLL(library)
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    opened: list[bool] = []

    def attempt() -> None:
        connection = x11.XOpenDisplay(name.encode())
        opened.append(bool(connection))
        if connection:
            x11.XCloseDisplay(connection)

    # A server that accepts but never answers would hold XOpenDisplay (and Qt) forever.
    thread = threading.Thread(target=attempt, name="livecam-x-check", daemon=True)
    thread.start()
    thread.join(_X_CONNECT_TIMEOUT_S)
    return bool(opened and opened[0])


class WindowDisplay:
    """An OpenCV window, created on the first :meth:`show`.

    Args:
        title: window title, also OpenCV's name for the window.
        fullscreen: start fullscreen.
        recreate_on_close: when the user closes the window, open it again on the next frame
            (for a kiosk) instead of reporting :attr:`closed_by_user`.
        screen_size: (width, height) of the screen. When given, fullscreen also moves the window
            to the origin and resizes it to the screen, which is what makes fullscreen work on a
            bare X server with no window manager (a kiosk started with ``xinit``).
    """

    def __init__(
        self,
        title: str = "livecam",
        fullscreen: bool = False,
        *,
        recreate_on_close: bool = False,
        screen_size: tuple[int, int] | None = None,
    ) -> None:
        self._title = title
        self._fullscreen = fullscreen
        self._recreate_on_close = recreate_on_close
        self._screen_size = screen_size
        self._created = False
        self._closed_by_user = False
        self._image_size: tuple[int, int] | None = None

    @property
    def title(self) -> str:
        """The window's title."""
        return self._title

    @property
    def fullscreen(self) -> bool:
        """Whether fullscreen is requested."""
        return self._fullscreen

    @property
    def closed_by_user(self) -> bool:
        """Whether the user closed the window (never True with ``recreate_on_close``)."""
        return self._closed_by_user

    def show(self, image: Image) -> int:
        """Show ``image`` and pump GUI events for 1 ms.

        Returns:
            The key code pressed, or :data:`NO_KEY`. After the user closed the window (and
            ``recreate_on_close`` is off) nothing is shown and :data:`NO_KEY` is returned.
        """
        if self._closed_by_user:
            return NO_KEY
        if self._created and not self._window_visible():
            self._created = False
            if not self._recreate_on_close:
                self._closed_by_user = True
                log.info("window %r was closed", self._title)
                return NO_KEY
            log.info("window %r was closed; opening it again", self._title)
        if not self._created:
            self._create(image.shape[1], image.shape[0])
        if self._fullscreen and self._screen_size is not None:
            image = letterbox(image, self._screen_size)
        cv2.imshow(self._title, image)
        return int(cv2.waitKey(1))

    def set_fullscreen(self, on: bool) -> None:
        """Switch fullscreen on or off; applied now if the window exists, else at creation."""
        self._fullscreen = on
        if self._created:
            self._apply_fullscreen()

    def close(self) -> None:
        """Destroy the window if it is open; safe to call twice."""
        if not self._created:
            return
        self._created = False
        try:
            cv2.destroyWindow(self._title)
            cv2.waitKey(1)  # lets the GUI backend process the destruction
        except cv2.error as exc:
            log.debug("window %r was already gone: %s", self._title, exc)

    def _create(self, width: int, height: int) -> None:
        flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
        cv2.namedWindow(self._title, flags)
        cv2.resizeWindow(self._title, width, height)
        self._image_size = (width, height)
        self._created = True
        if self._fullscreen:
            self._apply_fullscreen()

    def _apply_fullscreen(self) -> None:
        mode = cv2.WINDOW_FULLSCREEN if self._fullscreen else cv2.WINDOW_NORMAL
        cv2.setWindowProperty(self._title, cv2.WND_PROP_FULLSCREEN, mode)
        if self._screen_size is None:
            return
        if self._fullscreen:
            cv2.moveWindow(self._title, 0, 0)
            cv2.resizeWindow(self._title, *self._screen_size)
        elif self._image_size is not None:
            cv2.resizeWindow(self._title, *self._image_size)

    def _window_visible(self) -> bool:
        try:
            return float(cv2.getWindowProperty(self._title, cv2.WND_PROP_VISIBLE)) >= 1
        except cv2.error:
            # The Qt backend raises instead of answering once its last window is gone.
            return False


class VideoRecorder:
    """Writes frames to a video file; a context manager.

    The codec is chosen from the file's extension: for ``.mp4`` H.264 (``avc1``) when this
    OpenCV build can encode it, else MPEG-4 Part 2 (``mp4v``); for ``.avi`` Motion JPEG.

    Args:
        path: the file to write (overwritten).
        fps: frame rate stored in the file.
        size: (width, height) of the video; frames of another size are resized.
        fourccs: codecs to try in order, overriding the choice by extension.

    Raises:
        ConfigError: fps or size is not positive.
        OutputError: no codec could open the file (e.g. its directory does not exist).
    """

    def __init__(
        self, path: Path | str, fps: float, size: tuple[int, int], fourccs: Sequence[str] | None = None
    ) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.size = (int(size[0]), int(size[1]))
        if self.fps <= 0 or self.size[0] <= 0 or self.size[1] <= 0:
            raise ConfigError(f"cannot record {self.path}: fps and size must be positive, got fps={fps} size={size}")
        candidates = tuple(fourccs) if fourccs else _FOURCCS_BY_SUFFIX.get(self.path.suffix.lower(), _DEFAULT_FOURCCS)
        self._writer, self.codec = self._open(candidates)
        self.frames_written = 0
        self._closed = False

    def _open(self, candidates: Sequence[str]) -> tuple[cv2.VideoWriter, str]:
        suffix = self.path.suffix.lower()
        failed: list[str] = []
        for fourcc in candidates:
            if (fourcc, suffix) in _UNAVAILABLE:
                continue
            with _quiet_opencv():
                writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter.fourcc(*fourcc), self.fps, self.size)
            if writer.isOpened():
                _UNAVAILABLE.update((name, suffix) for name in failed)
                if failed:
                    log.debug("%s: codecs %s unavailable, using %s", self.path, failed, fourcc)
                return writer, fourcc
            writer.release()
            failed.append(fourcc)
        where = self.path.parent
        hint = (
            f"the directory {where} does not exist"
            if not where.is_dir()
            else "check that the directory is writable and the extension is .mp4 or .avi"
        )
        raise OutputError(f"cannot write video {self.path} with codecs {', '.join(candidates)}: {hint}")

    def write(self, image: Image) -> None:
        """Append one frame, resized to :attr:`size` if needed.

        Raises:
            OutputError: the recorder was closed.
        """
        if self._closed:
            raise OutputError(f"recorder for {self.path} is closed; open a new VideoRecorder")
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)  # type: ignore[assignment]
        self._writer.write(image)
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file so players can read it; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._writer.release()

    def __enter__(self) -> VideoRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def save_snapshot(
    image: Image, directory: Path, now: Callable[[], datetime] = datetime.now, prefix: str = "livecam"
) -> Path:
    """Write ``image`` as a PNG named by the time, e.g. ``livecam-20240131-142501-123.png``.

    Args:
        image: the frame to save.
        directory: where to save; created if missing.
        now: wall clock giving the timestamp (injectable for tests).
        prefix: start of the file name.

    Returns:
        The path written; a numeric suffix avoids overwriting an earlier snapshot.

    Raises:
        OutputError: the directory cannot be created or the file cannot be written.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create snapshot directory {directory}: {exc.strerror}") from exc
    stamp = now()
    stem = f"{prefix}-{stamp:%Y%m%d-%H%M%S}-{stamp.microsecond // 1000:03d}"
    path = directory / f"{stem}.png"
    n = 1
    while path.exists():
        path = directory / f"{stem}-{n}.png"
        n += 1
    if not cv2.imwrite(str(path), image):
        raise OutputError(f"cannot write snapshot {path}: check the directory is writable")
    return path


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own error log while probing codecs (FFmpeg's log is set by the CLI)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)
