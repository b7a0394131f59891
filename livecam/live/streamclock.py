"""The stream clock: releases a live stream's frames evenly on their own timestamps, at the live edge.

A network stream does not deliver frames evenly: HLS hands over a whole segment at download
speed, a reconnect or a stall is followed by a backlog, relays send bursts. :class:`StreamClock`
is a small adaptive jitter buffer in front of the frame slot:

- Each frame's *offset* is its arrival time minus its presentation time (``pts``; the arrival
  time itself when the stream carries none). An even source has a constant offset.
- The *delay* is the worst lateness seen over the last ``window_s``: how much later than the
  earliest offset in the window a frame arrived (for HLS about one segment, for an even source
  almost 0; never below ``min_delay_s``, a lateness known beforehand), plus a tenth for a
  segment a little later than any before, capped at ``max_delay_s``.
- A frame is due at ``pts + earliest offset + delay``, so frames leave one frame interval apart
  even when they came in a burst, and none leaves before it arrived.
- :meth:`pop` gives the newest due frame and drops the older due ones (a backlog after a
  connect, a reconnect or a stall, or a consumer that fell behind): the picture stays at the
  live edge instead of playing fast. Dropped frames are counted. A frame that arrived earlier
  than any before it (relative to its pts, by more than half a frame: a backlog being drained)
  is not shown until the backlog stops pouring in (one frame interval without an arrival).
- A frame whose ``pts`` does not advance is stale (a decoder repeating its last picture) and is
  refused. A frame later than ``max_delay_s``, a ``pts`` that jumps back, or the end of a stall
  (:meth:`gap`) starts a new timeline: a stream that stopped for seconds and resumed is not
  jitter, and learning it as such would delay every frame after it by the stall.

Every method takes ``now``; nothing here reads a clock or sleeps, so tests drive it with numbers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_DELAY_S = 5.0
"""The most the buffer delays a frame (enough to play HLS with 4 s segments evenly)."""
WINDOW_S = 30.0
"""How long arrival jitter is remembered when learning the delay."""
_MARGIN = 0.1
"""The delay is the worst lateness seen plus this share of it."""
_MAX_STEP_S = 0.5
"""A longer pts step than this is a gap, not the frame interval."""
_BACKWARD_JUMP_S = 1.0
"""A pts this far behind the previous one is a new timeline (the stream restarted), not a repeat."""


@dataclass(frozen=True)
class _Entry(Generic[T]):
    item: T
    pts: float
    arrival: float
    catching_up: bool


class StreamClock(Generic[T]):
    """An adaptive jitter buffer that releases items at their presentation times.

    Args:
        capacity: the most items held; a push beyond it drops the oldest (counted).
        max_delay_s: the learned delay never exceeds this.
        window_s: how long the arrival history used for learning is kept.
        min_delay_s: the least lateness to expect, known before any arrival (a stream that comes
            in bursts of a known length, such as HLS): kept for the stream's life, so the picture
            neither pauses to learn it nor skips ahead when it would be forgotten.
    """

    def __init__(
        self,
        capacity: int = 512,
        *,
        max_delay_s: float = MAX_DELAY_S,
        window_s: float = WINDOW_S,
        min_delay_s: float = 0.0,
    ) -> None:
        if capacity < 1 or max_delay_s < 0 or window_s <= 0:
            raise ValueError("capacity must be >= 1, max_delay_s >= 0 and window_s > 0")
        self._capacity = capacity
        self._max_delay = max_delay_s
        self._window = window_s
        self._queue: deque[_Entry[T]] = deque()
        self._offsets: deque[tuple[float, float]] = deque()  # (arrival, offset), offsets increasing
        self._lateness: deque[tuple[float, float]] = deque()  # (arrival, lateness), lateness decreasing
        self._last_pts: float | None = None
        self._step = 0.0  # the last pts step: one frame interval
        self._floor = max(0.0, min_delay_s)
        self._backlog_arrival = 0.0  # when the last frame of a backlog came
        self.dropped = 0
        """Items dropped to stay at the live edge (or because the buffer was full)."""
        self.stale = 0
        """Items refused because their pts did not advance."""

    @property
    def delay(self) -> float:
        """The delay learned so far, in seconds."""
        worst = max(self._floor, self._lateness[0][1] if self._lateness else 0.0)
        return min(self._max_delay, worst * (1 + _MARGIN))

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, item: T, pts: float | None, now: float) -> bool:
        """Add a frame that arrived at ``now``; False (and counted stale) if its pts did not advance.

        ``pts`` is the frame's presentation time in seconds on the stream's own timeline, or None
        when the stream carries none (the arrival time is used, which releases it at once).
        """
        pts = now if pts is None else pts
        if self._last_pts is not None and pts <= self._last_pts:
            if pts > self._last_pts - _BACKWARD_JUMP_S:
                self.stale += 1
                return False
            self.restart()
        if self._last_pts is not None:
            self._step = min(_MAX_STEP_S, pts - self._last_pts)
        self._last_pts = pts
        self._forget(now)
        offset = now - pts
        earliest = self._offsets[0][1] if self._offsets else None
        lateness = 0.0 if earliest is None else max(0.0, offset - earliest)
        if lateness > self._max_delay:
            self.restart()  # later than any jitter worth buffering: a stall; go on from here
            self._last_pts = pts
            lateness, earliest = 0.0, None
        catching_up = earliest is not None and earliest - offset > self._step / 2
        while self._offsets and self._offsets[-1][1] >= offset:
            self._offsets.pop()
        self._offsets.append((now, offset))
        while self._lateness and self._lateness[-1][1] <= lateness:
            self._lateness.pop()
        self._lateness.append((now, lateness))
        self._queue.append(_Entry(item, pts, now, catching_up))
        if catching_up:
            self._backlog_arrival = now
        while len(self._queue) > self._capacity:
            self._queue.popleft()
            self.dropped += 1
        return True

    def due_at(self, now: float) -> float | None:
        """When :meth:`pop` will next give an item (it may be in the past); None when empty."""
        self._forget(now)
        newest = self._newest_due(now)
        if newest is not None:
            return self._release(newest)
        return self._due(self._queue[0]) if self._queue else None

    def pop(self, now: float) -> tuple[T, float] | None:
        """The newest item due by ``now`` and its arrival time; older due items are dropped."""
        self._forget(now)
        newest = self._newest_due(now)
        if newest is None or self._release(newest) > now:
            return None
        while self._queue[0] is not newest:
            self._queue.popleft()
            self.dropped += 1
        self._queue.popleft()
        return newest.item, newest.arrival

    def _newest_due(self, now: float) -> _Entry[T] | None:
        found: _Entry[T] | None = None
        for entry in self._queue:
            if self._due(entry) > now:
                break
            found = entry
        return found

    def _release(self, entry: _Entry[T]) -> float:
        """When a due entry may leave: a backlog's frames, one step after its last frame came."""
        due = self._due(entry)
        return max(due, self._backlog_arrival + self._step) if entry.catching_up else due

    def gap(self) -> None:
        """The stream stopped (a stall): when it resumes, its gap is not jitter to learn a delay from.

        The timeline is forgotten as by :meth:`restart` (nothing is held: a stall is declared
        only when the buffer ran empty), but the last pts is kept, so a repeat is still stale.
        """
        self.dropped += len(self._queue)
        self._queue.clear()
        self._offsets.clear()

    def restart(self) -> None:
        """Forget the timeline (a reconnect): held items are dropped; the learned delay is kept."""
        self.dropped += len(self._queue)
        self._queue.clear()
        self._offsets.clear()
        self._last_pts = None

    def _due(self, entry: _Entry[T]) -> float:
        # An entry is always at least as late as the earliest offset: due >= its arrival.
        earliest = self._offsets[0][1] if self._offsets else entry.arrival - entry.pts
        return max(entry.arrival, entry.pts + earliest + self.delay)

    def _forget(self, now: float) -> None:
        horizon = now - self._window
        # Keep the newest offset even when old, so held items always have a timeline.
        while len(self._offsets) > 1 and self._offsets[0][0] < horizon:
            self._offsets.popleft()
        while self._lateness and self._lateness[0][0] < horizon:
            self._lateness.popleft()
