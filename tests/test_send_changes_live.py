"""``--send changes`` and the request budget through ``livecam run``, against a real loopback detector.

The detector (scripts/bench_support/blob_server.py, its own process) boxes the coloured objects of
each image it is sent, so what a call would answer is known for every frame. The assertions are
counts of calls and what was drawn, never rates or durations.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from bench_support.blobs import FPS, scene_frames, write_clip  # noqa: E402


@pytest.fixture(scope="module")
def blob_api() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "bench_support" / "blob_server.py"), "--latency-ms", "50"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(clip: Path, url: str, tmp_path: Path, *flags: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    stats, boxes = tmp_path / "stats.json", tmp_path / "boxes.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "livecam", "run", str(clip), "--headless", "--api-url", url, "--model", "blobs/1"]
        + ["--stats-json", str(stats), "--boxes-log", str(boxes), *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in boxes.read_text().splitlines()]
    return json.loads(stats.read_text()), lines


@pytest.mark.slow
def test_a_still_scene_costs_one_call_and_a_new_object_one_more(blob_api: str, tmp_path: Path) -> None:
    appear_at = round(1.5 * FPS)
    clip = tmp_path / "still.avi"
    write_clip(clip, scene_frames(still_s=3.0, moving_s=0.0, cycles=1, appear_at=appear_at))
    stats, lines = run(clip, blob_api, tmp_path, "--send", "changes", "--refresh", "600")
    assert stats["send"] == "changes"
    assert stats["requests_by_reason"] == {"first": 1, "changed": 1}, stats
    assert stats["requests_sent"] == 2
    assert stats["requests_skipped"]["unchanged"] > 0
    assert stats["estimated_credits"] == pytest.approx(2 * 0.1 / 500)
    before = [line for line in lines if line["frame"] < appear_at and line["predictions"]]
    assert before and all(p["class"] != "blue" for line in before for p in line["predictions"])
    boxed = [line["frame"] for line in lines if any(p["class"] == "blue" for p in line["predictions"])]
    assert boxed and boxed[0] >= appear_at
    # once boxed, the new object stays boxed to the end: the answer was never hidden as too old
    assert boxed == [line["frame"] for line in lines if line["frame"] >= boxed[0]]


@pytest.mark.slow
def test_every_frame_mode_is_unchanged_and_a_budget_caps_it(blob_api: str, tmp_path: Path) -> None:
    clip = tmp_path / "moving.avi"
    write_clip(clip, scene_frames(still_s=0.0, moving_s=2.0, cycles=1))
    stats, _ = run(clip, blob_api, tmp_path, "--send", "every", "--max-requests-per-minute", "60")
    assert stats["send"] == "every"
    # one call a second at most: the first at once, then one per whole second of the run
    assert 1 <= stats["requests_sent"] <= 1 + int(stats["duration_s"])
    assert stats["requests_skipped"]["budget"] > 0
    assert stats["requests_skipped"]["unchanged"] == 0


@pytest.mark.slow
def test_the_python_run_takes_the_send_options(blob_api: str, tmp_path: Path) -> None:
    import livecam

    clip = tmp_path / "still.avi"
    write_clip(clip, scene_frames(still_s=1.0, moving_s=0.0, cycles=1))
    stats = livecam.run(str(clip), api_url=blob_api, model="blobs/1", send="changes", refresh=600)
    assert stats.send == "changes"
    assert stats.requests_sent == 1 and stats.requests_by_reason == {"first": 1}
    assert stats.requests_skipped.unchanged > 0
    with pytest.raises(ValueError, match="send"):
        livecam.run(str(clip), api_url=blob_api, model="blobs/1", send="sometimes")
