"""Real network streams over loopback: MPEG-TS over TCP, HLS, RTSP; stalls, restarts, the run's stats.

The servers are ffmpeg and GStreamer's RTSP server (Debian packages that scripts/test.sh
installs). No assertion here is about a rate or a duration: each waits for an event.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from json_view import loose
from stream_servers import FfmpegStream, RtspServer, footage, missing_tools

from livecam.display import HeadlessDisplay
from livecam.frames import Frame
from livecam.live.capture import CaptureThread
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.live.slot import LatestSlot
from livecam.live.status import StatusBoard
from livecam.sources import CaptureOptions, OpenCVSource
from livecam.streamprobe import ENV

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"missing system packages: {missing_tools()}")

ENV_BEFORE = os.environ.get(ENV)
WAIT = 20.0
"""Upper bound of every wait: generous for a loaded machine; never a timing assertion."""


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return footage(tmp_path_factory.mktemp("footage"), 10.0)


class Watch:
    """A capture of ``url`` into a slot, with a status board a test can wait on."""

    def __init__(self, url: str, stall_timeout: float = 3.0) -> None:
        self.source = OpenCVSource(
            url, CaptureOptions(open_timeout_s=10.0, read_timeout_s=5.0, stall_timeout=stall_timeout)
        )
        self.slot: LatestSlot[Frame] = LatestSlot()
        self.stop = threading.Event()
        self.status = StatusBoard()
        self.source.open()
        self.capture = CaptureThread(self.source, self.slot, self.stop, self.status)
        self.capture.start()

    def frames(self, count: int) -> list[Frame]:
        """The next ``count`` frames the slot offers (waiting for each)."""
        seen: list[Frame] = []
        last = self.slot.peek()
        after = -1 if last is None else last.seq
        while len(seen) < count:
            frame = self.slot.wait_newer(after, WAIT)
            assert frame is not None, "no new frame within the wait bound"
            seen.append(frame)
            after = frame.seq
        return seen

    def status_becomes(self, predicate: object) -> bool:
        """Wait (bounded) for the status line to satisfy ``predicate``, watching new frames meanwhile."""
        assert callable(predicate)
        for _ in range(int(WAIT / 0.1)):
            if predicate(self.status.get("source")):
                return True
            self.stop.wait(0.1)  # the status board has no change signal; a bounded poll
        return False

    def close(self) -> None:
        self.stop.set()
        assert self.capture.join(WAIT)


@pytest.fixture
def tcp(clip: Path, tmp_path: Path) -> Iterator[FfmpegStream]:
    with FfmpegStream("tcp", clip, tmp_path) as server:
        yield server


def test_mpegts_over_tcp_plays_through_the_stream_clock(tcp: FfmpegStream) -> None:
    watch = Watch(tcp.url)
    try:
        frames = watch.frames(30)
        assert [f.seq for f in frames] == sorted({f.seq for f in frames})
        info = watch.source.info
        assert info is not None and info.clocked and info.stall_timeout_s == 3.0
        assert watch.source.position_s() is not None  # MPEG-TS carries timestamps
        assert watch.capture.stale_frames == 0
    finally:
        watch.close()


@pytest.mark.slow
def test_a_stall_is_declared_then_the_stream_resumes(tcp: FfmpegStream) -> None:
    watch = Watch(tcp.url, stall_timeout=1.0)
    pid = tcp.pid
    try:
        watch.frames(10)
        os.kill(pid, signal.SIGSTOP)  # the connection stays open; nothing arrives
        try:
            assert watch.status_becomes(lambda m: m is not None and m.startswith("Stream stalled"))
        finally:
            os.kill(pid, signal.SIGCONT)
        assert watch.status_becomes(lambda m: m is None)
        watch.frames(10)
        assert watch.capture.stalls >= 1 and watch.capture.reconnects == 0
    finally:
        watch.close()


def assert_recovers(watch: Watch, server: RtspServer | FfmpegStream) -> None:
    """Frames, then the server stopped: a "Stream ..." status; started again: frames and no status."""
    watch.frames(10)
    server.stop()
    assert watch.status_becomes(lambda m: m is not None and m.startswith("Stream "))
    server.start()
    watch.frames(10)
    assert watch.status_becomes(lambda m: m is None)
    assert watch.capture.reconnects >= 1


@pytest.mark.slow
def test_rtsp_recovers_after_the_server_is_killed_and_restarted(clip: Path, tmp_path: Path) -> None:
    with RtspServer(clip, tmp_path) as server:
        watch = Watch(server.url)
        try:
            assert_recovers(watch, server)
        finally:
            watch.close()


@pytest.mark.slow
def test_hls_segments_arrive_in_bursts_and_are_buffered(clip: Path, tmp_path: Path) -> None:
    with FfmpegStream("hls1", clip, tmp_path) as server:
        watch = Watch(server.url)
        try:
            frames = watch.frames(60)
            assert [f.seq for f in frames] == sorted({f.seq for f in frames})
            assert watch.capture.stream_delay_s > 0  # it learned the bursts: frames wait to leave evenly
        finally:
            watch.close()


def test_a_run_of_a_stream_reports_its_lag(tcp: FfmpegStream) -> None:
    source = OpenCVSource(tcp.url, CaptureOptions(open_timeout_s=10.0))
    with LivePipeline(source, None, HeadlessDisplay(), LiveConfig(max_frames=20)) as pipeline:
        stats = loose(pipeline.run().to_json())
    assert stats["displayed_frames"] >= 1
    assert stats["stream_lag_ms"]["p50"] is not None and stats["stream_lag_ms"]["p95"] is not None
    assert isinstance(stats["frames_dropped_to_stay_live"], int)


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["tcp", "rtmp"])
def test_tcp_and_rtmp_open_with_a_short_probe_and_recover(
    protocol: Literal["tcp", "rtmp"], clip: Path, tmp_path: Path
) -> None:
    with FfmpegStream(protocol, clip, tmp_path) as server:
        watch = Watch(server.url)
        try:
            info = watch.source.info
            assert info is not None and (info.width, info.height) == (640, 272)  # the short probe found the size
            assert_recovers(watch, server)
            assert os.environ.get(ENV) == ENV_BEFORE  # put back after each open
        finally:
            watch.close()
