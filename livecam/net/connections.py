"""Open connections: whole-request read deadlines, and room for new clients when the cap is reached.

A thread per connection is only safe against slow clients if no client can hold its thread
forever. Every read phase (request line and headers, then the body) has a deadline for the
phase as a whole, not per read, so dripping a byte at a time does not extend it. When every
connection slot is taken, the connection that has waited longest for its client to send
(an idle keep-alive connection or a slow sender) is closed to admit the new one; only
connections whose request is being answered are never closed to make room.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

log = logging.getLogger(__name__)


class Connection:
    """One client connection and the deadline of what the server is waiting to read from it.

    Args:
        sock: the client socket.
        stall_s: the longest any single read or write may block.
        clock: monotonic seconds.
        lock: the lock of the :class:`ConnectionTable` holding this connection.
    """

    def __init__(self, sock: socket.socket, stall_s: float, clock: Callable[[], float], lock: threading.Lock) -> None:
        self.sock = sock
        self._stall_s = stall_s
        self._clock = clock
        self._lock = lock
        self.since = clock()
        self._deadline = math.inf
        self.answering = False
        self.evicted = False

    def expect(self, seconds: float) -> None:
        """Start a read phase (headers or body) that must be complete within ``seconds``."""
        with self._lock:
            self.since = self._clock()
            self._deadline = self.since + seconds
            self.answering = False

    def answer(self) -> bool:
        """Mark the request as read and being answered; False when the connection was closed for room."""
        with self._lock:
            if self.evicted:
                return False
            self.answering = True
            self._deadline = math.inf
            return True

    def read_timeout(self) -> float:
        """The socket timeout for the next read.

        Raises:
            TimeoutError: the phase's deadline has passed, or the connection was closed for room.
        """
        if self.evicted:
            raise TimeoutError("the connection was closed to make room for a new client")
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise TimeoutError("the client did not send its request in time")
        return min(remaining, self._stall_s)

    def write_timeout(self) -> float:
        """The socket timeout for the next write."""
        return self._stall_s


class ConnectionTable:
    """At most ``limit`` connections; at the cap, the longest-waiting unanswered one makes room.

    Args:
        limit: open connections allowed.
        stall_s: the longest any single read or write may block.
        clock: monotonic seconds.
    """

    def __init__(self, limit: int, stall_s: float, clock: Callable[[], float]) -> None:
        self._limit = limit
        self._stall_s = stall_s
        self._clock = clock
        self._lock = threading.Lock()
        self._open: dict[socket.socket, Connection] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def open(self, sock: socket.socket) -> Connection | None:
        """Register ``sock``, closing the longest-waiting unanswered connection if every slot is taken.

        Returns:
            The new connection, or None when every slot holds a request being answered.
        """
        with self._lock:
            victim = None
            if len(self._open) >= self._limit:
                waiting = [c for c in self._open.values() if not c.answering]
                if not waiting:
                    return None
                victim = min(waiting, key=lambda c: c.since)
                victim.evicted = True
                del self._open[victim.sock]
            connection = Connection(sock, self._stall_s, self._clock, self._lock)
            self._open[sock] = connection
        if victim is not None:
            _wake(victim.sock)
        return connection

    def find(self, sock: socket.socket) -> Connection:
        """The connection registered for ``sock``; a closed-for-room one if it is already gone."""
        with self._lock:
            found = self._open.get(sock)
        if found is None:
            found = Connection(sock, self._stall_s, self._clock, self._lock)
            found.evicted = True
        return found

    def close(self, sock: socket.socket) -> None:
        """Forget ``sock`` (its handler has finished)."""
        with self._lock:
            self._open.pop(sock, None)


def send_busy(sock: socket.socket, reply: bytes) -> None:
    """Answer a connection that cannot be admitted with ``reply`` (a whole 503 response).

    The caller then closes it (``shutdown_request``); a client already gone is only logged.
    """
    try:
        sock.sendall(reply)
    except OSError as exc:
        log.debug("could not refuse a connection: %s", exc)


def _wake(sock: socket.socket) -> None:
    """End the connection's blocked read (its thread then sees it was closed for room and exits)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:
        log.debug("connection already closed: %s", exc)


class DeadlineReader(io.RawIOBase):
    """Socket reads bounded by the connection's phase deadline (buffer it with ``io.BufferedReader``)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        self._connection.sock.settimeout(self._connection.read_timeout())
        count = self._connection.sock.recv_into(buffer)
        if self._connection.evicted:
            raise TimeoutError("the connection was closed to make room for a new client")
        return count


class DeadlineWriter(io.BufferedIOBase):
    """Unbuffered socket writes, each bounded by the connection's stall timeout."""

    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self._connection = connection
        self._held: list[bytes] | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        if self._held is not None:
            self._held.append(bytes(view))
            return view.nbytes
        self._connection.sock.settimeout(self._connection.write_timeout())
        self._connection.sock.sendall(view)
        return view.nbytes

    @contextlib.contextmanager
    def corked(self) -> Iterator[None]:
        """Hold every write of the ``with`` body and send them together at its end."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
        self.write(b"".join(held))
