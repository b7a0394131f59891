"""Opening a camera's source in the background: backoff between attempts, never on the caller's thread."""

from __future__ import annotations

import threading

from livecam.backoff import Backoff
from livecam.errors import SourceError
from livecam.frames import Image
from livecam.live.opener import STATUS_KEY, Reopening
from livecam.live.status import StatusBoard
from livecam.sources import SourceInfo

WAIT_S = 10.0
INFO = SourceInfo(25.0, 64, 48, True, None, "door camera", kind="stream")


class GatedSource:
    """A source whose every open waits for the test, then fails or opens as told."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail = True
        self.opens = 0
        self.closed = threading.Event()

    @property
    def info(self) -> SourceInfo | None:
        return None

    def open(self) -> SourceInfo:
        self.opens += 1
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        self.gate.clear()
        if self.fail:
            raise SourceError("cannot open rtsp://door/live: connection refused")
        return INFO

    def read(self) -> Image | None:
        return None

    def close(self) -> None:
        self.closed.set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reopening(source: GatedSource, status: StatusBoard, clock: FakeClock, failed: str | None) -> Reopening:
    backoff = Backoff(initial=1.0, maximum=4.0, jitter=0.0)
    return Reopening(source, status, name="camera 2", clock=clock, backoff=backoff, failed=failed)


def test_after_a_failed_open_it_waits_its_backoff_then_opens_off_the_callers_thread() -> None:
    source, status, clock = GatedSource(), StatusBoard(), FakeClock()
    opening = reopening(source, status, clock, failed="connection refused")
    assert opening.poll(0.5) is None and source.opens == 0  # the failure before counts: wait 1 s
    assert status.get(STATUS_KEY) == "Cannot open the source - retrying in 1 s"

    clock.now = 1.0
    assert opening.poll(1.0) is None  # returns at once: the open runs on its own thread
    assert source.entered.wait(WAIT_S)
    source.gate.set()  # fails again
    assert opening.settle(WAIT_S)
    assert opening.poll(1.0) is None
    assert status.get(STATUS_KEY) == "Cannot open the source - retrying in 2 s"
    assert opening.poll(2.9) is None and source.opens == 1  # not before its backoff

    source.entered.clear()
    source.fail = False
    assert opening.poll(3.0) is None
    assert source.entered.wait(WAIT_S)
    source.gate.set()
    assert opening.settle(WAIT_S)
    assert opening.poll(3.0) == INFO
    assert status.get(STATUS_KEY) is None and opening.attempts == 3
    assert opening.poll(10.0) is None and source.opens == 2  # once opened, it is done


def test_a_source_that_opens_after_the_run_gave_up_is_closed() -> None:
    source, status, clock = GatedSource(), StatusBoard(), FakeClock()
    source.fail = False
    opening = reopening(source, status, clock, failed=None)
    assert opening.poll(0.0) is None
    assert source.entered.wait(WAIT_S)
    assert opening.cancel(0.0) is False  # still blocked in its open
    assert status.get(STATUS_KEY) is None
    source.gate.set()
    assert source.closed.wait(WAIT_S)
