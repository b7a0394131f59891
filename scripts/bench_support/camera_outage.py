"""Benchmark: one of four network cameras dies mid-run and comes back.

Four RTSP cameras (GStreamer's RTSP server on loopback, each serving the sample footage as H.264)
share a fixed-capacity loopback server in one live pipeline. The run goes through three windows of
equal length: all four up; camera 3's server killed; camera 3's server back. For each window it
reports every camera's frames shown over frames read, and its answers per second; for the return,
the seconds from the server's restart to camera 3's first new frame on screen and to its banner
going away.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_support.common import REPO, latency_server
from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import CaptureOptions, OpenCVSource

sys.path.insert(0, str(REPO / "tests"))
import stream_servers  # noqa: E402  (the loopback servers the tests use too)

CAMERAS = 4
KILLED = 2
"""The camera whose server is killed (camera 3 on screen)."""
SERVER_LATENCY_MS, SERVER_SLOTS = 100, 2
"""2 requests at once, 100 ms each: 20 answers/s for all cameras, so the server is the bottleneck."""
SHOWN_TARGET, RETURN_TARGET_S = 0.98, 2.0
WAIT_S = 30.0


@dataclass(frozen=True)
class Counts:
    """One camera's counters at one moment."""

    captured: int
    shown: int
    answers: int


@dataclass(frozen=True)
class Window:
    """Per camera: frames shown / frames read, and answers per second, between two moments."""

    name: str
    shown: list[float | None]
    answers_per_s: list[float]


class _Watch:
    """Each camera's counters and banner as of the last picture; the benchmark waits on them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pipe: LivePipeline | None = None
        self.counts: list[Counts] = []
        self.banners: list[list[str]] = []

    def on_frame(self, picture: Image) -> None:
        assert self.pipe is not None
        with self.cond:
            self.counts = [
                Counts(camera.frames_captured, camera.stats.displayed_frames, camera.stats.responses_ok)
                for camera in self.pipe.cameras
            ]
            self.banners = [camera.composer.status_lines() for camera in self.pipe.cameras]
            self.cond.notify_all()

    def wait_for(self, ready: Callable[[], bool]) -> float | None:
        """Seconds until ``ready()`` holds after a picture, or None after :data:`WAIT_S`."""
        began = time.monotonic()
        with self.cond:
            if not self.cond.wait_for(ready, WAIT_S):
                return None
        return time.monotonic() - began

    def now(self) -> tuple[float, list[Counts]]:
        with self.cond:
            return time.monotonic(), list(self.counts)


def _window(name: str, start: tuple[float, list[Counts]], end: tuple[float, list[Counts]]) -> Window:
    (t0, before), (t1, after) = start, end
    shown: list[float | None] = []
    answers: list[float] = []
    for a, b in zip(before, after, strict=True):
        read = b.captured - a.captured
        shown.append(round(min(1.0, (b.shown - a.shown) / read), 3) if read > 0 else None)
        answers.append(round((b.answers - a.answers) / (t1 - t0), 2))
    return Window(name, shown, answers)


def missing_tools() -> tuple[str, ...]:
    """The system packages the RTSP servers need that are not installed."""
    return tuple(stream_servers.missing_tools())


def measure(seconds: float) -> dict[str, Any]:
    """The three windows of ``seconds`` each, and the killed camera's return."""
    watch = _Watch()
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp, latency_server(SERVER_LATENCY_MS, SERVER_SLOTS) as api_url:
        folder = Path(tmp)
        clip = stream_servers.footage(folder, 3 * seconds + 40)
        servers = [stream_servers.RtspServer(clip, folder).start() for _ in range(CAMERAS)]
        pipe = LivePipeline(
            [OpenCVSource(server.url, CaptureOptions(open_timeout_s=15.0)) for server in servers],
            ApiConfig(api_url, "bench/1", api_key="bench"),
            HeadlessDisplay(),
            LiveConfig(hud=False, in_flight=SERVER_SLOTS),
            on_frame=[watch.on_frame],
            stop=stop,
        )
        watch.pipe = pipe
        runner = threading.Thread(target=pipe.run, name="bench-run", daemon=True)
        windows: list[Window] = []
        result: dict[str, Any] = {"seconds": seconds}
        try:
            pipe.start()
            runner.start()
            # One second of play before the first window, as the streams benchmark does.
            watch.wait_for(lambda: len(watch.counts) == CAMERAS and min(c.shown for c in watch.counts) >= 25)
            start = watch.now()
            stop.wait(seconds)
            windows.append(_window("all four up", start, watch.now()))

            servers[KILLED].stop()
            result["banner_s"] = watch.wait_for(lambda: any("disconnected" in line for line in watch.banners[KILLED]))
            start = watch.now()
            stop.wait(seconds)
            windows.append(_window(f"camera {KILLED + 1} down", start, watch.now()))

            before = watch.now()[1][KILLED].shown
            servers[KILLED].start()
            result["back_s"] = watch.wait_for(lambda: watch.counts[KILLED].shown > before)
            result["banner_gone_s"] = watch.wait_for(lambda: not watch.banners[KILLED])
            start = watch.now()
            stop.wait(seconds)
            windows.append(_window(f"camera {KILLED + 1} back", start, watch.now()))
        finally:
            stop.set()
            runner.join(WAIT_S)
            pipe.close()
            for server in servers:
                server.close()
    result["windows"] = [vars(w) for w in windows]
    return result


def rows(result: dict[str, Any]) -> list[list[Any]]:
    """One row per window: each camera's frames shown / read and answers per second."""
    out = []
    for w in result["windows"]:
        others = [s for i, s in enumerate(w["shown"]) if i != KILLED and s is not None]
        out.append(
            [
                w["name"],
                " / ".join("-" if s is None else f"{s:.2f}" for s in w["shown"]),
                " / ".join(f"{a:.1f}" for a in w["answers_per_s"]),
                "yes" if others and min(others) >= SHOWN_TARGET else "NO",
            ]
        )
    return out


HEADERS: Sequence[str] = (
    "window",
    "shown/read, cameras 1 / 2 / 3 / 4",
    "answers/s, cameras 1 / 2 / 3 / 4",
    f"others shown >= {SHOWN_TARGET:g}",
)
