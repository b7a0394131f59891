"""What a new user meets: output paths checked before work, close signals that keep the stats,
precise messages, and the scripts as the README shows them. Real processes, loopback HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from stub_api import Reply, StubApi

ROOT = Path(__file__).resolve().parent.parent
KEY = "rf_USABILITYKEY_0123456789"
ENV = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}


def livecam(*args: object, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livecam", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        cwd=cwd,
    )


def write_video(path: Path, frames: int = 8) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, (96, 64))
    for index in range(frames):
        writer.write(np.full((64, 96, 3), index * 20 % 255, np.uint8))
    writer.release()
    return path


def leftovers(folder: Path) -> list[str]:
    """Hidden partial files an interrupted or refused run left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "in.avi")


# --- every output path checked before work starts -------------------------------------------------


@pytest.mark.parametrize("json_target", ["/dev/full", "/sys/livecam-test.jsonl"])
def test_annotate_refuses_an_unwritable_json_before_any_work(tmp_path: Path, video: Path, json_target: str) -> None:
    if not Path(json_target).parent.exists():
        pytest.skip("needs Linux /dev and /sys")
    with StubApi() as api:
        result = livecam(
            "annotate", video, "-o", tmp_path / "out.mp4", "--json", json_target, "--api-url", api.url, "--model", "t/1"
        )
        assert api.requests == 0
    assert result.returncode == 2, result.stderr
    assert f"--json: cannot write {json_target}" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out.mp4").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "flag,target",
    [("--stats-json", "/dev/full"), ("--record", "/sys/livecam-test.mp4"), ("--boxes-log", "/dev/full")],
)
def test_run_refuses_an_unwritable_output_before_any_work(flag: str, target: str) -> None:
    with StubApi() as api:
        result = livecam(
            "run", "synthetic:96x64@30:5", "--headless", "--api-url", api.url, "--model", "t/1", flag, target
        )
        assert api.requests == 0
    assert result.returncode == 2, result.stderr
    assert f"{flag}: cannot write {target}" in result.stderr and "Traceback" not in result.stderr
    assert "source:" not in result.stderr  # nothing was started


@pytest.mark.parametrize("status", [401, 404])
def test_a_rejected_run_leaves_no_video_and_the_old_json_as_it_was(tmp_path: Path, video: Path, status: int) -> None:
    out, jsonl = tmp_path / "out.mp4", tmp_path / "p.jsonl"
    jsonl.write_text('{"frame": 0, "kept": true}\n')
    with StubApi(script=lambda seen: Reply(status, {"message": "no"})) as api:
        result = livecam("annotate", video, "-o", out, "--json", jsonl, "--api-url", api.url, "--model", "t/1")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "nothing written" in result.stderr
    assert not out.exists()
    assert jsonl.read_text() == '{"frame": 0, "kept": true}\n'
    assert leftovers(tmp_path) == []


def test_a_finished_run_replaces_the_old_files(tmp_path: Path, video: Path) -> None:
    out, jsonl = tmp_path / "out.mp4", tmp_path / "p.jsonl"
    out.write_bytes(b"old")
    jsonl.write_text("old\n")
    with StubApi() as api:
        result = livecam("annotate", video, "-o", out, "--json", jsonl, "-q", "--api-url", api.url, "--model", "t/1")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == list(range(8))
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 8
    capture.release()
    assert leftovers(tmp_path) == []


# --- close signals --------------------------------------------------------------------------------


