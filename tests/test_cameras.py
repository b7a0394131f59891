"""Several sources in one live run: shared servers, fair shares, isolated cameras, per-camera outputs.

The fairness tests use stepped sources: each request the loopback server receives releases one
new frame from every camera, and the server answers only once those frames are in their slots,
so at every pick every running camera has a new frame whatever the machine's load.
"""

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from json_view import loose
from stub_api import Reply, Seen, StubApi

from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.frames import Frame, Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.live.slot import Doorbell
from livecam.predictions import Predictions
from livecam.sources import SourceInfo, SyntheticSource

WAIT_S = 10.0


class Stepper:
    """The server's side of stepped sources: one step per request."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.step = 0
        self.closed = False
        self.pipe: LivePipeline | None = None
        self.stop = threading.Event()
        self.bell = Doorbell()
        self.stopped: set[int] = set()
        """Cameras that no longer follow the steps."""

    def answer(self, seen: Seen) -> Reply:
        with self.cond:
            self.step += 1
            step = self.step
            self.cond.notify_all()
        pipe = self.pipe
        assert pipe is not None
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not self.closed:
            rings = self.bell.rings
            if all(self._has(pipe, i, step) for i in range(len(pipe.cameras))):
                break
            self.bell.wait(rings, 0.1)  # rung by every frame put in a camera's slot
        return Reply(body={"predictions": []})

    def watch(self, pipe: LivePipeline) -> None:
        self.pipe = pipe
        for camera in pipe.cameras:
            camera.frames.watch(self.bell)

    def _has(self, pipe: LivePipeline, camera: int, step: int) -> bool:
        if camera in self.stopped:
            return True
        frame = pipe.cameras[camera].frames.peek()
        return frame is not None and frame.seq >= step

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class SteppedSource:
    """A live source whose frame ``n`` comes once the server has had ``n`` requests."""

    def __init__(self, stepper: Stepper, camera: int, frames: int | None = None) -> None:
        self._stepper = stepper
        self._camera = camera
        self._frames = frames
        self._next = 0
        self._info: SourceInfo | None = None

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        self._info = SourceInfo(30.0, 64, 48, True, None, f"stepped {self._camera}", kind="synthetic", paced=False)
        return self._info

    def read(self) -> Image | None:
        stepper = self._stepper
        if self._frames is not None and self._next >= self._frames:
            with stepper.cond:
                stepper.stopped.add(self._camera)
            stepper.bell.ring()
            stepper.stop.wait(0.2)
            return None  # a dropout: the capture thread reconnects with backoff
        with stepper.cond:
            while not (stepper.closed or stepper.stop.is_set() or stepper.step >= self._next):
                stepper.cond.wait(0.1)  # the run's stop is an Event, not this condition
        self._next += 1
        return np.full((48, 64, 3), self._camera * 40, np.uint8)

    def close(self) -> None:
        pass


def stepped_run(cameras: int, answers: int, stopping: dict[int, int] | None = None) -> Counter[int]:
    """Answers per camera over the first ``answers`` answers, one request at a time."""
    stepper = Stepper()
    stop = stepper.stop
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def count(camera: int, frame: Frame, predictions: Predictions) -> None:
        with lock:
            counts[camera] += 1
            if sum(counts.values()) >= answers:
                stop.set()

    sources = [SteppedSource(stepper, i, (stopping or {}).get(i)) for i in range(cameras)]
    with StubApi(script=stepper.answer) as api:
        pipe = LivePipeline(
            sources,
            ApiConfig(api.url, "test/1"),
            HeadlessDisplay(),
            LiveConfig(in_flight=1, motion=False, hud=False),
            on_camera_answer=[count],
            stop=stop,
        )
        stepper.watch(pipe)
        try:
            with pipe:
                pipe.run()
        finally:
            stepper.close()
    assert sum(counts.values()) >= answers
    return counts


def test_cameras_get_equal_shares_of_a_server_that_is_the_bottleneck() -> None:
    counts = stepped_run(3, 30)
    assert len(counts) == 3
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_a_camera_that_stops_gives_its_share_to_the_others() -> None:
    counts = stepped_run(3, 40, stopping={2: 3})
    assert counts[2] <= 4
    assert abs(counts[0] - counts[1]) <= 1, counts
    assert counts[0] + counts[1] >= 36


def clip(frames: int, fps: float = 30.0, width: int = 160, height: int = 120) -> SyntheticSource:
    return SyntheticSource(width, height, fps, frames=frames, live=False)


class BrokenLive:
    """A live camera that delivers a few frames, then fails every read and every reopen."""

    def __init__(self, frames: int) -> None:
        self._left = frames
        self._info: SourceInfo | None = None
        self.opened = 0

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        from livecam.errors import SourceError

        self.opened += 1
        if self.opened > 1:
            raise SourceError("stream refused")
        self._info = SourceInfo(30.0, 96, 96, True, None, "rtsp://cam.invalid/live", kind="stream", paced=True)
        return self._info

    def read(self) -> Image | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return np.full((96, 96, 3), 128, np.uint8)

    def close(self) -> None:
        pass


def test_a_failing_camera_shows_its_banner_in_its_tile_only(tmp_path: Path) -> None:
    stop = threading.Event()
    shown: list[Image] = []
    banners: list[list[list[str]]] = []

    def watch(picture: Image) -> None:
        shown.append(picture)
        banners.append([camera.composer.status_lines() for camera in pipe.cameras])
        if pipe.cameras[0].ended and pipe.cameras[2].ended:
            stop.set()

    with StubApi() as api:
        pipe = LivePipeline(
            [clip(45), BrokenLive(5), clip(30, fps=20, width=120, height=160)],
            ApiConfig(api.url, "test/1"),
            HeadlessDisplay(),
            LiveConfig(boxes_log=tmp_path / "boxes.jsonl"),
            on_frame=[watch],
            stop=stop,
        )
        with pipe:
            stats = loose(pipe.run().to_json())
    cameras = stats["cameras"]
    assert [c["source_frames"] for c in cameras] == [45, 5, 30]
    assert cameras[1]["source"] == "rtsp://cam.invalid/live"
    assert stats["source_frames"] == 80
    assert stats["displayed_frames"] == sum(c["displayed_frames"] for c in cameras)
    assert stats["responses_ok"] == sum(c["responses_ok"] for c in cameras)
    assert cameras[0]["responses_ok"] >= 1 and cameras[2]["responses_ok"] >= 1
    assert "source" not in stats  # each camera names its own
    assert any(lines[1] and lines[1][0].startswith("camera 2: stream disconnected") for lines in banners)
    others = {line for lines in banners for line in lines[0] + lines[2]}
    assert others <= {"camera 1: waiting for video", "camera 3: waiting for video"}, others
    assert shown[-1].shape == (320, 320, 3)  # 2x2 cells of the largest width (160) and height (160)
    logged = [json.loads(line) for line in (tmp_path / "boxes.jsonl").read_text().splitlines()]
    assert {line["camera"] for line in logged} == {0, 1, 2}
    by_camera = Counter(line["camera"] for line in logged)
    assert [by_camera[i] for i in range(3)] == [c["displayed_frames"] for c in cameras]


def test_one_source_keeps_todays_statistics_and_log(tmp_path: Path) -> None:
    with LivePipeline(clip(10), None, HeadlessDisplay(), LiveConfig(boxes_log=tmp_path / "b.jsonl")) as pipe:
        stats: dict[str, Any] = pipe.run().to_json()
    assert "cameras" not in stats and stats["source"]["name"].startswith("synthetic")
    assert all("camera" not in json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines())


class KeyDisplay(HeadlessDisplay):
    """Presses the given keys one per shown picture, then none; records the pictures' sizes."""

    def __init__(self, keys: list[int], pipe: list[LivePipeline]) -> None:
        super().__init__()
        self._keys = list(keys)
        self._pipe = pipe
        self.views: list[int | None] = []

    def show(self, image: Image) -> int:
        view = self._pipe[0].view
        assert view is not None
        self.views.append(view.selected)
        return self._keys.pop(0) if self._keys else -1


