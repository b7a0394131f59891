"""The capture thread: reads a source into a LatestSlot, paces files, reconnects live sources.

Usage::

    info = source.open()                      # SourceError here, before any thread starts
    capture = CaptureThread(source, frames, stop, status)
    capture.start()
    ...
    stop.set()
    capture.join(timeout=2.0)                 # False (and a warning) if a read is still stuck

Rules:

- Frames are published as ``Frame(seq, image, captured_at=clock(), index)`` with ``seq`` 0, 1, 2, ...
  continuous across reconnects, and ``index`` the frame's place in the source (reads, counting
  corrupt frames that are skipped). Images that are not BGR uint8 are skipped and counted.
- Pacing: when the source's ``read`` returns at once (``SourceInfo.paced``: files and synthetic
  sources) reads are spaced on the schedule ``t0 + n / fps``, so a file plays at its own rate
  like a camera; when the thread falls more than a frame behind it re-anchors instead of
  bursting. Cameras and streams block in ``read`` and are not paced.
- End: a failed read of a non-live source, or ``max_frames`` frames, ends the thread: it sets
  ``ended`` and closes the slot so consumers finish cleanly. The slot is also closed when the
  thread stops for any other reason.
- Dropout: a failed read of a live source sets status ``source`` to "Camera disconnected -
  retrying in X s" ("Stream ..." for streams), closes the source and reopens it with backoff;
  the status is cleared by the next good frame.
- The thread owns the source once started and closes it when it ends; callers must not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from livecam.backoff import Backoff
from livecam.errors import SourceError
from livecam.frames import Frame, Image
from livecam.live.slot import LatestSlot
from livecam.live.status import StatusBoard
from livecam.ratemeter import RateMeter
from livecam.sources import SourceInfo, VideoSource

log = logging.getLogger(__name__)

STATUS_KEY = "source"
"""The StatusBoard key the capture thread writes."""


@dataclass(frozen=True)
class CaptureStats:
    """A snapshot of the capture counters.

    Attributes:
        frames_captured: frames published to the slot.
        reconnects: successful reopens after a dropout.
        read_failures: reads of a live source that returned nothing or raised.
        corrupt_frames: images skipped for a wrong shape or dtype.
        dropped: frames overwritten in the slot before a consumer took them.
        source_fps: frames captured per second over the last ~2 s.
    """

    frames_captured: int
    reconnects: int
    read_failures: int
    corrupt_frames: int
    dropped: int
    source_fps: float


class _Pacer:
    """Spaces reads at ``1 / fps`` on a fixed schedule, re-anchoring when behind."""

    def __init__(self, fps: float, clock: Callable[[], float]) -> None:
        self._period = 1.0 / fps
        self._clock = clock
        self._t0: float | None = None
        self._n = 0

    def wait(self, stop: threading.Event) -> bool:
        """Wait for the next slot; False if ``stop`` was set meanwhile."""
        now = self._clock()
        if self._t0 is None:
            self._t0, self._n = now, 0
        due = self._t0 + self._n * self._period
        if now - due > self._period:
            self._t0, self._n, due = now, 0, now
        self._n += 1
        delay = due - now
        return delay <= 0 or not stop.wait(delay)

    def restart(self) -> None:
        self._t0 = None


def is_valid_image(image: object) -> bool:
    """True for a non-empty ``(h, w, 3)`` uint8 array."""
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and image.shape[0] > 0
        and image.shape[1] > 0
    )


class CaptureThread:
    """Reads an opened source into ``slot`` until it ends or ``stop`` is set.

    Args:
        source: an already opened source (``source.open()`` returned).
        slot: where frames go; closed when the thread ends.
        stop: set it to make the thread exit; every wait in the thread watches it.
        status: receives and clears the ``source`` status line.
        clock: monotonic seconds, for ``captured_at`` and pacing.
        pace: force pacing on or off; None follows ``SourceInfo.paced``.
        backoff: reconnect delays (default 0.5 s doubling to 10 s).
        max_frames: end after publishing this many frames.
    """

    def __init__(
        self,
        source: VideoSource,
        slot: LatestSlot[Frame],
        stop: threading.Event,
        status: StatusBoard,
        *,
        clock: Callable[[], float] = time.monotonic,
        pace: bool | None = None,
        backoff: Backoff | None = None,
        max_frames: int | None = None,
    ) -> None:
        self._source = source
        self._slot = slot
        self._stop = stop
        self._status = status
        self._clock = clock
        self._pace = pace
        self._backoff = backoff or Backoff(initial=0.5, maximum=10.0)
        self._max_frames = max_frames
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._meter = RateMeter()
        self._seq = 0
        self._index = 0
        self.ended = threading.Event()
        """Set when the source ended by itself (end of file, ``max_frames``), not on stop."""
        self.error: BaseException | None = None
        """An unexpected exception that killed the thread, if any."""
        self.frames_captured = 0
        self.reconnects = 0
        self.read_failures = 0
        self.corrupt_frames = 0

    def start(self) -> None:
        """Start reading.

        Raises:
            SourceError: the source was not opened first.
        """
        if self._source.info is None:
            raise SourceError("the source is not open; call source.open() before starting capture")
        self._thread.start()

    def join(self, timeout: float = 2.0) -> bool:
        """Wait up to ``timeout`` s for the thread; False (with a warning) if it is still running.

        Set ``stop`` first. A thread still blocked in a source read is a daemon and is left behind.
        Returns True at once if the thread was never started.
        """
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "capture thread did not stop within %.1f s (a source read is blocked); leaving it behind", timeout
            )
            return False
        return True

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def dropped(self) -> int:
        """Frames overwritten in the slot before anyone took them."""
        return self._slot.dropped

    def source_fps(self, now: float | None = None) -> float:
        """Captured frames per second over the last ~2 s."""
        return self._meter.rate(self._clock() if now is None else now)

    def stats(self) -> CaptureStats:
        """A snapshot of the counters."""
        return CaptureStats(
            self.frames_captured,
            self.reconnects,
            self.read_failures,
            self.corrupt_frames,
            self.dropped,
            self.source_fps(),
        )

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # recorded so the pipeline can report why capture ended
            self.error = exc
            log.exception("capture from %s failed", self._name())
        finally:
            self._source.close()
            self._slot.close()

    def _loop(self) -> None:
        info = self._current_info()
        pacer = _Pacer(info.fps, self._clock) if self._should_pace(info) else None
        recovering = False
        while not self._stop.is_set():
            if pacer is not None and not pacer.wait(self._stop):
                return
            image = self._read()
            if self._stop.is_set():
                return
            if image is None:
                if not info.live:
                    log.info("%s ended after %d frames", info.name, self.frames_captured)
                    self.ended.set()
                    return
                self.read_failures += 1
                if not self._reconnect(info):
                    return
                info = self._current_info()
                pacer = _Pacer(info.fps, self._clock) if self._should_pace(info) else None
                recovering = True
                continue
            self._index += 1  # the source index counts frames skipped as corrupt too
            if not is_valid_image(image):
                self.corrupt_frames += 1
                continue
            captured_at = self._clock()
            if recovering:
                recovering = False
                self._backoff.reset()
                self._status.set(STATUS_KEY, None)
                log.info("%s is delivering frames again", info.name)
            self._publish(image, captured_at)
            if self._max_frames is not None and self.frames_captured >= self._max_frames:
                self.ended.set()
                return

    def _publish(self, image: Image, captured_at: float) -> None:
        self._slot.put(Frame(self._seq, image, captured_at, index=self._index - 1))
        self._seq += 1
        self.frames_captured += 1
        self._meter.tick(captured_at)

    def _read(self) -> Image | None:
        try:
            return self._source.read()
        except SourceError as exc:
            log.warning("%s", exc)
            return None

    def _reconnect(self, info: SourceInfo) -> bool:
        """Close and reopen with backoff until it opens; False if stopped first."""
        word = {"stream": "Stream", "camera": "Camera"}.get(info.kind, "Source")
        log.warning("%s stopped delivering frames; reconnecting", info.name)
        self._source.close()
        while True:
            delay = self._backoff.next_delay()
            self._status.set(STATUS_KEY, f"{word} disconnected - retrying in {delay:.1f} s")
            if self._stop.wait(delay):
                return False
            try:
                self._source.open()
            except SourceError as exc:
                log.info("reconnect attempt %d failed: %s", self._backoff.failures, exc)
                continue
            if self._stop.is_set():
                return False
            self.reconnects += 1
            self._status.set(STATUS_KEY, f"{word} reconnected - waiting for frames")
            return True

    def _current_info(self) -> SourceInfo:
        info = self._source.info
        if info is None:
            raise SourceError("the source reports no info after opening")
        return info

    def _should_pace(self, info: SourceInfo) -> bool:
        return info.paced if self._pace is None else self._pace

    def _name(self) -> str:
        info = self._source.info
        return info.name if info is not None else "the source"
