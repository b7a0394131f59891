"""The motion thread: carries the newest answer's boxes with their objects, off the display path.

It wakes on every new frame in the frame slot (skipping what it has no time for) and every new
answer, feeds them to a :class:`~livecam.motion.Compensator`, and publishes the boxes as they are
in the newest frame to :attr:`MotionThread.carried`: a new answer is carried to the present as
soon as it arrives, not at the next frame. The display draws the newest carried boxes
without waiting (a frame or two ahead by their velocity when this thread is a little behind).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from livecam.frames import Frame
from livecam.live.slot import Doorbell, LatestSlot
from livecam.live.stats import SAMPLES_KEPT, MotionStats, Percentiles
from livecam.motion import Carried, Compensator
from livecam.percentiles import percentiles
from livecam.predictions import Predictions
from livecam.workers import JOIN_TIMEOUT_S, Worker

log = logging.getLogger(__name__)

_WAIT_STEP = 0.25


class MotionThread:
    """Runs a compensator on its own thread.

    Args:
        frames: the capture thread's slot.
        predictions: the senders' newest answer.
        stop: the run's stop event.
        compensator: the box motion (sized for the source's frame rate).
        carried: where the carried boxes go.
        cpu_clock: the thread's CPU seconds: the cost figures are the work done, not the time
            spent waiting for a core on a loaded machine (that is in ``wall_ms``).
        clock: seconds, for the wall-time figures.
    """

    def __init__(
        self,
        frames: LatestSlot[Frame],
        predictions: LatestSlot[Predictions],
        stop: threading.Event,
        compensator: Compensator,
        carried: LatestSlot[Carried],
        *,
        cpu_clock: Callable[[], float] = time.thread_time,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._frames = frames
        self._predictions = predictions
        self._stop = stop
        self._compensator = compensator
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._lock = threading.Lock()
        self._frame_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._catch_up_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self._wall_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self.carried = carried
        self.frames_done = 0
        # On failure the display draws the answers as they came.
        self._worker = Worker(
            self._loop, "livecam-motion", failure="motion compensation failed; boxes are drawn where they were detected"
        )

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the thread, if one did."""
        return self._worker.error

    def start(self) -> None:
        self._worker.start()

    def join(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Wait for the thread (after ``stop``); False if it is still running."""
        return self._worker.join(timeout)

    def stats(self, counted: MotionStats) -> MotionStats:
        """``counted`` (the display's figures) with what the motion thread did."""
        with self._lock:
            p50, p95 = percentiles(self._frame_ms, 50, 95)
            c50, c95 = percentiles(self._catch_up_ms, 50, 95)
            w50, w95 = percentiles(self._wall_ms, 50, 95)
        return dataclasses.replace(
            counted,
            cost_ms=Percentiles.rounded(p50, p95, digits=2),
            catch_up_ms=Percentiles.rounded(c50, c95, digits=2),
            wall_ms=Percentiles.rounded(w50, w95, digits=2),
            tracks_started=self._compensator.tracks_started,
        )

    def _loop(self) -> None:
        bell = Doorbell()
        self._frames.watch(bell)
        self._predictions.watch(bell)
        rings = 0
        last_seq = -1
        answered_seq = -1
        while not self._stop.is_set():
            rings = bell.wait(rings, timeout=_WAIT_STEP)
            frame = self._frames.peek()
            answer = self._predictions.peek()
            new_frame = frame is not None and frame.seq > last_seq
            new_answer = answer is not None and answer.frame_seq != answered_seq
            if not new_frame and self._frames.closed:
                return
            if not (new_frame or new_answer):
                continue
            started, cpu_started = self._clock(), self._cpu_clock()
            carried: Carried | None = None
            if new_frame and frame is not None:
                last_seq = frame.seq
                carried = self._compensator.step(frame.index, frame.image, answer)
            elif answer is not None:
                carried = self._compensator.take(answer)
            cost_ms = (self._cpu_clock() - cpu_started) * 1000
            wall_ms = (self._clock() - started) * 1000
            if answer is not None:
                answered_seq = answer.frame_seq
            with self._lock:
                if new_answer:
                    self._catch_up_ms.append(cost_ms)
                else:
                    self._frame_ms.append(cost_ms)
                    self._wall_ms.append(wall_ms)
                if new_frame:
                    self.frames_done += 1
            if carried is not None:
                self.carried.put(carried)