def test_number_keys_show_one_camera_and_zero_or_esc_the_grid() -> None:
    holder: list[LivePipeline] = []
    keys = [ord("2"), ord("9"), ord("0"), ord("1"), 27, 27]
    display = KeyDisplay(keys, holder)
    pipe = LivePipeline([clip(600), clip(600)], None, display, LiveConfig(hud=False))
    holder.append(pipe)
    with pipe:
        stats = loose(pipe.run().to_json())
    # 2 -> camera 2; 9 (no such camera) -> unchanged; 0 -> grid; 1 -> camera 1; Esc -> grid; Esc -> quit.
    assert display.views == [None, 1, 1, None, 0, None]
    assert stats["source_frames"] < 1200  # quit before the clips ended


class HangingCamera:
    """A live camera whose reads hang after a few frames, until ``release`` is set."""

    def __init__(self, frames: int, release: threading.Event) -> None:
        self._left = frames
        self._release = release
        self._info: SourceInfo | None = None

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        self._info = SourceInfo(30.0, 64, 48, True, None, "hanging camera", kind="camera", paced=True)
        return self._info

    def read(self) -> Image | None:
        if self._left <= 0:
            self._release.wait(WAIT_S)
            return None
        self._left -= 1
        return np.full((48, 64, 3), 200, np.uint8)

    def close(self) -> None:
        pass


