"""Bounded model execution: admission of requests, budgets of what all requests hold, and detectors to borrow."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from livecam.detector import Detector
from livecam.server.errors import HttpError

RETRY_AFTER_S = 1


def busy(message: str) -> HttpError:
    """A 503 asking the client to retry shortly."""
    return HttpError(503, message, {"Retry-After": str(RETRY_AFTER_S)})


class Admission:
    """At most ``limit`` requests inside at once; the rest are turned away at the door, never queued."""

    def __init__(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold one slot for the ``with`` body.

        Raises:
            HttpError: 503 with Retry-After when every slot is taken.
        """
        if not self._slots.acquire(blocking=False):
            raise busy("the server is busy - retry request")
        try:
            yield
        finally:
            self._slots.release()


class Budget:
    """At most ``limit`` units (decoded pixels, body bytes) held by all requests together.

    Each request is bounded on its own, but many requests at once are not; this bounds them
    together. A request that would go over is turned away with 503, never queued.

    Args:
        limit: the units all requests may hold at once.
        busy_message: the 503 answer's message.
    """

    def __init__(self, limit: int, busy_message: str) -> None:
        self._limit = limit
        self._busy_message = busy_message
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Units held now."""
        with self._lock:
            return self._used

    def try_reserve(self, amount: int) -> bool:
        """Hold ``amount`` if the budget has room now; give it back with :meth:`release`."""
        with self._lock:
            if self._used + amount > self._limit:
                return False
            self._used += amount
            return True

    def release(self, amount: int) -> None:
        """Give back what :meth:`try_reserve` held."""
        with self._lock:
            self._used -= amount

    def busy(self) -> HttpError:
        """The 503 for a request the budget has no room for."""
        return busy(self._busy_message)

    @contextmanager
    def reserved(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` for the ``with`` body.

        Raises:
            HttpError: 503 with Retry-After when the budget has no room now.
        """
        if not self.try_reserve(amount):
            raise self.busy()
        try:
            yield
        finally:
            self.release(amount)


class DetectorPool:
    """``workers`` detectors, one per concurrent inference; callers borrow one while they run it.

    Detectors are built lazily on first borrow so a slow model load never blocks startup.
    """

    def __init__(
        self, factory: Callable[[], Detector], workers: int, stop: threading.Event, wait_s: float = 30.0
    ) -> None:
        self._factory = factory
        self._idle: queue.Queue[Detector | None] = queue.Queue(maxsize=workers)
        for _ in range(workers):
            self._idle.put(None)
        self._stop = stop
        self._wait_s = wait_s

    def warm(self) -> tuple[int, int]:
        """Build one detector now (so model errors surface at startup); its input (width, height)."""
        detector = self._idle.get(timeout=self._wait_s)
        try:
            detector = detector or self._factory()
            return detector.input_size
        finally:
            self._idle.put(detector)

    @contextmanager
    def borrowed(self) -> Iterator[Detector]:
        """A detector for the ``with`` body, waiting (bounded) for one to come free.

        Raises:
            HttpError: 503 when none came free in time or the server is stopping.
        """
        try:
            slot = self._idle.get(timeout=self._wait_s)
        except queue.Empty as exc:
            raise busy("every model worker stayed busy - retry request") from exc
        detector = slot
        try:
            if self._stop.is_set():
                raise busy("the server is shutting down - retry request")
            if detector is None:
                detector = self._factory()
            yield detector
        finally:
            self._idle.put(detector)
