"""The capture thread: pacing, end of file, dropouts and reconnects, prompt stops."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from mjpeg_server import MjpegServer
from test_sources import sample_video, write_video

from livecam.backoff import Backoff
from livecam.display import HeadlessDisplay
from livecam.errors import SourceError
from livecam.frames import Frame, Image
from livecam.live.capture import CaptureThread, is_valid_image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.live.slot import LatestSlot, SlotClosed
from livecam.live.status import StatusBoard
from livecam.sources import (
    CaptureOptions,
    OpenCVSource,
    SourceInfo,
    SourceKind,
    SyntheticSource,
    VideoSource,
)

WAIT = 10.0
"""Upper bound for every wait: generous, since the machine is noisy; never a timing assertion."""

IMG = np.zeros((4, 4, 3), np.uint8)


def tiny_backoff() -> Backoff:
    return Backoff(initial=0.001, maximum=0.002, jitter=0.0)


class RecordingSlot(LatestSlot[Frame]):
    """A LatestSlot that also remembers every sequence number offered to it."""

    def __init__(self) -> None:
        super().__init__()
        self.seqs: list[int] = []

    def put(self, item: Frame) -> bool:
        self.seqs.append(item.seq)
        return super().put(item)


class WatchedStatus(StatusBoard):
    """A StatusBoard that records every change and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()
        self.history: list[str | None] = []

    def set(self, key: str, message: str | None) -> None:
        super().set(key, message)
        with self._changed:
            self.history.append(message)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str | None], bool], key: str = "source") -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.get(key)), WAIT)


class ScriptedSource:
    """A fake source: each open plays the next scripted session of reads.

    A step is an image, None (failed read) or an exception to raise. When a session runs out,
    ``read`` blocks until ``release`` is set (like a camera with nothing new), then returns None.
    Reopens wait on ``open_gate`` when one is given, and the first ``failing_opens`` of them fail.
    """

    def __init__(
        self,
        sessions: list[list[object]],
        *,
        kind: SourceKind = "camera",
        live: bool = True,
        failing_opens: int = 0,
        open_gate: threading.Event | None = None,
    ) -> None:
        self._sessions = deque(sessions)
        self._steps: deque[object] = deque()
        self._kind, self._live = kind, live
        self._failing_opens = failing_opens
        self._info: SourceInfo | None = None
        self.open_gate = open_gate
        self.open_calls = 0
        self.reopening = threading.Event()
        self.in_read = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        self.open_calls += 1
        if self.open_calls > 1:
            self.reopening.set()
            if self.open_gate is not None:
                self.open_gate.wait(WAIT)
            if self._failing_opens > 0:
                self._failing_opens -= 1
                raise SourceError("cannot open fake camera: unplugged")
        self._steps = deque(self._sessions.popleft() if self._sessions else [])
        self._info = SourceInfo(fps=30.0, width=4, height=4, live=self._live, name="fake", kind=self._kind, paced=False)
        return self._info

    def read(self) -> Image | None:
        if self._steps:
            step = self._steps.popleft()
            if isinstance(step, Exception):
                raise step
            return cast(Image | None, step)
        self.in_read.set()
        self.release.wait(WAIT)
        return None

    def close(self) -> None:
        self.closed.set()


