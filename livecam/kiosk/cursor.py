"""Hide the mouse pointer on an X11 screen for as long as the kiosk runs.

OpenCV's window API cannot hide the pointer, but the X server's XFIXES extension can: the pointer
stays hidden over the whole screen while this client's connection is open. Where there is no
X11 (Wayland without XWayland, macOS, Windows) or no libXfixes, nothing happens and the kiosk
says so once; ``unclutter`` does the same job from outside.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from types import TracebackType

log = logging.getLogger(__name__)


class HiddenCursor:
    """A context manager that hides the pointer on the X display ``display`` (None: $DISPLAY).

    Attributes:
        hidden: whether the pointer was hidden.
    """

    def __init__(self, display: str | None = None) -> None:
        self._display_name = display
        self._x11: ctypes.CDLL | None = None
        self._xfixes: ctypes.CDLL | None = None
        self._connection: int | None = None
        self._root = 0
        self.hidden = False

    def __enter__(self) -> HiddenCursor:
        x11_name, xfixes_name = ctypes.util.find_library("X11"), ctypes.util.find_library("Xfixes")
        if x11_name is None or xfixes_name is None:
            log.info("mouse pointer left visible: libX11/libXfixes not found (try unclutter)")
            return self
        try:
            x11, xfixes = ctypes.CDLL(x11_name), ctypes.CDLL(xfixes_name)
        except OSError as exc:
            log.info("mouse pointer left visible: %s (try unclutter)", exc)
            return self
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x11.XFlush.argtypes = [ctypes.c_void_p]
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        xfixes.XFixesHideCursor.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        xfixes.XFixesShowCursor.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        connection = x11.XOpenDisplay(self._display_name.encode() if self._display_name else None)
        if not connection:
            log.info("mouse pointer left visible: no X display to talk to")
            return self
        self._x11, self._xfixes, self._connection = x11, xfixes, connection
        self._root = x11.XDefaultRootWindow(connection)
        xfixes.XFixesHideCursor(connection, self._root)
        x11.XFlush(connection)
        self.hidden = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._connection is None or self._x11 is None or self._xfixes is None:
            return
        self._xfixes.XFixesShowCursor(self._connection, self._root)
        self._x11.XFlush(self._connection)
        self._x11.XCloseDisplay(self._connection)
        self._connection = None
        self.hidden = False