class Watched:
    """A child process whose stderr is read line by line; :meth:`wait_for` waits for a line."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # the end
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: any(text in line for line in self.lines) or "" in self.lines, timeout)

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code, "".join(self.lines)


@pytest.fixture
def watched() -> Iterator[list[Watched]]:
    started: list[Watched] = []
    yield started
    for child in started:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait(10)


def never_answering() -> StubApi:
    """An API that holds every request: once one was sent, stopping waits out the bounded join of
    the sender thread, so a second signal sent after the first was handled lands during the shutdown."""
    return StubApi(latency=120)


def interrupt_twice(child: Watched) -> tuple[int, str]:
    """Ctrl-C, and again once the first one was handled (two at once would be one to Python)."""
    child.proc.send_signal(signal.SIGINT)
    assert child.wait_for("stopping (SIGINT)")
    child.proc.send_signal(signal.SIGINT)
    return child.finish()


@pytest.mark.slow
@pytest.mark.parametrize("frames", ["", ":3"], ids=["endless", "ending-at-once"])
def test_two_close_signals_still_write_the_stats(tmp_path: Path, watched: list[Watched], frames: str) -> None:
    stats = tmp_path / "stats.json"
    with never_answering() as api:
        child = Watched(
            [
                sys.executable,
                "-m",
                "livecam",
                "run",
                f"synthetic:96x64@30{frames}",
                "--headless",
                "--api-url",
                api.url,
                "--model",
                "t/1",
                "--timeout",
                "60",
                "--stats-json",
                str(stats),
            ]
        )
        watched.append(child)
        assert child.wait_for("source:") and api.wait_for_requests(1, timeout=60)
        code, stderr = interrupt_twice(child)
    # 130 only if the second signal came after the stats were written (a stalled machine).
    assert code in (0, 130), stderr
    assert "Traceback" not in stderr
    assert json.loads(stats.read_text())["source_frames"] >= 1


@pytest.mark.slow
def test_two_close_signals_stop_the_kiosk_cleanly(watched: list[Watched]) -> None:
    with never_answering() as api:
        child = Watched(
            [
                sys.executable,
                "-m",
                "livecam",
                "kiosk",
                "--source",
                "synthetic:96x64@30",
                "--headless",
                "--api-url",
                api.url,
                "--model",
                "t/1",
                "--timeout",
                "60",
            ]
        )
        watched.append(child)
        assert child.wait_for("kiosk started") and api.wait_for_requests(1, timeout=60)
        code, stderr = interrupt_twice(child)
    assert code in (0, 130), stderr
    assert "kiosk stopped" in stderr and "Traceback" not in stderr


def test_a_third_close_signal_quits_at_once_with_130() -> None:
    code = (
        "import os, signal, threading\n"
        "from livecam.cli.common import stop_on_signals\n"
        "stop = threading.Event()\n"
        "with stop_on_signals(stop):\n"
        "    for _ in range(3):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    threading.Event().wait(60)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 130
    assert "already stopping" in result.stderr and "quitting at once" in result.stderr


# --- precise messages -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "synthetic", "--headlss"], "did you mean --headless?"),
        (["annotate", "in.mp4", "-o", "out.mp4", "--jsn", "p.jsonl"], "did you mean --json?"),
        (["run", "synthetic", "--headless", "--labels", "foo"], "(got 'foo')"),
        (["serve", "--classes", "names.txt"], "--classes names.txt names the classes of --model"),
        (["run", "synthetic", "--headless", "--model", "my-project/3"], "needs your API key"),
    ],
)
def test_usage_errors_say_precisely_what_is_wrong(args: list[str], message: str) -> None:
    result = livecam(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_folder_as_source_says_it_is_a_folder(tmp_path: Path) -> None:
    result = livecam("run", tmp_path, "--headless", "--api-url", "http://127.0.0.1:9", "--model", "t/1")
    assert result.returncode == 1
    assert "is a folder, not a video file" in result.stderr and "Traceback" not in result.stderr


def test_a_confidence_below_one_is_read_as_a_fraction_and_says_so(tmp_path: Path) -> None:
    with StubApi() as api:
        result = livecam(
            "run", "synthetic:96x64@30:3", "--headless", "--api-url", api.url, "--model", "t/1", "--confidence", "0.9"
        )
        sent = api.seen[-1].query["confidence"] if api.seen else None
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("--confidence 0.9 read as 90 %") == 1
    assert sent == "90"
    help_text = livecam("run", "--help").stdout
    assert "a value below 1 is read as a fraction" in " ".join(help_text.split())


# --- the scripts as the README shows them ---------------------------------------------------------


@pytest.mark.slow
def test_run_sh_works_from_another_folder_with_the_users_paths(tmp_path: Path) -> None:
    write_video(tmp_path / "mine.avi", frames=3)
    with StubApi() as api:
        result = subprocess.run(
            [
                str(ROOT / "scripts" / "run.sh"),
                "mine.avi",
                "--headless",
                "--api-url",
                api.url,
                "--model",
                "t/1",
                "--stats-json",
                "stats.json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=ENV,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "stats.json").read_text())["source_frames"] == 3
    assert not (ROOT / "stats.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("script", ["soak.py", "bench.py", "quantize_model.py", "sequential_baseline.py"])
def test_scripts_run_as_shown_whatever_python_starts_them(script: str) -> None:
    path = ROOT / "scripts" / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    assert path.read_text().startswith("#!/usr/bin/env python3\n")
    for command in ([str(path), "--help"], ["/usr/bin/python3", str(path), "--help"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=ENV, cwd="/")
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout
