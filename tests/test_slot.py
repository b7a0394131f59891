import threading
from dataclasses import dataclass

import pytest

from livecam.live.slot import LatestSlot, SlotClosed


@dataclass(frozen=True)
class Item:
    seq: int


def test_put_overwrites_and_counts_drops() -> None:
    slot: LatestSlot[Item] = LatestSlot()
    for i in range(100):
        slot.put(Item(i))
    assert slot.peek() == Item(99)
    assert slot.dropped == 99


def test_older_item_never_replaces_newer() -> None:
    slot: LatestSlot[Item] = LatestSlot()
    slot.put(Item(5))
    assert slot.put(Item(3)) is False
    assert slot.peek() == Item(5) and slot.stale == 1


def test_wait_newer_returns_only_newer_items() -> None:
    slot: LatestSlot[Item] = LatestSlot()
    slot.put(Item(1))
    assert slot.wait_newer(-1, timeout=0) == Item(1)
    assert slot.wait_newer(1, timeout=0) is None


def test_waiter_wakes_on_put_from_another_thread() -> None:
    slot: LatestSlot[Item] = LatestSlot()
    got: list[Item | None] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        got.append(slot.wait_newer(-1, timeout=10))

    thread = threading.Thread(target=reader)
    thread.start()
    started.wait(5)
    slot.put(Item(0))
    thread.join(5)
    assert got == [Item(0)]


def test_close_wakes_waiters_after_last_item_is_read() -> None:
    slot: LatestSlot[Item] = LatestSlot()
    slot.put(Item(0))
    slot.close()
    assert slot.wait_newer(-1, timeout=0) == Item(0)
    with pytest.raises(SlotClosed):
        slot.wait_newer(0, timeout=10)


def test_taken_items_are_not_counted_as_dropped() -> None:
    slot: LatestSlot[Item] = LatestSlot()
    for i in range(10):
        slot.put(Item(i))
        slot.wait_newer(i - 1, timeout=0)
    assert slot.dropped == 0