def test_the_camera_watchdog_restarts_only_the_camera_that_stopped() -> None:
    release = threading.Event()
    stop = threading.Event()
    reopened: list[int] = []

    def reopen(camera: int) -> SyntheticSource:
        reopened.append(camera)
        return SyntheticSource(64, 48, 30, live=True)

    def watch(picture: Image) -> None:
        fresh = pipe.cameras[1]
        if fresh.restarts >= 1 and fresh.last_seq >= 5:
            stop.set()

    pipe = LivePipeline(
        [SyntheticSource(64, 48, 30, live=True), HangingCamera(5, release)],
        None,
        HeadlessDisplay(),
        LiveConfig(hud=False, camera_watchdog=2.0),
        reopen=reopen,
        on_frame=[watch],
        stop=stop,
    )
    try:
        with pipe:
            stats = loose(pipe.run().to_json())
    finally:
        release.set()
    assert reopened and set(reopened) == {1}
    first, second = stats["cameras"]
    assert first["restarts"] == 0 and second["restarts"] == len(reopened)
    assert second["source_frames"] >= 5 + 6  # the hanging camera's frames, then the fresh capture's
    assert stats["source_frames"] == first["source_frames"] + second["source_frames"]


class GarbageClip:
    """A clip whose every read is not a picture (a flat float array), then ends."""

    def __init__(self, reads: int) -> None:
        self._left = reads
        self._info: SourceInfo | None = None

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        self._info = SourceInfo(30.0, 64, 48, False, self._left, "garbage", kind="file", paced=True)
        return self._info

    def read(self) -> Image | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return np.zeros(17, np.float64)  # what a broken decoder might hand back

    def close(self) -> None:
        pass


def test_a_camera_sending_garbage_affects_only_its_own_tile() -> None:
    with StubApi() as api:
        with LivePipeline(
            [clip(30), GarbageClip(20)], ApiConfig(api.url, "test/1"), HeadlessDisplay(), LiveConfig(hud=False)
        ) as pipe:
            stats = loose(pipe.run().to_json())
    good, garbage = stats["cameras"]
    assert good["source_frames"] == 30 and good["responses_ok"] >= 1
    assert garbage["source_frames"] == 0 and garbage["responses_ok"] == 0
    assert "failure" not in stats and garbage["failure"] is None
