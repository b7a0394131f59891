"""RateMeter: events per second over a sliding window, on an explicit clock."""

from __future__ import annotations

import threading

import pytest

from livecam.ratemeter import RateMeter


def test_steady_ticks_give_their_rate() -> None:
    meter = RateMeter(window=2.0)
    for i in range(100):
        meter.tick(i / 25)
    assert meter.rate(99 / 25) == pytest.approx(25.0, rel=0.05)


def test_fewer_than_two_ticks_is_zero() -> None:
    meter = RateMeter()
    assert meter.rate(0.0) == 0.0
    meter.tick(1.0)
    assert meter.rate(1.0) == 0.0


def test_rate_falls_when_ticks_stop() -> None:
    meter = RateMeter(window=2.0)
    for i in range(20):
        meter.tick(i / 10)
    busy = meter.rate(1.9)
    later = meter.rate(3.0)
    assert later < busy
    assert meter.rate(10.0) == 0.0


def test_only_the_window_counts() -> None:
    meter = RateMeter(window=1.0)
    for i in range(100):
        meter.tick(i / 100)  # 100/s for one second
    for i in range(1, 11):
        meter.tick(1.0 + i / 10)  # then 10/s
    assert meter.rate(2.0) == pytest.approx(10.0, rel=0.15)


def test_bad_window() -> None:
    with pytest.raises(ValueError):
        RateMeter(window=0)


def test_ticks_from_several_threads_are_all_counted() -> None:
    meter = RateMeter(window=1000.0)
    meter.tick(0.0)
    start = threading.Barrier(4)

    def worker(offset: int) -> None:
        start.wait(timeout=10)
        for i in range(250):
            meter.tick(1 + offset + i * 4)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert meter.rate(1000.0) == pytest.approx(1000 / 1000.0)  # 1001 ticks since t=0
