"""The bounded window of frames between the reader, the request workers and the ordered writer."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from livecam.annotate.media import InputFrame
from livecam.predictions import Predictions


@dataclass(frozen=True)
class Outcome:
    """What became of one frame's request.

    Attributes:
        predictions: the answer, or None when the request failed or the frame was not sent.
        error: why the request failed (no key in it), or None.
        sent: False for frames skipped by ``--every`` (they show the last sent frame's boxes).
    """

    predictions: Predictions | None = None
    error: str | None = None
    sent: bool = True


SKIPPED = Outcome(sent=False)


class Window:
    """At most ``capacity`` frames between being read and being written.

    The reader :meth:`admit`s and :meth:`add`s frames in order; workers :meth:`take` the ones
    to send and :meth:`complete` them in any order; the writer gets them back strictly in order
    from :meth:`next` and :meth:`release`s each once written. Every wait ends when :meth:`halt`
    is called. Setting ``stop`` alone wakes nobody (a signal handler cannot notify a condition),
    so whoever sets it from outside must also call :meth:`halt` (the annotator's stop watcher does).
    """

    def __init__(self, capacity: int, stop: threading.Event) -> None:
        if capacity < 1:
            raise ValueError(f"window capacity must be at least 1 (got {capacity})")
        self.capacity = capacity
        self._stop = stop
        self._cond = threading.Condition()
        self._todo: deque[InputFrame] = deque()
        self._frames: dict[int, InputFrame] = {}
        self._done: dict[int, Outcome] = {}
        self._held = 0
        self._end: int | None = None
        self._halted = False
        self.max_held = 0

    @property
    def held(self) -> int:
        """Frames read and not yet released by the writer."""
        with self._cond:
            return self._held

    def admit(self) -> bool:
        """Wait for room for one more frame; False when the run is stopping."""
        with self._cond:
            while self._held >= self.capacity and not self._stopping():
                self._cond.wait()
            if self._stopping():
                return False
            self._held += 1
            self.max_held = max(self.max_held, self._held)
            return True

    def add(self, frame: InputFrame, send: bool) -> None:
        """Hand over an admitted frame: queued for a worker, or ready at once when not sent."""
        with self._cond:
            self._frames[frame.index] = frame
            if send:
                self._todo.append(frame)
            else:
                self._done[frame.index] = SKIPPED
            self._cond.notify_all()

    def end_input(self, frames_read: int) -> None:
        """No frame will be added after the first ``frames_read``."""
        with self._cond:
            self._end = frames_read
            self._cond.notify_all()

    def take(self) -> InputFrame | None:
        """The oldest frame still to send; None once there are none left or the run is stopping."""
        with self._cond:
            while not self._todo and self._end is None and not self._stopping():
                self._cond.wait()
            if self._stopping() or not self._todo:
                return None
            return self._todo.popleft()

    def complete(self, index: int, outcome: Outcome) -> None:
        """Record the outcome of a frame's request."""
        with self._cond:
            self._done[index] = outcome
            self._cond.notify_all()

    def next(self, index: int) -> tuple[InputFrame, Outcome] | None:
        """Frame ``index`` and its outcome once known; None at the end of input or when stopping."""
        with self._cond:
            while index not in self._done and not self._stopping() and (self._end is None or index < self._end):
                self._cond.wait()
            if self._stopping() or index not in self._done:
                return None
            return self._frames.pop(index), self._done.pop(index)

    def release(self) -> None:
        """The writer is done with one frame: room for the reader."""
        with self._cond:
            self._held -= 1
            self._cond.notify_all()

    def halt(self) -> None:
        """Stop the run: set the stop event and wake every waiter."""
        self._stop.set()
        with self._cond:
            self._halted = True
            self._cond.notify_all()

    def _stopping(self) -> bool:
        # Called with the condition held; the event is checked too so work stops as soon as it is set.
        return self._halted or self._stop.is_set()
