"""The capture thread: reads a source into a LatestSlot, paces files, clocks streams, reconnects.

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
  bursting. Cameras block in ``read`` and are not paced.
- Stream clock: a network stream (``SourceInfo.clocked``) is read on one thread and released
  on a second, ``capture-clock``, through a :class:`~livecam.live.streamclock.StreamClock`:
  frames leave evenly on their presentation times, backlogs are skipped to the live edge
  (``frames_dropped_to_stay_live``), and a frame whose time does not advance is not new
  (``stale_frames``; never published, so never sent for detection). ``captured_at`` is the
  frame's arrival time, so display time minus it is how far behind the stream the picture is.
- Stall: no new frame for ``SourceInfo.stall_timeout_s`` (and none left to release) sets the
  status "Stream stalled - no new video for N s" and logs it; a read that then returns a stale
  frame ends the connection and reconnects.
- End: a failed read of a non-live source, or ``max_frames`` frames, ends the thread: it sets
  ``ended`` and closes the slot so consumers finish cleanly. The slot is also closed when the
  thread stops for any other reason.
- Dropout: a failed read of a live source sets status ``source`` to "Camera disconnected -
  retrying in N s" ("Stream ..." for streams; it counts down, then says "reconnecting" while
  the open runs), closes the source and reopens it with backoff; the status is cleared by the
  next good frame. The log says why (the source's ``read_failure``) and each open failure
  once, until the cause changes.
- The thread owns the source once started and closes it when it ends; callers must not.
- ``join(timeout)`` is bounded by ``timeout`` in all (both threads), and warns once.
"""

from __future__ import annotations

import logging
import math
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
from livecam.live.streamclock import MAX_DELAY_S, StreamClock
from livecam.ratemeter import RateMeter
from livecam.sources import SourceInfo, Timestamped, VideoSource
from livecam.workers import JOIN_TIMEOUT_S, Worker, join_all

log = logging.getLogger(__name__)

STATUS_KEY = "source"
"""The StatusBoard key the capture thread writes."""

