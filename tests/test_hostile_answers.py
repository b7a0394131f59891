"""Hostile strings in answers, through real livecam processes against a hostile API on loopback.

A lone surrogate, control characters, 200 KB keypoint names, the key echoed back as a class
name and a server message that forges a log line: the video keeps playing, every output is
written, parses, holds no key and no control character, and the log stays one line per record.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import cv2
import pytest
from hostile_api import hostile_api

from livecam.collect.store import items

REPO = Path(__file__).resolve().parent.parent
KEY = "rfKEY_hostile_0123456789"
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def livecam(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livecam", *args], capture_output=True, text=True, timeout=timeout, env=ENV
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 12 frames of sample_videos/vtest.avi."""
    source = REPO / "sample_videos" / "vtest.avi"
    if not source.is_file():
        pytest.skip("sample_videos/vtest.avi not present")
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    reader = cv2.VideoCapture(str(source))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (768, 576))
    for _ in range(12):
        ok, frame = reader.read()
        assert ok
        writer.write(frame)
    writer.release()
    reader.release()
    return path


def assert_clean_log(stderr: str) -> None:
    """No traceback, no raw escape, no forged record: every line is a record or its continuation."""
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "\x1b" not in stderr and "\r" not in stderr
    for line in stderr.splitlines():
        assert not line.startswith("12:00:00 ERROR livecam: injected"), stderr[-3000:]
    assert KEY not in stderr


def assert_clean_text(text: str) -> None:
    assert KEY not in text and KEY[:12] not in text
    assert not CONTROL.search(text)


def class_names(answer: dict[str, Any]) -> list[str]:
    names = []
    for p in answer["predictions"]:
        names.append(p["class"])
        names += [k["class"] for k in p.get("keypoints", ())]
    return names


def test_run_keeps_playing_and_writes_clean_outputs(clip: Path, tmp_path: Path) -> None:
    stats, boxes, collected = tmp_path / "stats.json", tmp_path / "boxes.jsonl", tmp_path / "collected"
    with hostile_api() as api:
        result = livecam(
            "run",
            str(clip),
            "--headless",
            "--api-url",
            api.url,
            "--model",
            "t/1",
            "--api-key",
            KEY,
            "--stats-json",
            str(stats),
            "--boxes-log",
            str(boxes),
            "--collect",
            str(collected),
            "--collect-strategy",
            "low-confidence,random",
            "--collect-random",
            "1",
            "--collect-min-difference",
            "0",
            "--motion",
            "off",
            "-v",
        )
        assert api.requests >= 1
    assert result.returncode == 0, result.stderr[-3000:]
    assert_clean_log(result.stderr)
    data = json.loads(stats.read_text())
    assert data["source_frames"] == 12 and data["displayed_frames"] >= 1, data
    assert data["responses_ok"] >= 1, data
    assert_clean_text(stats.read_text())
    assert all(len(name) <= 64 for name in data["detections"]), data["detections"]
    for line in boxes.read_text().splitlines():
        json.loads(line)
    assert_clean_text(boxes.read_text())
    saved = items(collected)
    assert saved, "nothing collected"
    for item in saved:
        assert item.annotation is not None
        for path in (item.annotation, item.sidecar):
            text = path.read_text(encoding="utf-8")
            assert_clean_text(text)
            assert len(text) < 100_000  # keypoint names are capped
        ET.parse(item.annotation)  # well-formed XML 1.0
        item.read_sidecar()


def test_annotate_writes_every_line(clip: Path, tmp_path: Path) -> None:
    jsonl = tmp_path / "out.jsonl"
    with hostile_api() as api:
        result = livecam(
            "annotate",
            str(clip),
            "-o",
            str(tmp_path / "out.mp4"),
            "--json",
            str(jsonl),
            "--api-url",
            api.url,
            "--model",
            "t/1",
            "--api-key",
            KEY,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert_clean_log(result.stderr)
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    text = jsonl.read_text(encoding="utf-8")
    assert_clean_text(text)
    assert len(text) < 12 * 100_000
    names = [name for line in lines for name in class_names(json.loads(line))]
    assert "bad\ufffdname" in names and "ctl[31mred[0m" in names and "***" in names
    assert any(name.startswith("x" * 50) and name.endswith("***\u2026") for name in names), names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def web_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


@pytest.mark.slow
def test_kiosk_keeps_showing_frames(tmp_path: Path) -> None:
    port = free_port()
    with hostile_api() as api:
        kiosk = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "livecam",
                "kiosk",
                "--source",
                "synthetic:320x240@15",
                "--headless",
                "--web",
                f"127.0.0.1:{port}",
                "--api-url",
                api.url,
                "--model",
                "t/1",
                "--api-key",
                KEY,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        try:
            # Each answer is drawn before the next few requests go out; after 10 hostile answers
            # and 10 more, a display that had failed would have restarted or stopped counting.
            assert api.wait_for_requests(10, timeout=60)
            first = web_stats(port)
            assert api.wait_for_requests(20, timeout=60)
            second = web_stats(port)
        finally:
            kiosk.send_signal(signal.SIGTERM)
            _, stderr = kiosk.communicate(timeout=30)
    assert second["restarts"] == 0, (second, stderr[-3000:])
    assert second["displayed_frames"] > first["displayed_frames"] > 0, (first, second)
    assert_clean_log(stderr)
    assert_clean_text(json.dumps(second))
