"""A call's limits, enforced at the socket: a total deadline, an idle timeout and the stop event.

urllib3's read timeout bounds each socket read, so a server that drips one byte every few
seconds holds a call for ever. :class:`GuardedSocket` (the socket of every connection a
:func:`~livecam.http.session.new_session` session opens) waits for each read and write itself,
for no longer than what is left of the call in progress on this thread (:func:`limited`), and
gives up with :class:`DeadlinePassed` or :class:`Stopped`. Outside a limited call it is a plain
socket.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from urllib3.util.wait import wait_for_read, wait_for_write

STOP_CHECK_S = 0.2
"""The longest one socket wait lasts while a stop event is watched: a socket cannot wait on a
``threading.Event``, so the wait is cut into slices that each look at it."""
_SEND_BYTES = 1 << 16


class DeadlinePassed(Exception):  # noqa: N818 - a signal between layers, not an error users see
    """The call ran out of time (``idle``: no byte moved for the idle timeout)."""

    def __init__(self, idle: bool) -> None:
        super().__init__("idle timeout" if idle else "deadline")
        self.idle = idle


class Stopped(Exception):  # noqa: N818 - a signal between layers, not an error users see
    """The stop event was set during the call."""


@dataclass(frozen=True)
class CallLimits:
    """What bounds one call.

    Attributes:
        deadline: the ``clock`` value by which the whole call must be over.
        idle: the most seconds one read or write may wait for the peer.
        stop: the run's stop event, or None.
        clock: seconds, monotonic.
    """

    deadline: float
    idle: float
    stop: threading.Event | None = None
    clock: Callable[[], float] = time.monotonic

    def wait_time(self, idle_until: float) -> float:
        """How long the next socket wait may last.

        Raises:
            Stopped: the stop event is set.
            DeadlinePassed: the call or this read/write is out of time.
        """
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        now = self.clock()
        if now >= self.deadline:
            raise DeadlinePassed(idle=False)
        if now >= idle_until:
            raise DeadlinePassed(idle=True)
        wait = min(self.deadline, idle_until) - now
        return wait if self.stop is None else min(wait, STOP_CHECK_S)


_active = threading.local()


@contextmanager
def limited(limits: CallLimits) -> Iterator[None]:
    """Every socket wait of this thread inside the block obeys ``limits``."""
    previous = getattr(_active, "limits", None)
    _active.limits = limits
    try:
        yield
    finally:
        _active.limits = previous


def _current() -> CallLimits | None:
    limits: CallLimits | None = getattr(_active, "limits", None)
    return limits


def _wait(sock: socket.socket, limits: CallLimits, *, write: bool) -> None:
    """Return once ``sock`` can be read (or written) without blocking, within ``limits``."""
    if not write and _pending(sock):
        return
    idle_until = limits.clock() + limits.idle
    while True:
        timeout = limits.wait_time(idle_until)
        ready = wait_for_write(sock, timeout) if write else wait_for_read(sock, timeout)
        if ready:
            return


def _pending(sock: socket.socket) -> bool:
    """Whether a TLS socket holds decrypted bytes that no socket wait would see."""
    pending = getattr(sock, "pending", None)
    return callable(pending) and bool(pending())


class GuardedSocket:
    """A connected socket whose reads and writes obey the limits of the call in progress."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        limits = _current()
        if limits is None:
            self._sock.sendall(data)
            return
        view = memoryview(data).cast("B")
        while view:
            _wait(self._sock, limits, write=True)
            sent = self._sock.send(view[:_SEND_BYTES])
            view = view[sent:]

    def makefile(self, mode: str = "r", buffering: int | None = None, **kwargs: Any) -> Any:
        if mode != "rb":
            return self._sock.makefile(mode, buffering, **kwargs)  # type: ignore[call-overload]
        raw = self._sock.makefile("rb", buffering=0)
        return io.BufferedReader(_GuardedReader(self._sock, raw), buffering or io.DEFAULT_BUFFER_SIZE)


class _GuardedReader(io.RawIOBase):
    """The socket's own reader, each read waited for within the call's limits."""

    def __init__(self, sock: socket.socket, raw: socket.SocketIO) -> None:
        super().__init__()
        self._sock = sock
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        limits = _current()
        if limits is not None:
            _wait(self._sock, limits, write=False)
        return self._raw.readinto(buffer)

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._raw.close()  # gives the socket back: the connection closes it when it is done
        super().close()