STREAM_RETRY_MAX_S = 2.0
"""The longest wait between reconnect attempts to a stream (cameras: 10 s)."""
STREAM_BUFFER_BYTES = 768 * 2**20
"""The most decoded stream frames the stream clock holds, in bytes (about 5 s of 1080p at 25 fps)."""
_BURST_LATENESS = 2.0
"""The worst lateness of a stream that comes in bursts, in bursts (see ``start``)."""
_CLOCK_IDLE_S = 1.0
"""The longest the release thread sleeps without a reason (a safety net; pushes and join wake it)."""


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
        dropped_to_stay_live: stream frames skipped by the stream clock (backlogs, a slow consumer).
        stale_frames: stream frames refused because their timestamp did not advance.
        stalls: stalls declared.
    """

    frames_captured: int
    reconnects: int
    read_failures: int
    corrupt_frames: int
    dropped: int
    source_fps: float
    dropped_to_stay_live: int = 0
    stale_frames: int = 0
    stalls: int = 0


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
        clock: monotonic seconds, for ``captured_at``, pacing, the stream clock and stalls.
        pace: force pacing on or off; None follows ``SourceInfo.paced``.
        backoff: reconnect delays (default 0.5 s doubling to 10 s; for streams 0.25 s to 2 s).
        max_frames: end after publishing this many frames.
        stream_clock: release frames through this jitter buffer; None makes one for a source
            whose ``SourceInfo.clocked`` is set (streams).
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
        stream_clock: StreamClock[tuple[Image, int]] | None = None,
    ) -> None:
        self._source = source
        self._slot = slot
        self._stop = stop
        self._status = status
        self._clock = clock
        self._pace = pace
        self._backoff = backoff or Backoff(initial=0.5, maximum=10.0)
        self._default_backoff = backoff is None
        self._max_frames = max_frames
        self._reader = Worker(self._read_all, "capture", failure=lambda: f"capture from {self._name()} failed")
        self._meter = RateMeter()
        self._seq = 0
        self._index = 0
        self._published = 0
        self._stream = stream_clock
        self._releaser: Worker | None = None
        self._cond = threading.Condition()
        self._reader_done = False
        self._reconnecting = False
        self._stalled = False
        self._banner = False  # a status line that the next released frame clears
        self._last_new_at = 0.0
        self._warned_stuck = False
        self._last_open_error = ""
        self.ended = threading.Event()
        """Set when the source ended by itself (end of file, ``max_frames``), not on stop."""
        self.frames_captured = 0
        self.reconnects = 0
        self.read_failures = 0
        self.corrupt_frames = 0
        self.stalls = 0

    def start(self) -> None:
        """Start reading.

        Raises:
            SourceError: the source was not opened first.
        """
        info = self._source.info
        if info is None:
            raise SourceError("the source is not open; call source.open() before starting capture")
        if self._default_backoff and info.kind == "stream":
            # A stream server that comes back is played again within STREAM_RETRY_MAX_S.
            self._backoff = Backoff(initial=0.25, maximum=STREAM_RETRY_MAX_S)
        if self._stream is None and info.clocked:
            # Enough for the longest delay, within a memory budget; beyond it the oldest go.
            frame_bytes = max(1, info.width * info.height * 3)
            capacity = min(math.ceil(info.fps * (MAX_DELAY_S + 1)), STREAM_BUFFER_BYTES // frame_bytes)
            # A burst's first frame is a burst older than its last, and the reader finds a burst up
            # to one burst after it is complete (HLS reloads its playlist once per target duration):
            # start with that delay rather than raise it, and pause the picture, each time one is later.
            initial = _BURST_LATENESS * (info.burst_s or 0.0)
            self._stream = StreamClock(capacity=max(8, capacity), min_delay_s=initial)
        if self._stream is not None:
            self._last_new_at = self._clock()
            self._releaser = Worker(
                self._release_all, "capture-clock", failure=lambda: f"the stream clock of {self._name()} failed"
            )
            self._releaser.start()
        self._reader.start()

    def join(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Wait up to ``timeout`` s in all for the threads; False (warned once) if one still runs.

        Set ``stop`` first. A thread still blocked in a source read is a daemon and is left behind.
        Returns True at once if the thread was never started.
        """
        if not self._reader.started:
            return True
        with self._cond:
            self._cond.notify_all()
        if join_all((self._releaser, self._reader), timeout):
            if not self._warned_stuck:
                self._warned_stuck = True
                log.warning(
                    "capture thread did not stop within %.1f s (a source read is blocked); leaving it behind", timeout
                )
            return False
        return True

    @property
    def error(self) -> BaseException | None:
        """An unexpected exception that ended a capture thread, if one did."""
        release = self._releaser
        return self._reader.error or (release.error if release is not None else None)

    def is_alive(self) -> bool:
        """Whether a capture thread still runs (the reader holds the source until it ends)."""
        release = self._releaser
        return self._reader.is_alive() or (release is not None and release.is_alive())

    @property
    def dropped(self) -> int:
        """Frames overwritten in the slot before anyone took them."""
        return self._slot.dropped

    @property
    def dropped_to_stay_live(self) -> int:
        """Stream frames the stream clock skipped to stay at the live edge."""
        stream = self._stream
        return 0 if stream is None else stream.dropped

    @property
    def stream_delay_s(self) -> float:
        """The delay the stream clock learned from the arrivals (0 without one)."""
        stream = self._stream
        if stream is None:
            return 0.0
        with self._cond:
            return stream.delay

    @property
    def stale_frames(self) -> int:
        """Stream frames refused because their timestamp did not advance."""
        stream = self._stream
        return 0 if stream is None else stream.stale

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
            self.dropped_to_stay_live,
            self.stale_frames,
            self.stalls,
        )

    def _read_all(self) -> None:
        try:
            self._loop()
        finally:
            self._source.close()
            if self._stream is None:
                self._slot.close()
            with self._cond:
                self._reader_done = True
                self._cond.notify_all()

    def _running(self) -> bool:
        return not (self._stop.is_set() or self.ended.is_set())

    def _loop(self) -> None:
        info = self._current_info()
        pacer = _Pacer(info.fps, self._clock) if self._should_pace(info) else None
        recovering = False
        while self._running():
            if pacer is not None and not pacer.wait(self._stop):
                return
            image = self._read()
            if not self._running():
                return
            if image is None:
                if not info.live:
                    log.info("%s ended after %d frames", info.name, self.frames_captured)
                    self.ended.set()
                    return
                self.read_failures += 1
                if not self._reconnect(info, self._why_read_failed()):
                    return
                info = self._current_info()
                pacer = _Pacer(info.fps, self._clock) if self._should_pace(info) else None
                recovering = True
                continue
            self._index += 1  # the source index counts frames skipped as corrupt too
            if not is_valid_image(image):
                self.corrupt_frames += 1
                continue
            arrived_at = self._clock()
            if self._stream is not None:
                if not self._push(image, arrived_at) and self._stalled:
                    # Stuck: the decoder repeats its last picture; start afresh.
                    self.read_failures += 1
                    if not self._reconnect(info, "frames stopped advancing"):
                        return
                    info = self._current_info()
                continue
            if recovering:
                recovering = False
                self._backoff.reset()
                self._status.set(STATUS_KEY, None)
                log.info("%s is delivering frames again", info.name)
            self._publish(image, arrived_at, self._index - 1)
            if self._max_frames is not None and self._published >= self._max_frames:
                self.ended.set()
                return

    def _push(self, image: Image, arrived_at: float) -> bool:
        """Hand a stream frame to the release thread; False if it is not new."""
        stream = self._stream
        assert stream is not None
        pts = self._source.position_s() if isinstance(self._source, Timestamped) else None
        with self._cond:
            if not stream.push((image, self._index - 1), pts, arrived_at):
                return False
            self.frames_captured += 1
            self._last_new_at = arrived_at
            self._meter.tick(arrived_at)
            self._cond.notify_all()
        return True

    def _release_all(self) -> None:
        """Release stream frames on their clock, skip to the live edge, declare stalls."""
        try:
            self._release_loop()
        finally:
            self._slot.close()

    def _release_loop(self) -> None:
        stream = self._stream
        assert stream is not None
        info = self._current_info()
        stall_s = info.stall_timeout_s
        while not self._stop.is_set():
            with self._cond:
                now = self._clock()
                got = stream.pop(now)
                if got is None:
                    if self._reader_done and len(stream) == 0:
                        return
                    # A stall is due only with nothing held; a reconnect shows its own banner, and
                    # a deadline it leaves behind must not become a wait of zero (a busy loop).
                    watching = stall_s is not None and not (self._stalled or self._reconnecting) and len(stream) == 0
                    stall_at = self._last_new_at + stall_s if watching and stall_s is not None else None
                    if stall_at is not None and now >= stall_at:
                        self._declare_stall(now, info.name)
                        continue
                    due = stream.due_at(now)
                    wake = [t - now for t in (due, stall_at) if t is not None]
                    self._cond.wait(min([_CLOCK_IDLE_S, *wake]) if wake else _CLOCK_IDLE_S)
                    continue
                clear = self._banner
                self._banner = self._stalled = False
            image, index = got[0]
            if clear:
                self._backoff.reset()
                self._status.set(STATUS_KEY, None)
                log.info("%s is delivering frames again", info.name)
            self._publish(image, got[1], index)
            if self._max_frames is not None and self._published >= self._max_frames:
                self.ended.set()
                return

    def _declare_stall(self, now: float, name: str) -> None:
        """Called with the lock held."""
        self._stalled = self._banner = True
        self.stalls += 1
        if self._stream is not None:
            self._stream.gap()
        waited = now - self._last_new_at
        log.warning("%s: no new frame for %.1f s; the stream stalled", name, waited)
        self._status.set(STATUS_KEY, f"Stream stalled - no new video for {waited:.0f} s")

    def _publish(self, image: Image, captured_at: float, index: int) -> None:
        self._slot.put(Frame(self._seq, image, captured_at, index=index))
        self._seq += 1
        self._published += 1
        if self._stream is None:
            self.frames_captured += 1
            self._meter.tick(captured_at)

    def _read(self) -> Image | None:
        try:
            return self._source.read()
        except SourceError as exc:
            log.warning("%s", exc)
            return None

    def _why_read_failed(self) -> str:
        reason = self._source.read_failure() if isinstance(self._source, Timestamped) else None
        return reason or "stopped delivering frames"

    def _reconnect(self, info: SourceInfo, why: str) -> bool:
        """Close and reopen with backoff until it opens; False if stopped first."""
        word = {"stream": "Stream", "camera": "Camera"}.get(info.kind, "Source")
        log.warning("%s: %s; reconnecting", info.name, why)
        self._source.close()
        with self._cond:
            self._reconnecting = self._banner = True
            if self._stream is not None:
                self._stream.restart()
        try:
            return self._reopen(word)
        finally:
            with self._cond:
                self._reconnecting = False
                self._last_new_at = self._clock()  # a stall is counted from the reopen
                self._cond.notify_all()

    def _reopen(self, word: str) -> bool:
        while True:
            delay = self._backoff.next_delay()
            if not self._count_down(word, delay):
                return False
            self._status.set(STATUS_KEY, f"{word} disconnected - reconnecting")
            try:
                self._source.open()
            except SourceError as exc:
                message = str(exc)
                level = logging.INFO if message == self._last_open_error else logging.WARNING
                self._last_open_error = message
                log.log(level, "reconnect attempt %d failed: %s", self._backoff.failures, message)
                continue
            if self._stop.is_set():
                return False
            self._last_open_error = ""
            self.reconnects += 1
            self._status.set(STATUS_KEY, f"{word} reconnected - waiting for frames")
            return True

    def _count_down(self, word: str, delay: float) -> bool:
        """Wait ``delay`` s showing the seconds left, once a second; False if stopped meanwhile."""
        end = time.monotonic() + delay  # real time: the waits below are real
        while (left := end - time.monotonic()) > 0:
            shown = f"{left:.1f}" if left < 1 else f"{math.ceil(left)}"
            self._status.set(STATUS_KEY, f"{word} disconnected - retrying in {shown} s")
            if self._stop.wait(left - math.floor(left) if left >= 1 and left != math.floor(left) else min(left, 1.0)):
                return False
        return not self._stop.is_set()

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