class Rig:
    """A slot, stop event and status board wired to one CaptureThread."""

    def __init__(self) -> None:
        self.slot = RecordingSlot()
        self.stop = threading.Event()
        self.status = WatchedStatus()

    def capture(self, source: VideoSource, **kwargs: Any) -> CaptureThread:
        source.open()
        thread = CaptureThread(source, self.slot, self.stop, self.status, **kwargs)
        thread.start()
        return thread

    def drain(self) -> list[Frame]:
        """Every frame a consumer sees until the slot closes."""
        seen: list[Frame] = []
        while True:
            try:
                frame = self.slot.wait_newer(seen[-1].seq if seen else -1, WAIT)
            except SlotClosed:
                return seen
            assert frame is not None, "no frame and no end within the wait bound"
            seen.append(frame)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_file_plays_every_frame_in_order_then_closes_the_slot(rig: Rig, tmp_path: Path) -> None:
    source = OpenCVSource(str(write_video(tmp_path / "clip.avi", 20, fps=25.0)))
    capture = rig.capture(source)
    seen = rig.drain()
    assert capture.join(WAIT)
    assert capture.ended.is_set() and capture.error is None
    assert rig.slot.seqs == list(range(20))
    assert capture.frames_captured == 20 and capture.read_failures == 0
    assert [f.seq for f in seen] == sorted({f.seq for f in seen}) and seen[-1].seq == 19
    levels = [int(f.image.mean()) for f in seen]
    assert levels == sorted(levels)
    assert rig.status.history == []


def test_paced_synthetic_clip_delivers_the_frames_it_renders(rig: Rig) -> None:
    source = SyntheticSource(96, 64, fps=50.0, frames=12, live=False)
    capture = rig.capture(source)
    seen = rig.drain()
    assert capture.join(WAIT) and capture.ended.is_set()
    assert rig.slot.seqs == list(range(12))
    reference = SyntheticSource(96, 64)
    for frame in seen:
        assert np.array_equal(frame.image, reference.frame(frame.seq))


def test_sample_file_unpaced_with_max_frames(rig: Rig) -> None:
    source = OpenCVSource(str(sample_video("bikes.mp4")))
    capture = rig.capture(source, pace=False, max_frames=30)
    assert capture.join(WAIT) and capture.ended.is_set()
    assert rig.slot.seqs == list(range(30))
    assert rig.slot.closed


def test_max_frames_ends_a_live_source_and_stats_add_up(rig: Rig) -> None:
    ticks = (i / 10 for i in range(1000))
    capture = rig.capture(SyntheticSource(64, 48), pace=False, max_frames=5, clock=lambda: next(ticks))
    assert capture.join(WAIT) and capture.ended.is_set()
    assert rig.slot.seqs == [0, 1, 2, 3, 4]
    last = rig.slot.peek()
    assert last is not None and last.captured_at == pytest.approx(0.4)  # one clock reading per captured frame
    stats = capture.stats()
    counts = (stats.frames_captured, stats.reconnects, stats.read_failures, stats.corrupt_frames)
    assert counts == (5, 0, 0, 0)
    assert stats.dropped == 4  # nobody read: every frame but the last was overwritten
    assert stats.source_fps == pytest.approx(8.0)  # 5 ticks at t=0..0.4, measured at t=0.5


def test_reconnect_after_dropout_sets_then_clears_the_status(rig: Rig) -> None:
    gate = threading.Event()
    source = ScriptedSource([[IMG, IMG, IMG, None], [IMG, IMG, IMG]], failing_opens=1, open_gate=gate)
    capture = rig.capture(source, backoff=tiny_backoff(), max_frames=6)
    assert source.reopening.wait(WAIT)
    assert rig.status.get("source") == "Camera disconnected - reconnecting"
    assert any(m is not None and m.startswith("Camera disconnected - retrying in ") for m in rig.status.history)
    gate.set()
    assert capture.join(WAIT)
    assert capture.ended.is_set()
    assert rig.slot.seqs == list(range(6))
    assert (capture.reconnects, capture.read_failures, source.open_calls) == (1, 1, 3)
    assert rig.status.get("source") is None
    assert rig.status.history[-2:] == ["Camera reconnected - waiting for frames", None]


def test_a_read_that_raises_is_a_dropout_and_streams_say_stream(rig: Rig) -> None:
    source = ScriptedSource([[IMG, SourceError("decoder fell over")], [IMG]], kind="stream")
    capture = rig.capture(source, backoff=tiny_backoff(), max_frames=2)
    assert capture.join(WAIT) and capture.ended.is_set()
    assert rig.slot.seqs == [0, 1]
    first = rig.status.history[0]
    assert first is not None and first.startswith("Stream disconnected - retrying in ")
    assert rig.status.get("source") is None


