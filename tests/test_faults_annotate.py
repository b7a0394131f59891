"""``livecam annotate`` against failing APIs: every failure is recorded and counted in the JSON
Lines, and the output video stays playable with every input frame."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from faults.servers import CLOSE, HANG, RESET, Answer, FaultServer, Received, always, one_box

FRAMES = 6


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "in.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (128, 96))
    for i in range(FRAMES):
        writer.write(np.full((96, 128, 3), 30 * i, np.uint8))
    writer.release()
    return path


def every_other(bad: Answer) -> Callable[[Received], Answer]:
    return lambda got: bad if got.index % 2 == 0 else one_box(got, 128, 96)


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def annotate(
    video: Path, tmp_path: Path, url: str, timeout: float = 0.5
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    out, jsonl = tmp_path / "out.avi", tmp_path / "out.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livecam",
            "annotate",
            str(video),
            "-o",
            str(out),
            "--json",
            str(jsonl),
            "--api-url",
            url,
            "--model",
            "t/1",
            "--timeout",
            str(timeout),
            "--in-flight",
            str(FRAMES),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert "Traceback" not in result.stderr
    assert frame_count(out) == FRAMES
    return result, [json.loads(line) for line in jsonl.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad",
    [RESET, CLOSE, Answer.json({"m": "x"}, 503, (("Retry-After", "0"),)), Answer.text(200, "not json")],
    ids=["reset", "close", "503", "not-json"],
)
def test_intermittent_failures_are_retried(video: Path, tmp_path: Path, bad: Answer) -> None:
    with FaultServer(every_other(bad)) as server:
        # A generous timeout: good answers must not time out on a loaded machine.
        result, lines = annotate(video, tmp_path, server.url, timeout=5)
    assert result.returncode == 0, result.stderr
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert not any("error" in line for line in lines)


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad", [Answer.json({"message": "down"}, 500), HANG, Answer(200, filler=50 << 20)], ids=["500", "hang", "50MB"]
)
def test_lasting_failures_are_recorded_and_counted(video: Path, tmp_path: Path, bad: Answer) -> None:
    with FaultServer(always(bad)) as server:
        result, lines = annotate(video, tmp_path, server.url)
    assert result.returncode == 1
    assert [line["frame"] for line in lines] == list(range(FRAMES))
    assert all(isinstance(line.get("error"), str) for line in lines)
    assert f"{FRAMES} of {FRAMES} requests failed" in result.stderr
