"""Four network cameras in one run: one stream dies and comes back; only its tile shows it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from mjpeg_server import MjpegServer
from stub_api import StubApi

from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import CaptureOptions, OpenCVSource

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


def test_a_stream_that_dies_shows_its_banner_alone_and_comes_back() -> None:
    streams = [MjpegServer(fps=25).start() for _ in range(4)]
    tiles = Tiles()
    stop = threading.Event()
    options = CaptureOptions(open_timeout_s=2, read_timeout_s=1)
    result: dict[str, Any] = {}
    with StubApi(latency=0.02) as api:
        pipe = LivePipeline(
            [OpenCVSource(stream.url, options) for stream in streams],
            ApiConfig(api.url, "test/1"),
            HeadlessDisplay(),
            LiveConfig(hud=False, in_flight=2),
            on_frame=[tiles.on_frame],
            stop=stop,
        )
        tiles.pipe = pipe
        runner = threading.Thread(target=lambda: result.update(pipe.run().to_json()), daemon=True)
        try:
            pipe.start()
            runner.start()
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
            stop.set()
            runner.join(WAIT_S)
            pipe.close()
            for stream in streams:
                stream.stop()
    cameras = result["cameras"]
    assert cameras[2]["reconnects"] >= 1
    assert all(c["responses_ok"] > 0 for c in cameras)
