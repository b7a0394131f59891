"""Several detection servers over real loopback HTTP: one lost mid-run costs no frame, a server
that keeps failing is set aside while the others carry on, every server down then back recovers
within the promised time, and the key appears nowhere."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from faults.probes import Resources, logs_as_text
from faults.servers import Answer, FaultServer, Received, always, free_port, one_box
from threaded_run import run_in_thread

from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import SyntheticSource

KEY = "rf_servers_KEY_8086"
TIMEOUT = 0.5
FIRST_BACKOFF_S = 0.25
WAIT_S = 20.0
ANSWER_DELAY_S = 0.05
FRAMES = 60


def slow_box(received: Received) -> Answer:
    """One box, after a short delay, so a run lasts long enough to lose a server in the middle."""
    answer = one_box(received, 128, 96)
    return Answer(answer.status, answer.body, answer.headers, delay=ANSWER_DELAY_S)


UNAVAILABLE = always(Answer.json({"message": "Model is not ready"}, 503))


class Trigger:
    """A server script that also sets an event once the server has had ``after`` requests."""

    def __init__(self, after: int, script: Callable[[Received], Answer] = slow_box) -> None:
        self.after, self.script, self.reached = after, script, threading.Event()

    def __call__(self, received: Received) -> Answer:
        if received.index + 1 >= self.after:
            self.reached.set()
        return self.script(received)


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (128, 96))
    for i in range(FRAMES):
        writer.write(np.full((96, 128, 3), (4 * i) % 250, np.uint8))
    writer.release()
    return path


def annotate_command(video: Path, tmp_path: Path, urls: list[str]) -> list[str]:
    command = [sys.executable, "-m", "livecam", "annotate", str(video), "-o", str(tmp_path / "out.avi")]
    command += ["--json", str(tmp_path / "out.jsonl"), "--model", "t/1", "--api-key", KEY, "-q", "-v"]
    command += ["--timeout", "5"]
    for url in urls:
        command += ["--api-url", url]
    return command


def check_annotation(result: subprocess.CompletedProcess[str], tmp_path: Path) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    text = (tmp_path / "out.jsonl").read_text()
    assert KEY not in result.stdout + result.stderr + text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert not any("error" in line for line in lines)
    assert all(line["predictions"] for line in lines)
    return lines


@contextmanager
def annotation(video: Path, tmp_path: Path, urls: list[str]) -> Iterator[subprocess.Popen[str]]:
    """``livecam annotate`` running in the background; killed if the test leaves it running."""
    process = subprocess.Popen(
        annotate_command(video, tmp_path, urls),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def finished(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait (bounded) for the annotation to end; its exit status and output."""
    stdout, stderr = process.communicate(timeout=90)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_annotate_loses_no_frame_when_one_of_three_servers_is_killed(video: Path, tmp_path: Path) -> None:
    doomed = Trigger(after=4)
    with FaultServer(slow_box) as a, FaultServer(slow_box) as b, FaultServer(doomed) as c:
        with annotation(video, tmp_path, [a.url, b.url, c.url]) as process:
            assert doomed.reached.wait(WAIT_S)
            c.stop()  # mid-run: open requests are cut off, new connections refused
            result = finished(process)
    check_annotation(result, tmp_path)
    assert a.requests > 0 and b.requests > 0
    assert "server http://127.0.0.1" in result.stderr  # the per-server summary


@pytest.mark.slow
def test_annotate_sets_aside_a_server_that_answers_503_forever(video: Path, tmp_path: Path) -> None:
    with FaultServer(slow_box) as a, FaultServer(slow_box) as b, FaultServer(UNAVAILABLE) as sick:
        result = subprocess.run(
            annotate_command(video, tmp_path, [a.url, sick.url, b.url]),
            capture_output=True,
            text=True,
            timeout=90,
            env={"PATH": "/usr/bin:/bin"},
        )
    check_annotation(result, tmp_path)
    assert sick.requests < a.requests + b.requests
    assert "backing-off" in result.stderr


def test_annotate_rides_out_every_server_failing_for_a_while(video: Path, tmp_path: Path) -> None:
    start = Trigger(after=4)
    with FaultServer(start) as a, FaultServer(slow_box) as b:
        with annotation(video, tmp_path, [a.url, b.url]) as process:
            assert start.reached.wait(WAIT_S)
            a.script = b.script = UNAVAILABLE
            seen = a.requests + b.requests
            # Both fail until each has refused a retry after the first backoff.
            assert a.wait_for_requests(a.requests + 2, WAIT_S) and b.wait_for_requests(b.requests + 2, WAIT_S)
            assert a.requests + b.requests >= seen + 4
            a.script = b.script = slow_box
            result = finished(process)
    check_annotation(result, tmp_path)


# --- the live pipeline ---------------------------------------------------------------------------