def test_corrupt_frames_are_skipped_and_counted(rig: Rig) -> None:
    bad: list[object] = [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        "not an image",
    ]
    source = ScriptedSource([[IMG, *bad, IMG]])
    capture = rig.capture(source, max_frames=2)
    assert capture.join(WAIT) and capture.ended.is_set()
    assert capture.corrupt_frames == len(bad)
    assert rig.slot.seqs == [0, 1]


def test_is_valid_image() -> None:
    assert is_valid_image(IMG)
    assert not is_valid_image(None) and not is_valid_image(IMG[:, :, :2])


def test_start_requires_an_opened_source(rig: Rig) -> None:
    capture = CaptureThread(ScriptedSource([]), rig.slot, rig.stop, rig.status)
    with pytest.raises(SourceError, match=r"call source\.open\(\)"):
        capture.start()
    assert not capture.is_alive()
    assert capture.join(WAIT)


def test_a_source_that_never_opens_fails_before_any_thread(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        OpenCVSource(str(tmp_path / "gone.mp4")).open()


def test_an_unexpected_error_is_recorded_and_ends_the_stream(rig: Rig) -> None:
    capture = rig.capture(ScriptedSource([[IMG, RuntimeError("bug in a source")]]))
    assert capture.join(WAIT)
    assert isinstance(capture.error, RuntimeError)
    assert rig.slot.closed and not capture.ended.is_set()


def test_stop_while_a_read_blocks(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    source = ScriptedSource([[IMG]])
    capture = rig.capture(source)
    assert source.in_read.wait(WAIT)
    rig.stop.set()
    with caplog.at_level(logging.WARNING, logger="livecam.live.capture"):
        assert capture.join(timeout=0.05) is False  # bounded even though the read is stuck
    assert "did not stop" in caplog.text
    source.release.set()
    assert capture.join(WAIT)
    assert capture.reconnects == 0 and capture.frames_captured == 1
    assert source.closed.is_set() and rig.slot.closed


def test_stop_while_backing_off(rig: Rig) -> None:
    source = ScriptedSource([[None]])
    capture = rig.capture(source, backoff=Backoff(initial=3600.0, maximum=3600.0, jitter=0.0))
    assert source.closed.wait(WAIT)
    rig.stop.set()
    assert capture.join(WAIT)
    assert capture.reconnects == 0 and source.open_calls == 1


def test_stop_while_reopening(rig: Rig) -> None:
    gate = threading.Event()
    source = ScriptedSource([[None]], open_gate=gate)
    capture = rig.capture(source, backoff=tiny_backoff())
    assert source.reopening.wait(WAIT)
    rig.stop.set()
    gate.set()
    assert capture.join(WAIT)
    assert capture.reconnects == 0 and not capture.ended.is_set()


def test_stop_while_pacing(rig: Rig) -> None:
    capture = rig.capture(SyntheticSource(64, 48, fps=0.001))
    assert rig.slot.wait_newer(-1, WAIT) is not None
    rig.stop.set()
    assert capture.join(WAIT)
    assert capture.frames_captured == 1


def test_stop_before_the_first_read(rig: Rig) -> None:
    rig.stop.set()
    capture = rig.capture(SyntheticSource(64, 48))
    assert capture.join(WAIT)
    assert capture.frames_captured == 0 and rig.slot.closed


def test_mjpeg_stream_drops_out_and_comes_back(rig: Rig) -> None:
    with MjpegServer(fps=50.0) as server:
        source = OpenCVSource(server.url, CaptureOptions(open_timeout_s=5.0, read_timeout_s=2.0))
        capture = rig.capture(source, backoff=Backoff(initial=0.05, maximum=0.2, jitter=0.0))
        try:
            assert rig.slot.wait_newer(-1, WAIT) is not None
            server.stop()
            assert rig.status.wait_for(lambda m: m is not None and m.startswith("Stream disconnected"))
            last = rig.slot.peek()
            assert last is not None
            server.start()
            assert rig.status.wait_for(lambda m: m is None)
            assert rig.slot.wait_newer(last.seq, WAIT) is not None
            assert capture.reconnects >= 1 and capture.read_failures >= 1
            assert rig.slot.seqs == list(range(len(rig.slot.seqs)))
        finally:
            rig.stop.set()
            assert capture.join(WAIT)


class StampedSource(ScriptedSource):
    """A scripted network stream: steps are ``(image, pts)`` pairs, or an Event the read waits for.

    It is clocked (released through the stream clock) and has a stall timeout.
    """

    def __init__(self, sessions: list[list[object]], stall_timeout_s: float = 2.0, **kwargs: Any) -> None:
        super().__init__(sessions, kind="stream", **kwargs)
        self._pts: float | None = None
        self._stall = stall_timeout_s

    def open(self) -> SourceInfo:
        info = replace(super().open(), clocked=True, stall_timeout_s=self._stall)
        self._info = info
        return info

    def read(self) -> Image | None:
        while self._steps and isinstance(self._steps[0], threading.Event):
            gate = self._steps.popleft()
            assert isinstance(gate, threading.Event)
            gate.wait(WAIT)
        if self._steps and isinstance(self._steps[0], tuple):
            image, self._pts = cast(tuple[Image, float], self._steps.popleft())
            return image
        return super().read()

    def position_s(self) -> float | None:
        return self._pts

    def read_failure(self) -> str | None:
        return "the stream ended (scripted)"


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_backlog_is_skipped_to_the_live_edge(rig: Rig) -> None:
    clock = FakeClock()
    backlog: list[object] = [(IMG, i * 0.04) for i in range(10)]
    source = StampedSource([backlog])
    capture = rig.capture(source, clock=clock)
    assert source.in_read.wait(WAIT)  # all ten arrived at once, at t=0
    clock.now = 1.0
    newest = None
    while newest is None or newest.index != 9:
        newest = rig.slot.wait_newer(-1 if newest is None else newest.seq, WAIT)
        assert newest is not None
    assert rig.slot.seqs[-1] == len(rig.slot.seqs) - 1  # the live edge, not a fast replay
    assert capture.dropped_to_stay_live == 10 - len(rig.slot.seqs) and len(rig.slot.seqs) <= 2
    assert capture.frames_captured == 10 and capture.stale_frames == 0
    rig.stop.set()
    source.release.set()
    assert capture.join(WAIT)


def test_a_stall_is_declared_by_the_capture_clock_and_stale_frames_are_never_published(rig: Rig) -> None:
    clock = FakeClock()
    stalled = threading.Event()
    first: list[object] = [(IMG, 0.0), stalled, (IMG, 0.0)]  # then the decoder repeats itself
    second: list[object] = [(IMG, 0.0)]  # after the reconnect, a new timeline
    source = StampedSource([first, second], stall_timeout_s=2.0)
    capture = rig.capture(source, clock=clock, backoff=tiny_backoff(), max_frames=2)
    assert rig.slot.wait_newer(-1, WAIT) is not None
    clock.now = 5.0
    assert rig.status.wait_for(lambda m: m is not None and m.startswith("Stream stalled"))
    assert rig.status.get("source") == "Stream stalled - no new video for 5 s"
    assert capture.stalls == 1
    stalled.set()
    assert capture.ended.wait(WAIT)
    source.release.set()
    assert capture.join(WAIT)
    assert rig.slot.seqs == [0, 1]  # the repeated frame was not published
    assert capture.stale_frames == 1 and capture.reconnects == 1 and capture.read_failures == 1
    assert any(m is not None and m.startswith("Stream disconnected") for m in rig.status.history)
    assert rig.status.get("source") is None


def test_join_of_a_stream_stuck_in_a_read_is_bounded_and_warns_once(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    source = StampedSource([[(IMG, 0.0)]])
    capture = rig.capture(source)
    assert source.in_read.wait(WAIT)
    rig.stop.set()
    with caplog.at_level(logging.WARNING, logger="livecam.live.capture"):
        assert capture.join(timeout=0.05) is False
        assert capture.join(timeout=0.05) is False
    assert caplog.text.count("did not stop") == 1
    assert rig.slot.closed  # the release thread is gone: consumers are not kept waiting
    source.release.set()
    assert capture.join(WAIT)
    assert source.closed.is_set()


def test_a_pipeline_closes_once_even_with_its_capture_stuck_in_a_read(caplog: pytest.LogCaptureFixture) -> None:
    source = ScriptedSource([[IMG]])
    pipeline = LivePipeline(source, None, HeadlessDisplay(), LiveConfig())
    pipeline.start()
    assert source.in_read.wait(WAIT)
    with caplog.at_level(logging.WARNING):
        pipeline.close()
        pipeline.close()  # e.g. finish() and then the context manager: no second wait
    assert caplog.text.count("did not stop") == 1
    source.release.set()


def test_a_stream_that_resumes_after_a_stall_is_shown_at_once_not_held_for_the_stall(rig: Rig) -> None:
    clock = FakeClock()
    paused = threading.Event()
    session: list[object] = [(IMG, 0.0), paused, (IMG, 0.04)]  # the publisher pauses, then goes on
    source = StampedSource([session], stall_timeout_s=2.0)
    capture = rig.capture(source, clock=clock)
    first = rig.slot.wait_newer(-1, WAIT)
    assert first is not None
    clock.now = 3.0
    assert rig.status.wait_for(lambda m: m is not None and m.startswith("Stream stalled"))
    paused.set()  # the next frame arrives at t=3.0, 2.96 s later than its pts says
    resumed = rig.slot.wait_newer(first.seq, WAIT)  # the fake clock stays at 3.0: due now, or never
    assert resumed is not None and resumed.captured_at == 3.0
    assert capture.stream_delay_s == 0.0  # the stall was not learnt as jitter
    assert rig.status.wait_for(lambda m: m is None)
    rig.stop.set()
    source.release.set()
    assert capture.join(WAIT)


class WatchedWaits(threading.Condition):
    """The capture's condition, noting the timeout of each wait of the stream clock's thread."""

    def __init__(self, clock: FakeClock, at: float) -> None:
        super().__init__()
        self._clock, self._at = clock, at
        self.timeouts: list[float] = []
        self.waited = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        if threading.current_thread().name == "capture-clock" and self._clock.now == self._at:
            self.timeouts.append(-1.0 if timeout is None else timeout)
            self.waited.set()
        return super().wait(timeout)


def test_the_stream_clock_waits_while_a_lost_stream_reconnects(rig: Rig) -> None:
    """A stall deadline passed during a reconnect must not turn the clock thread into a busy loop."""
    clock = FakeClock()
    gate = threading.Event()
    source = StampedSource([[(IMG, 0.0), None], [(IMG, 0.0)]], stall_timeout_s=2.0, open_gate=gate)
    source.open()
    capture = CaptureThread(source, rig.slot, rig.stop, rig.status, clock=clock, backoff=tiny_backoff())
    waits = WatchedWaits(clock, at=5.0)
    capture._cond = waits  # noqa: SLF001  (the only way to see how the thread waits)
    capture.start()
    try:
        assert source.reopening.wait(WAIT)  # the reader is in its reopen, held by the gate
        clock.now = 5.0  # long past the stall deadline of the first frame
        with waits:
            waits.notify_all()
        assert waits.waited.wait(WAIT)
        assert min(waits.timeouts) > 0, waits.timeouts
        assert capture.stalls == 0  # the reconnect's banner, not a stall's
    finally:
        rig.stop.set()
        gate.set()
        assert capture.join(WAIT)
