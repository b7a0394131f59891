"""Sources that fail: never open, drop mid-run and come back, or deliver corrupt frames."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from faults.servers import free_port
from json_view import loose
from mjpeg_server import MjpegServer
from threaded_run import run_in_thread

from livecam.display import HeadlessDisplay
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import CaptureOptions, OpenCVSource, SourceInfo

WAIT_S = 20.0


@pytest.mark.parametrize("source", ["missing.mp4", "http://127.0.0.1:{port}/stream.mjpg", "37"])
def test_a_source_that_never_opens_is_one_clear_error(source: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            source.format(port=free_port()),
            "--headless",
            "--api-url",
            "http://127.0.0.1:9",
            "--model",
            "a/1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert "cannot open" in result.stderr and "Traceback" not in result.stderr


class Shown:
    """A headless display that remembers what the last frame said, and lets a test wait on it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count = 0
        self.pipe: LivePipeline | None = None
        self.status: list[str] = []
        self.last: Image | None = None

    def on_frame(self, canvas: Image) -> None:
        assert self.pipe is not None
        with self.cond:
            self.count += 1
            self.status = self.pipe.status.lines()
            self.last = canvas
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool]) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, WAIT_S)


def test_stream_drop_keeps_the_last_frame_with_a_status_and_reconnects() -> None:
    stream = MjpegServer(fps=25).start()
    shown = Shown()
    stop = threading.Event()
    source = OpenCVSource(stream.url, CaptureOptions(open_timeout_s=2, read_timeout_s=1))
    pipe = LivePipeline(source, None, HeadlessDisplay(), LiveConfig(), on_frame=[shown.on_frame], stop=stop)
    shown.pipe = pipe
    runner: threading.Thread | None = None
    try:
        pipe.start()
        runner, result = run_in_thread(pipe)
        assert shown.wait_for(lambda: shown.count >= 10)
        stream.stop()
        assert shown.wait_for(lambda: any("Stream disconnected" in line for line in shown.status))
        during = shown.count
        # The display keeps redrawing the last picture with the status while the stream is away.
        assert shown.wait_for(lambda: shown.count >= during + 2)
        stream.start()
        assert shown.wait_for(lambda: not shown.status and pipe.stats.displayed_frames > during + 10)
    finally:
        stop.set()
        if runner is not None:
            runner.join(WAIT_S)
        pipe.close()
        stream.stop()
    assert result["reconnects"] >= 1


class CorruptSource:
    """A paced clip whose reads alternate good frames with broken ones."""

    def __init__(self) -> None:
        good = np.zeros((120, 160, 3), np.uint8)
        self.reads: list[Any] = [
            good,
            np.zeros((120, 160), np.uint8),
            good,
            np.zeros((120, 160, 4), np.uint8),
            good,
            np.zeros((120, 160, 3), np.float32),
            good,
            np.zeros((0, 0, 3), np.uint8),
            good,
            "not an image",
            good,
            np.zeros((240, 320, 3), np.uint8),
            good,
        ]
        self._info: SourceInfo | None = None
        self._i = 0

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        self._info = SourceInfo(fps=50, width=160, height=120, live=False, name="corrupt", kind="file", paced=True)
        return self._info

    def read(self) -> Image | None:
        self._i += 1
        return self.reads[self._i - 1] if self._i <= len(self.reads) else None

    def close(self) -> None:
        return None


def test_corrupt_frames_are_skipped() -> None:
    source = CorruptSource()
    with LivePipeline(source, None, HeadlessDisplay()) as pipe:
        stats = loose(pipe.run().to_json())
    valid = 8  # seven 160x120 frames and one 320x240
    assert stats["source_frames"] == valid
    assert stats["displayed_frames"] >= valid - 1