class Watch:
    """Lets a test wait, without sleeping, for a condition checked on every displayed frame."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.banners: list[str | None] = []
        self.aside: list[str | None] = []
        self.pipe: LivePipeline | None = None

    def on_frame(self, _canvas: Image) -> None:
        assert self.pipe is not None
        with self.cond:
            self.banners.append(self.pipe.status.get("api"))
            self.aside.append(self.pipe.status.get("servers"))
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


def live(urls: list[str], watch: Watch, stop: threading.Event, in_flight: int = 1) -> LivePipeline:
    api = ApiConfig(urls[0], "test/1", api_key=KEY, connect_timeout=TIMEOUT, read_timeout=TIMEOUT, api_urls=tuple(urls))
    source = SyntheticSource(640, 360, 30, live=True)
    config = LiveConfig(in_flight=in_flight)
    pipe = LivePipeline(source, api, HeadlessDisplay(), config, on_frame=[watch.on_frame], stop=stop)
    watch.pipe = pipe
    return pipe


@pytest.fixture
def resources() -> Iterator[Resources]:
    with logs_as_text() as lines:
        before = Resources.now()
        yield before
        before.assert_released()
    assert lines and not any(KEY in line for line in lines)


def test_live_boxes_keep_coming_when_one_of_three_servers_is_killed(resources: Resources) -> None:
    watch = Watch()
    stop = threading.Event()
    with ExitStack() as stack:
        servers = [stack.enter_context(FaultServer(one_box)) for _ in range(3)]
        with live([s.url for s in servers], watch, stop) as pipe:
            display, stats = run_in_thread(pipe)
            try:
                assert watch.wait_for(lambda: servers[2].requests >= 3)
                servers[2].stop()
                ok_at_kill = pipe.stats.responses_ok
                assert watch.wait_for(lambda: pipe.status.get("servers") is not None)
                assert watch.wait_for(lambda: pipe.stats.responses_ok >= ok_at_kill + 30)
            finally:
                stop.set()
                display.join(WAIT_S)
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py
    assert not any(watch.banners), "the outage banner showed while two servers answered"
    rows = {row["url"]: row for row in stats["servers"]}
    killed = rows[servers[2].url]
    assert killed["failed"] >= 1 and killed["state"] == "backing-off"
    assert all(rows[s.url]["ok"] > 0 and rows[s.url]["state"] == "healthy" for s in servers[:2])
    assert KEY not in json.dumps(stats)


def test_live_sets_aside_a_server_that_answers_503_forever(resources: Resources) -> None:
    watch = Watch()
    stop = threading.Event()
    with FaultServer(one_box) as good, FaultServer(UNAVAILABLE) as sick:
        with live([sick.url, good.url], watch, stop) as pipe:
            display, stats = run_in_thread(pipe)
            try:
                assert watch.wait_for(lambda: pipe.stats.responses_ok >= 40 and sick.requests >= 2)
            finally:
                stop.set()
                display.join(WAIT_S)
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py
    assert not any(watch.banners)
    assert any(line is not None and "1 of 2 detection servers set aside" in line for line in watch.aside)
    rows = {row["url"]: row for row in stats["servers"]}
    # Backed off: at most one request per first-backoff step (plus the first two).
    assert rows[sick.url]["ok"] == 0 and rows[sick.url]["requests"] <= stats["duration_s"] / FIRST_BACKOFF_S + 2
    assert rows[good.url]["ok"] >= 40 and rows[good.url]["failed"] == 0


def test_live_recovers_when_every_server_is_down_then_back(resources: Resources) -> None:
    watch = Watch()
    stop = threading.Event()
    servers = [FaultServer(port=free_port()).start() for _ in range(2)]
    with live([s.url for s in servers], watch, stop) as pipe:
        display, stats = run_in_thread(pipe)
        try:
            assert watch.wait_for(lambda: pipe.stats.responses_ok >= 3)
            for server in servers:
                server.stop()
            failed = pipe.stats.responses_failed
            assert watch.wait_for(lambda: pipe.stats.responses_failed >= failed + 4 and watch.banners[-1] is not None)
            assert pipe.status.get("servers") is None  # every server fails: the banner, not the list
            for server in servers:
                server.start()
            up = max(s.starts[-1] for s in servers)
            ok = pipe.stats.responses_ok
            assert watch.wait_for(lambda: pipe.stats.responses_ok > ok and pipe.status.get("api") is None)
        finally:
            stop.set()
            display.join(WAIT_S)
            for server in servers:
                server.stop()
    # How soon: the retry schedule's cap, tested in test_faults_live.py (a wall clock here would
    # measure the machine's load).
    assert any(t > up for s in servers for t in s.arrivals)
    assert stats["displayed_frames"] >= 1


def test_live_command_line_takes_several_servers_and_reports_each(tmp_path: Path) -> None:
    stats_path = tmp_path / "stats.json"
    with FaultServer(one_box) as a, FaultServer(one_box) as b:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "livecam",
                "run",
                "synthetic:320x240@40:40",
                "--headless",
                "--api-url",
                a.url,
                "--api-url",
                b.url,
                "--model",
                "t/1",
                "--api-key",
                KEY,
                "--in-flight",
                "2",
                "--stats-json",
                str(stats_path),
                "-vv",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads(stats_path.read_text())
    assert KEY not in result.stdout + result.stderr + stats_path.read_text()
    assert [row["url"] for row in stats["servers"]] == [a.url, b.url]
    assert all(row["ok"] > 0 for row in stats["servers"])
    assert a.requests > 0 and b.requests > 0
