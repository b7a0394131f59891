"""A single-item "latest" holder: writers overwrite, readers wait for something newer.

Slots are how threads hand frames and predictions to each other. They never queue, so a slow
consumer can never make a producer lag or memory grow; instead the slot counts what it dropped.
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=Sequenced)


class Doorbell:
    """Wakes a thread that waits on several slots: each slot it watches rings it on a put or close."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rings = 0

    def ring(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()

    @property
    def rings(self) -> int:
        """How often it rang so far (what to pass to :meth:`wait` as ``seen``)."""
        with self._cond:
            return self._rings

    def wait(self, seen: int, timeout: float | None) -> int:
        """Wait until it rang since ``seen`` rings (or ``timeout``); the rings so far."""
        with self._cond:
            self._cond.wait_for(lambda: self._rings != seen, timeout)
            return self._rings


class SlotClosed(Exception):
    """Raised by waits on a slot that was closed and holds nothing newer: end of stream."""


class LatestSlot(Generic[T]):
    """Holds the newest item by sequence number.

    ``put`` replaces the held item only when the new one is newer, so a late answer for an old
    frame never replaces one for a newer frame. ``close`` wakes every waiter; items already put
    stay readable.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self._taken_seq = -1
        self.dropped = 0
        """Items overwritten before any reader took them."""
        self.stale = 0
        """Items refused because the slot already held a newer one."""
        self._bells: list[Doorbell] = []

    def watch(self, bell: Doorbell) -> None:
        """Ring ``bell`` whenever an item is accepted or the slot is closed."""
        with self._cond:
            self._bells.append(bell)

    def put(self, item: T) -> bool:
        """Offer ``item``; returns False (and counts it stale) if a newer item is held."""
        with self._cond:
            current = self._item
            if current is not None and item.seq <= current.seq:
                self.stale += 1
                return False
            if current is not None and current.seq > self._taken_seq:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()
            bells = tuple(self._bells)
        for bell in bells:
            bell.ring()
        return True

    def peek(self) -> T | None:
        """The newest item, without waiting (None if nothing was ever put)."""
        with self._cond:
            return self._item

    def wait_newer(self, after_seq: int, timeout: float | None) -> T | None:
        """Wait until the held item's seq is greater than ``after_seq``.

        Returns the item, or None if ``timeout`` passed first.

        Raises:
            SlotClosed: the slot is closed and nothing newer than ``after_seq`` is held.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._newer(after_seq) or self._closed, timeout)
            item = self._item
            if item is not None and item.seq > after_seq:
                self._taken_seq = max(self._taken_seq, item.seq)
                return item
            if self._closed:
                raise SlotClosed
            return None

    def close(self) -> None:
        """Mark the end: waiters wake and, once they have the last item, get SlotClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            bells = tuple(self._bells)
        for bell in bells:
            bell.ring()

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def _newer(self, after_seq: int) -> bool:
        return self._item is not None and self._item.seq > after_seq
