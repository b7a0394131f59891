"""``--collect DIR`` as users run it: ``livecam run`` and ``livecam annotate`` against a loopback API."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from samples import SAMPLES, sample_frame
from stub_api import Reply, Seen, StubApi, one_box

from livecam.collect import items

KEY = "rf_COLLECTKEY_24680"


def livecam(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "livecam", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def run(api: StubApi, source: str | Path, collect: Path, stats: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return livecam(
        "run", source, "--headless", "--api-url", api.url, "--model", "test/1", "--api-key", KEY,
        "--stats-json", stats, "--collect", collect, *extra,
    )  # fmt: skip


def static_clip(path: Path, frames: int = 75) -> Path:
    """A parked scene: one real plaza frame with fresh sensor noise in every frame, at 25 fps."""
    still = sample_frame("vtest.avi", 100)
    rng = np.random.default_rng(3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 25, (still.shape[1], still.shape[0]))
    for _ in range(frames):
        writer.write(np.clip(still.astype(np.int16) + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


@pytest.mark.slow
def test_a_static_camera_yields_a_handful_of_frames_not_hundreds(tmp_path: Path) -> None:
    stats_path = tmp_path / "stats.json"
    with StubApi() as api:  # a person in every answer: the classes strategy picks every frame
        done = run(
            api, static_clip(tmp_path / "parked.avi"), tmp_path / "collected", stats_path,
            "--collect-strategy", "all", "--collect-classes", "person",
            "--collect-max-per-minute", "0", "--collect-max-per-hour", "0",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py
    assert 1 <= stats["collected"] <= 3, stats
    assert stats["collect_skipped"]["duplicate"] >= 20, stats
    assert stats["collected_by_strategy"]["classes"] == stats["collected"]
    assert len(items(tmp_path / "collected")) == stats["collected"]


@pytest.mark.slow
def test_a_moving_scene_is_collected_up_to_the_limits_in_video_time(tmp_path: Path) -> None:
    collected = tmp_path / "collected"
    with StubApi() as api:
        done = livecam(
            "annotate", SAMPLES / "bikes.mp4", "-o", tmp_path / "out.mp4", "--every", "2",
            "--api-url", api.url, "--model", "test/1", "--in-flight", "4",
            "--collect", collected, "--collect-strategy", "classes", "--collect-classes", "person",
            "--collect-max-per-minute", "4",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # 10 s of video: the minute's burst of 4, and a refill of 4 * 10 / 60 < 1.
    saved = items(collected)
    assert len(saved) == 4, done.stderr
    assert "collected 4 frames" in done.stderr and "over the limits skipped" in done.stderr
    for item in saved:
        sidecar = json.loads(item.sidecar.read_text())
        original = sample_frame("bikes.mp4", sidecar["frame"])
        image = cv2.imread(str(item.image))
        assert image is not None and image.shape == original.shape
        # The frame as read, not the annotated output the writer draws on it afterwards.
        assert float(np.abs(image.astype(np.int16) - original).mean()) < 3.0
        assert sidecar["video_time_s"] == pytest.approx(sidecar["frame"] / 25, abs=0.05)


def test_low_confidence_asks_for_boxes_under_the_threshold_but_shows_only_those_above(tmp_path: Path) -> None:
    confidences: list[str] = []

    def two_boxes(seen: Seen) -> Reply:
        confidences.append(seen.query["confidence"])
        reply = one_box(seen)
        assert isinstance(reply.body, dict)
        faint = {**reply.body["predictions"][0], "confidence": 0.3, "class": "dog"}
        reply.body["predictions"].append(faint)
        return reply

    stats_path = tmp_path / "stats.json"
    with StubApi(script=two_boxes) as api:
        done = run(api, "synthetic:320x240@30:30", tmp_path / "c", stats_path, "--collect-band", "0.25-0.5")
    assert done.returncode == 0, done.stderr
    stats = json.loads(stats_path.read_text())
    assert set(confidences) == {"25"}
    assert stats["detections"] == {"person": stats["responses_ok"]}  # the dog is never shown
    assert stats["collected_by_strategy"]["low-confidence"] >= 1
    sidecar = json.loads(items(tmp_path / "c")[0].sidecar.read_text())
    assert [p["class"] for p in sidecar["below_threshold"]] == ["dog"]


@contextlib.contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """A folder nobody can write in, even root (immutable), or a skip where that cannot be made."""
    path.mkdir()
    path.chmod(0o555)
    immutable = False
    try:
        probe = path / "probe"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except PermissionError:
            pass
        else:  # root ignores modes: make the folder immutable instead
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
                pytest.skip("cannot make a read-only folder here")
            immutable = True
        yield path
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        path.chmod(0o755)


@pytest.mark.parametrize("problem", ["read-only", "full"])
def test_an_unusable_folder_is_one_clear_message_and_the_video_goes_on(tmp_path: Path, problem: str) -> None:
    stats_path = tmp_path / "stats.json"
    with contextlib.ExitStack() as stack:
        extra: tuple[str, ...]
        if problem == "read-only":
            folder, extra = stack.enter_context(read_only_folder(tmp_path / "ro")), ()
        else:  # a floor above any real disk's free space is a full disk
            folder, extra = tmp_path / "full", ("--collect-min-free-mb", "1000000000")
        api = stack.enter_context(StubApi())
        done = run(api, "synthetic:320x240@30:45", folder, stats_path, "--collect-strategy", "random",
                   "--collect-random", "1", *extra)  # fmt: skip
    assert done.returncode == 0, done.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py
    assert stats["responses_ok"] > 0 and stats["collected"] == 0
    lines = [line for line in done.stderr.splitlines() if "collection stopped" in line]
    assert len(lines) == 1, done.stderr
    assert ("cannot write to" if problem == "read-only" else "MB free for") in lines[0]
    assert "the video goes on" in lines[0] and "Traceback" not in done.stderr


def test_the_kiosk_collects_with_its_collect_table_and_saves_the_queue_when_stopped(tmp_path: Path) -> None:
    import signal

    config = tmp_path / "kiosk.toml"
    collected = tmp_path / "collected"
    config.write_text(
        f'[source]\ninput = "synthetic:320x240@30"\n[display]\nheadless = true\n'
        f'[collect]\ndir = "{collected}"\nstrategy = ["random"]\nrandom = 1.0\n',
        encoding="utf-8",
    )
    with StubApi() as api:
        proc = subprocess.Popen(
            [sys.executable, "-m", "livecam", "kiosk", "--config", str(config), "--api-url", api.url]
            + ["--model", "test/1", "--api-key", KEY],
            env={"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert api.wait_for_requests(5, timeout=60)
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "collecting frames to" in stderr and KEY not in stderr
    saved = items(collected)
    assert len(saved) >= 1 and f"collected {len(saved)} frame" in stderr
    assert json.loads(saved[0].sidecar.read_text())["strategies"] == ["random"]


def test_keyframes_ask_lower_but_write_and_collect_only_what_was_asked_for(tmp_path: Path) -> None:
    confidences: list[str] = []

    def two_boxes(seen: Seen) -> Reply:
        confidences.append(seen.query["confidence"])
        reply = one_box(seen)
        assert isinstance(reply.body, dict)
        reply.body["predictions"].append({**reply.body["predictions"][0], "confidence": 0.3, "class": "dog"})
        return reply

    collected, jsonl = tmp_path / "collected", tmp_path / "out.jsonl"
    with StubApi(script=two_boxes) as api:
        done = livecam(
            "annotate", SAMPLES / "bikes.mp4", "-o", tmp_path / "out.mp4", "--json", jsonl, "--keyframes", "8",
            "--api-url", api.url, "--model", "test/1",
            "--collect", collected, "--collect-strategy", "classes", "--collect-classes", "person",
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert set(confidences) == {"20"}  # keyframes are asked down to 0.20, for tracking only
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 250 and any("from_keyframes" in r for r in records)
    assert {p["class"] for r in records for p in r["predictions"]} == {"person"}  # never the dog at 0.3
    saved = items(collected)
    assert saved
    assert all(json.loads(item.sidecar.read_text())["below_threshold"] == [] for item in saved)
