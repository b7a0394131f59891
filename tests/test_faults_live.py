"""``livecam run`` under API faults, over real loopback HTTP: the video never stops, a status shows,
requests back off, the pipeline recovers when the API returns, and nothing is left running."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faults.probes import Resources, logs_as_text
from faults.servers import (
    CLOSE,
    HANG,
    RESET,
    Answer,
    FaultServer,
    Received,
    always,
    free_port,
    many_boxes,
    one_box,
)
from stepped import run_every_frame
from threaded_run import run_in_thread

from livecam.balance.pool import _WAIT_STEP, outage_backoff
from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.predictions import MAX_PREDICTIONS
from livecam.sources import SyntheticSource

KEY = "rf_fault_KEY_5150"
TIMEOUT = 0.5
"""Client connect/read timeout in these tests, so a hung answer costs half a second."""
FIRST_BACKOFF_S = 0.25
"""The pipeline's first retry delay: at most one request per this long during an outage."""
RECOVERY_S = 2.0
"""The promise: a recovered API is used again within this long (the backoff caps at 1.5 s)."""
WAIT_S = 15.0

FAILURES: dict[str, Callable[[Received], Answer]] = {
    "500": always(Answer.json({"message": "internal error"}, 500)),
    "502 html": always(Answer.text(502, "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>")),
    "503 retry-after": always(
        Answer.json({"message": "Model is temporarily not ready - retry request."}, 503, (("Retry-After", "1"),))
    ),
    "429": always(Answer.json({"message": "rate limited"}, 429, (("Retry-After", "2"),))),
    "401": always(Answer.json({"message": "Unauthorized api_key"}, 401)),
    "not json": always(Answer.text(200, "<html>maintenance</html>")),
    "json list": always(Answer.json([1, 2, 3])),
    "json without predictions": always(Answer.json({"image": {"width": 640, "height": 360}})),
    "predictions not a list": always(Answer.json({"predictions": "none"})),
    "reset": always(RESET),
    "closed without answer": always(CLOSE),
    "slow past read timeout": always(Answer(200, one_box().body, delay=5.0)),
    "never answers": always(HANG),
    "body dripped past the timeout": always(Answer(200, one_box().body + b" " * 4096, drip=0.02)),
    "50 MB body": always(Answer(200, filler=50 * 1024 * 1024)),
    "content-length lies": always(Answer(200, one_box().body, declared_length=10_000)),
}

ODD_ANSWERS: dict[str, Callable[[Received], Answer]] = {
    "nan inf negative huge coordinates": always(
        Answer.json(
            {
                "predictions": [
                    {"x": float("nan"), "y": 10, "width": 5, "height": 5, "confidence": 0.9, "class": "a"},
                    {"x": float("inf"), "y": float("-inf"), "width": 5, "height": 5, "confidence": 0.9, "class": "b"},
                    {"x": -500, "y": -500, "width": -20, "height": 30, "confidence": 0.9, "class": "c"},
                    {"x": 1e308, "y": 1e308, "width": 1e308, "height": 1e308, "confidence": 0.9, "class": "d"},
                    {"x": 100, "y": 100, "width": 50, "height": 50, "confidence": float("nan"), "class": "e"},
                    {"x": 100, "y": 100, "width": 50, "height": 50, "confidence": 0.9, "class": "ok"},
                ]
            }
        )
    ),
    "10 000 predictions": always(many_boxes(10_000)),
    "wrong types inside predictions": always(
        Answer.json(
            {
                "predictions": [
                    None,
                    7,
                    "box",
                    {"x": "1", "y": [], "width": {}, "height": True, "confidence": "high"},
                    {
                        "x": 50,
                        "y": 50,
                        "width": 10,
                        "height": 10,
                        "confidence": 0.8,
                        "class": {"nested": 1},
                        "points": "no",
                        "keypoints": [None, {"x": "a"}],
                    },
                ]
            }
        )
    ),
}


def clip(frames: int = 45, fps: float = 30.0) -> SyntheticSource:
    return SyntheticSource(640, 360, fps, frames=frames, live=False)


def api(url: str) -> ApiConfig:
    return ApiConfig(url, "test/1", api_key=KEY, connect_timeout=TIMEOUT, read_timeout=TIMEOUT)


