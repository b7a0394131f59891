"""Test helpers for a private Xvfb X server: start it, screenshot it, close its windows."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import select
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 10.0


@contextmanager
def running_xvfb(width: int = 1280, height: int = 720) -> Iterator[str]:
    """Run ``Xvfb`` on a free display number and yield its name (":N"); stop it afterwards.

    Xvfb picks the number itself (``-displayfd``) and writes it once it accepts connections,
    so there is no race over display numbers and nothing to poll.

    Raises:
        FileNotFoundError: Xvfb is not installed.
        TimeoutError: Xvfb did not start in time.
    """
    binary = shutil.which("Xvfb")
    if binary is None:
        raise FileNotFoundError("Xvfb is not installed (apt-get install xvfb)")
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], START_TIMEOUT_S)
        number = os.read(read_fd, 16).decode().strip() if ready else ""
        if not number.isdigit():
            raise TimeoutError(f"Xvfb did not report a display within {START_TIMEOUT_S} s")
        socket = Path(f"/tmp/.X11-unix/X{number}")
        if not socket.exists():
            raise TimeoutError(f"Xvfb reported display :{number} but {socket} is missing")
        yield f":{number}"
    finally:
        os.close(read_fd)
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()


def screenshot(display: str, path: Path) -> Path:
    """Save the whole screen of ``display`` to ``path`` with ImageMagick's ``import``."""
    subprocess.run(
        ["import", "-display", display, "-window", "root", str(path)], check=True, timeout=30, capture_output=True
    )
    return path


def window_id(display: str, title: str) -> int | None:
    """The X id of the top-level window named ``title``, or None when there is none."""
    out = subprocess.run(["xwininfo", "-display", display, "-name", title], capture_output=True, text=True, timeout=30)
    match = re.search(r"Window id: (0x[0-9a-f]+)", out.stdout)
    return int(match.group(1), 16) if match else None


class _ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", ctypes.c_ulong),
        ("message_type", ctypes.c_ulong),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _ClientMessage), ("pad", ctypes.c_long * 24)]


def close_window(display: str, window: int) -> None:
    """Ask ``window`` to close as a window manager does when the user clicks its close button.

    Sends the ICCCM ``WM_DELETE_WINDOW`` client message through libX11.
    """
    name = ctypes.util.find_library("X11")
    if name is None:
        raise FileNotFoundError("libX11 is not installed")
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(display.encode())
    if not connection:
        raise ConnectionError(f"cannot connect to X display {display}")
    try:
        event = _XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window
        event.xclient.message_type = x11.XInternAtom(connection, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
        event.xclient.data[1] = 0  # CurrentTime
        x11.XSendEvent(connection, window, 0, 0, ctypes.byref(event))
        x11.XFlush(connection)
    finally:
        x11.XCloseDisplay(connection)
