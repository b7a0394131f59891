"""Four network cameras in one run: one stream dies and comes back; only its tile shows it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from mjpeg_server import MjpegServer
from stub_api import StubApi
from threaded_run import run_in_thread

from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.errors import SourceError
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import CaptureOptions, OpenCVSource, SyntheticSource, VideoSource

WAIT_S = 20.0


class Tiles:
    """Each camera's banner lines and frames shown, as of the last picture; tests wait on them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pipe: LivePipeline | None = None
        self.banners: list[list[str]] = []
        self.shown: list[int] = []

    def on_frame(self, picture: Image) -> None:
        assert self.pipe is not None
        with self.cond:
            self.banners = [camera.composer.status_lines() for camera in self.pipe.cameras]
            self.shown = [camera.stats.displayed_frames for camera in self.pipe.cameras]
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool]) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, WAIT_S)


@contextlib.contextmanager
def playing(
    sources: Sequence[VideoSource], api: ApiConfig | None = None, config: LiveConfig | None = None
) -> Iterator[tuple[Tiles, dict[str, Any]]]:
    """One pipeline of ``sources`` started and run on its own thread, its tiles watched; the dict
    holds the run's statistics once the block has ended."""
    tiles, stop = Tiles(), threading.Event()
    pipe = LivePipeline(
        sources, api, HeadlessDisplay(), config or LiveConfig(hud=False), on_frame=[tiles.on_frame], stop=stop
    )
    tiles.pipe = pipe
    runner: threading.Thread | None = None
    try:
        pipe.start()
        runner, result = run_in_thread(pipe)
        yield tiles, result
    finally:
        stop.set()
        if runner is not None:
            runner.join(WAIT_S)
        pipe.close()


def test_a_stream_that_dies_shows_its_banner_alone_and_comes_back() -> None:
    streams = [MjpegServer(fps=25).start() for _ in range(4)]
    options = CaptureOptions(open_timeout_s=2, read_timeout_s=1)
    try:
        with (
            StubApi(latency=0.02) as api,
            playing(
                [OpenCVSource(stream.url, options) for stream in streams],
                ApiConfig(api.url, "test/1"),
                LiveConfig(hud=False, in_flight=2),
            ) as (tiles, result),
        ):
            assert tiles.wait_for(lambda: len(tiles.shown) == 4 and min(tiles.shown) >= 10)
            streams[2].stop()
            assert tiles.wait_for(
                lambda: any(line.startswith("camera 3: stream disconnected") for line in tiles.banners[2])
            )
            during = list(tiles.shown)
            # The other three go on, with no banner, while camera 3 is away.
            assert tiles.wait_for(lambda: all(tiles.shown[i] >= during[i] + 25 for i in (0, 1, 3)))
            assert not any("disconnected" in line for i in (0, 1, 3) for line in tiles.banners[i]), tiles.banners
            streams[2].start()
            assert tiles.wait_for(lambda: not tiles.banners[2] and tiles.shown[2] >= during[2] + 10)
    finally:
        for stream in streams:
            stream.stop()
    cameras = result["cameras"]
    assert cameras[2]["reconnects"] >= 1
    assert all(c["responses_ok"] > 0 for c in cameras)


def test_a_camera_offline_at_the_start_gets_its_tile_and_joins_when_it_comes_up() -> None:
    stream = MjpegServer(fps=25).start()
    stream.stop()  # its port is closed when the run starts
    sources: list[VideoSource] = [
        SyntheticSource(64, 48, 25, live=True),
        OpenCVSource(stream.url, CaptureOptions(open_timeout_s=2)),
    ]
    try:
        with playing(sources) as (tiles, result):  # no SourceError: the other camera starts without it
            assert tiles.wait_for(
                lambda: (
                    len(tiles.shown) == 2
                    and tiles.shown[0] >= 10
                    and any("cannot open the source" in line for line in tiles.banners[1])
                )
            ), tiles.banners
            assert tiles.shown[1] == 0
            stream.start()
            assert tiles.wait_for(lambda: tiles.shown[1] >= 5 and not tiles.banners[1]), tiles.banners
    finally:
        stream.stop()
    assert [c["displayed_frames"] > 0 for c in result["cameras"]] == [True, True]
    assert result["cameras"][1]["source"] == stream.url


def test_a_camera_that_never_opens_is_named_in_the_statistics() -> None:
    stream = MjpegServer(fps=25).start()
    stream.stop()
    url = stream.url.replace("http://", "http://user:secret@")
    sources: list[VideoSource] = [
        SyntheticSource(64, 48, 25, live=True),
        OpenCVSource(url, CaptureOptions(open_timeout_s=1)),
    ]
    with playing(sources) as (tiles, result):
        assert tiles.wait_for(
            lambda: len(tiles.banners) == 2 and any("cannot open the source" in line for line in tiles.banners[1])
        )
    offline = result["cameras"][1]
    assert offline["displayed_frames"] == 0 and "secret" not in offline["source"]
    assert offline["source"].endswith(stream.url.split("//", 1)[1])


def test_several_sources_that_cannot_open_fail_the_run_when_none_opens_or_a_file_is_missing(tmp_path: Any) -> None:
    closed = MjpegServer(fps=25).start()
    closed.stop()
    offline = OpenCVSource(closed.url, CaptureOptions(open_timeout_s=2))
    with pytest.raises(SourceError, match="camera 1"):
        LivePipeline([offline, OpenCVSource(closed.url)], None, HeadlessDisplay()).start()
    missing = OpenCVSource(str(tmp_path / "missing.mp4"))
    pipe = LivePipeline([SyntheticSource(64, 48, 25, live=True), missing], None, HeadlessDisplay())
    try:
        with pytest.raises(SourceError, match="camera 2"):
            pipe.start()
    finally:
        pipe.close()
