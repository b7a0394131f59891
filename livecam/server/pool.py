"""Bounded model execution: admission of requests, decoded pixels in flight, and a fixed set of detectors to borrow."""

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


class PixelBudget:
    """At most ``limit`` decoded pixels held by all requests together; a request that would go over is turned away.

    Each request's image is bounded on its own, but many small files declaring huge images,
    decoded at once, are not; this bounds them together.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        """Pixels reserved now."""
        with self._lock:
            return self._used

    @contextmanager
    def reserved(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget for the ``with`` body.

        Raises:
            HttpError: 503 with Retry-After when the budget cannot hold them now.
        """
        with self._lock:
            if self._used + pixels > self._limit:
                raise busy("the server is decoding too many large images - retry request")
            self._used += pixels
        try:
            yield
        finally:
            with self._lock:
                self._used -= pixels


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