class Watch:
    """Lets a test wait, without sleeping, for a condition checked on every displayed frame."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.statuses: list[str | None] = []
        self.pipe: LivePipeline | None = None

    def attach(self, pipe: LivePipeline) -> None:
        self.pipe = pipe

    def on_frame(self, _canvas: Image) -> None:
        assert self.pipe is not None
        with self.cond:
            self.statuses.append(self.pipe.status.get("api"))
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


def pipeline(source: SyntheticSource, url: str, watch: Watch, stop: threading.Event | None = None) -> LivePipeline:
    pipe = LivePipeline(source, api(url), HeadlessDisplay(), LiveConfig(), on_frame=[watch.on_frame], stop=stop)
    watch.pipe = pipe
    return pipe


@pytest.fixture
def resources() -> Iterator[Resources]:
    with logs_as_text() as lines:
        before = Resources.now()
        yield before
        before.assert_released()
    assert lines and not any(KEY in line for line in lines)


def every_frame(
    url: str, watch: Watch, may_go: Callable[[LivePipeline, int], bool], frames: int = 45
) -> tuple[LivePipeline, dict[str, Any]]:
    """Every frame of a clip shown (asserted), each read once the previous one was shown; frames
    from the 30th on also wait for ``may_go`` (the network), never for the display."""
    return run_every_frame(
        clip(frames),
        api(url),
        LiveConfig(),
        on_frame=[watch.on_frame],
        before=watch.attach,
        may_go=lambda pipe, index: index < 30 or may_go(pipe, index),
    )


@pytest.mark.parametrize("name", list(FAILURES))
def test_failing_api_never_stops_the_video(name: str, resources: Resources) -> None:
    watch = Watch()
    with FaultServer(FAILURES[name]) as server:
        _, stats = every_frame(server.url, watch, lambda pipe, _: pipe.status.get("api") is not None)
    assert stats["source_frames"] == 45
    assert stats["responses_ok"] == 0 and stats["responses_failed"] >= 1
    assert any(watch.statuses), "no status line while the API failed"
    # Backed off: never more than one request per first-backoff step (plus the first two).
    assert stats["requests_sent"] <= stats["duration_s"] / FIRST_BACKOFF_S + 2, stats
    assert server.requests <= stats["requests_sent"]


def test_retry_after_is_honoured(resources: Resources) -> None:
    watch = Watch()
    with FaultServer(always(Answer.json({"message": "slow down"}, 429, (("Retry-After", "5"),)))) as server:
        _, stats = every_frame(server.url, watch, lambda pipe, _: pipe.stats.responses_failed >= 1, frames=60)
        arrivals = list(server.arrivals)
    assert stats["responses_failed"] >= 1
    # The next try waits the 5 s the server asked for; a busy machine only makes the wait longer.
    assert all(later - earlier >= 4.9 for earlier, later in zip(arrivals, arrivals[1:], strict=False)), arrivals


@pytest.mark.parametrize("name", list(ODD_ANSWERS))
def test_odd_answers_are_cleaned_and_drawn(name: str, resources: Resources) -> None:
    watch = Watch()
    with FaultServer(ODD_ANSWERS[name]) as server:
        pipe, stats = every_frame(server.url, watch, lambda pipe, _: pipe.stats.responses_ok >= 1)
        held = pipe.predictions.peek()
    assert stats["responses_ok"] >= 1
    assert held is not None and len(held.items) <= MAX_PREDICTIONS
    for box in held.items:
        assert 0 <= box.x1 <= box.x2 <= 640 and 0 <= box.y1 <= box.y2 <= 360


def test_a_recovered_api_is_tried_again_within_the_promise() -> None:
    # The schedule itself, not a wall-clock measurement (which a busy machine would stretch).
    backoff = outage_backoff()
    assert max(backoff.next_delay() for _ in range(100)) + _WAIT_STEP <= RECOVERY_S


def test_api_down_at_start_then_up(resources: Resources) -> None:
    watch = Watch()
    server = FaultServer(port=free_port())
    stop = threading.Event()
    with pipeline(SyntheticSource(640, 360, 30, live=True), server.url, watch, stop) as pipe:
        display, stats = run_in_thread(pipe)
        try:
            assert watch.wait_for(lambda: pipe.stats.responses_failed >= 3)
            assert watch.statuses[-1] is not None and "unreachable" in watch.statuses[-1]
            server.start()
            up = server.starts[-1]
            assert watch.wait_for(lambda: pipe.stats.responses_ok >= 1 and pipe.status.get("api") is None)
        finally:
            stop.set()
            display.join(WAIT_S)
            server.stop()
    assert server.requests_since(up) >= 1 and stats["responses_ok"] >= 1
    assert stats["displayed_frames"] >= 1


@pytest.mark.slow
def test_api_down_mid_run_and_back_on_the_same_port(resources: Resources) -> None:
    watch = Watch()
    server = FaultServer().start()
    stop = threading.Event()
    with pipeline(SyntheticSource(640, 360, 30, live=True), server.url, watch, stop) as pipe:
        display, stats = run_in_thread(pipe)
        try:
            assert watch.wait_for(lambda: pipe.stats.responses_ok >= 3)
            server.stop()
            down_at, failed_before = time.monotonic(), pipe.stats.responses_failed
            assert watch.wait_for(lambda: pipe.stats.responses_failed >= failed_before + 4)
            assert watch.statuses[-1] is not None
            server.start()
            up = server.starts[-1]
            failed_in_outage = pipe.stats.responses_failed - failed_before
            ok_before = pipe.stats.responses_ok
            assert watch.wait_for(lambda: pipe.stats.responses_ok > ok_before and pipe.status.get("api") is None)
        finally:
            stop.set()
            display.join(WAIT_S)
            server.stop()
    outage = up - down_at
    assert failed_in_outage <= outage / FIRST_BACKOFF_S + 2
    assert stats["displayed_frames"] >= 1
    assert stats["errors"].get("no_answer", 0) >= 4


# --- the same faults through the real command line -------------------------------------------

SUBPROCESS_FAULTS = [
    "reset",
    "never answers",
    "body dripped past the timeout",
    "50 MB body",
    "503 retry-after",
    "json list",
]


def livecam_run(
    url: str, tmp_path: Path, source: str = "synthetic:320x240@40:40", *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    stats_path = tmp_path / "stats.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            source,
            "--headless",
            "--api-url",
            url,
            "--model",
            "t/1",
            "--api-key",
            KEY,
            "--timeout",
            str(TIMEOUT),
            "--stats-json",
            str(stats_path),
            "-vv",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return result, stats


def check_run(result: subprocess.CompletedProcess[str], stats: dict[str, Any], failing: bool = True) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert KEY not in result.stdout + result.stderr + json.dumps(stats)
    assert stats["displayed_frames"] >= 1  # that the display never waits for the API: tests/test_pipeline.py
    if failing:
        assert stats["requests_sent"] <= stats["duration_s"] / FIRST_BACKOFF_S + 2


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS_FAULTS)
def test_command_line_run_survives(name: str, tmp_path: Path) -> None:
    with FaultServer(FAILURES[name]) as server:
        result, stats = livecam_run(server.url, tmp_path)
    check_run(result, stats)
    assert stats["source_frames"] == 40 and stats["responses_failed"] >= 1


def test_command_line_run_with_nothing_listening(tmp_path: Path) -> None:
    result, stats = livecam_run(f"http://127.0.0.1:{free_port()}", tmp_path)
    check_run(result, stats)
    assert stats["errors"] == {"no_answer": stats["responses_failed"]}


@pytest.mark.slow
def test_command_line_run_recovers_after_an_outage(tmp_path: Path) -> None:
    server = FaultServer().start()
    outage = threading.Event()
    runner: dict[str, Any] = {}

    def run() -> None:
        runner["result"] = livecam_run(server.url, tmp_path, "synthetic:320x240@30", "--duration", "6")

    thread = threading.Thread(target=run, name="livecam-subprocess", daemon=True)
    thread.start()
    try:
        assert server.wait_for_requests(3, timeout=30)
        server.stop()
        down_at = time.monotonic()
        outage.wait(1.5)  # the scenario: 1.5 s without an API (not a synchronisation)
        server.start()
        up = server.starts[-1]
        thread.join(60)
    finally:
        server.stop()
    result, stats = runner["result"]
    check_run(result, stats, failing=False)
    assert stats["responses_failed"] <= (up - down_at) / FIRST_BACKOFF_S + 2
    assert server.requests_since(up) >= 1
    assert stats["errors"].get("no_answer", 0) >= 1 and stats["responses_ok"] > 3
