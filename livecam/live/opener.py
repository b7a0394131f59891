"""Opening a camera's source off the display thread, again and again until it opens.

One of several cameras may be unreachable when the run starts, or stop and need a fresh source
(the kiosk's per-camera watchdog). A network open can take the whole open timeout, and the display
loop must not wait for it: the other cameras would freeze. :class:`Reopening` makes one attempt at a
time on its own thread, waits a backoff between failures, and tells the display loop, which polls
it on every picture, once the source is open.

    reopening = Reopening(source, camera.status, name="camera 3", clock=time.monotonic)
    ...
    info = reopening.poll(now)     # None until an attempt succeeded
    reopening.cancel()             # at close: a late success closes the source it opened
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from livecam.backoff import Backoff
from livecam.errors import SourceError
from livecam.live.status import StatusBoard
from livecam.sanitize import for_log
from livecam.sources import SourceInfo, VideoSource
from livecam.workers import Worker

log = logging.getLogger(__name__)

STATUS_KEY = "open"
"""The status line of a camera whose source is being opened."""
RETRY_INITIAL_S, RETRY_MAX_S = 1.0, 5.0


class _Attempt:
    """One ``open()`` on its own thread."""

    def __init__(self, source: VideoSource, name: str) -> None:
        self.source = source
        self.info: SourceInfo | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._worker = Worker(self._open, f"open {name}", failure=f"opening {name} failed")
        self._worker.start()

    def _open(self) -> None:
        try:
            info = self.source.open()
        except SourceError as exc:
            self.error = str(exc)
            return
        with self._lock:
            if self._cancelled:
                self.source.close()
                return
            self.info = info

    @property
    def done(self) -> bool:
        return not self._worker.is_alive()

    def failure(self) -> str:
        """Why it did not open (once done without info)."""
        if self.error is not None:
            return self.error
        return f"{type(self._worker.error).__name__}: {self._worker.error}" if self._worker.error else "cancelled"

    def cancel(self) -> None:
        """Close the source if the attempt succeeds from now on (or already did)."""
        with self._lock:
            self._cancelled = True
            if self.info is not None:
                self.source.close()
                self.info = None

    def join(self, timeout: float) -> bool:
        return self._worker.join(timeout)


class Reopening:
    """Opens ``source`` in the background until it opens, showing why it cannot meanwhile.

    Args:
        source: an unopened source.
        status: the camera's status board; its ``video`` line says what is happening.
        name: the camera, for thread names and the log ("camera 3").
        clock: monotonic seconds.
        backoff: delays between failed attempts.
        failed: why an attempt made before (already logged) failed; the next waits a backoff delay.
    """

    def __init__(
        self,
        source: VideoSource,
        status: StatusBoard,
        *,
        name: str,
        clock: Callable[[], float],
        backoff: Backoff | None = None,
        failed: str | None = None,
    ) -> None:
        self.source = source
        self._status = status
        self._name = name
        self._clock = clock
        self._backoff = backoff or Backoff(initial=RETRY_INITIAL_S, maximum=RETRY_MAX_S)
        self._attempt: _Attempt | None = None
        self._next_at = clock()
        self._last_error: str | None = None
        self.attempts = 0
        self._done = False
        """Opened, or given up: no more attempts."""
        if failed is not None:
            self.attempts = 1
            self._last_error = failed
            self._wait_after_failure(clock())

    def poll(self, now: float) -> SourceInfo | None:
        """Start an attempt when one is due; the source's info once an attempt opened it (once)."""
        if self._done:
            return None
        attempt = self._attempt
        if attempt is None:
            if now >= self._next_at:
                self.attempts += 1
                self._status.set(STATUS_KEY, "Opening the source")
                self._attempt = _Attempt(self.source, self._name)
            return None
        if not attempt.done:
            return None
        self._attempt = None
        if attempt.info is not None:
            self._done = True
            self._backoff.reset()
            self._status.set(STATUS_KEY, None)
            log.info("%s opened after %d attempts", self._name, self.attempts)
            return attempt.info
        reason = attempt.failure()
        level = logging.INFO if reason == self._last_error else logging.WARNING
        self._last_error = reason
        log.log(level, "%s cannot be opened (attempt %d): %s", self._name, self.attempts, for_log(reason))
        self._wait_after_failure(now)
        return None

    def _wait_after_failure(self, now: float) -> None:
        delay = self._backoff.next_delay()
        self._next_at = now + delay
        self._status.set(STATUS_KEY, f"Cannot open the source - retrying in {delay:.0f} s")

    def settle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the attempt under way (if any) to end; False if it has not."""
        attempt = self._attempt
        return attempt is None or attempt.join(timeout)

    def cancel(self, timeout: float) -> bool:
        """Stop trying; an attempt under way closes what it opens. False if it is still blocked after ``timeout``."""
        attempt, self._attempt = self._attempt, None
        self._done = True
        self._status.set(STATUS_KEY, None)
        if attempt is None:
            return True
        attempt.cancel()
        return attempt.join(timeout)
