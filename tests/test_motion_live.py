"""Motion compensation in the live mode: the composer's use of carried boxes, the boxes log,
the options, and ``livecam run`` end to end over loopback HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stub_api import Reply, Seen, StubApi

from livecam.errors import ConfigError
from livecam.frames import Frame
from livecam.live.boxes_log import BoxesLog, line
from livecam.live.compose import MAX_AHEAD, FrameComposer
from livecam.live.slot import LatestSlot
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.motion import Carried
from livecam.overlay import OverlayStyle, label_text
from livecam.predictions import Prediction, Predictions
from livecam.public.options import LABELS, MOTION, check_flag, label_style

KEY = "rf_SECRETKEY_motion_0123"
BOX = Prediction(10, 20, 50, 60, 0.875, "cat", track_id=4)


def composer(motion: LatestSlot[Carried] | None, boxes_log: BoxesLog | None = None) -> tuple[FrameComposer, Any]:
    predictions: LatestSlot[Predictions] = LatestSlot()
    predictions.put(Predictions(items=(BOX,)).for_frame(0, 0.0, 0))
    stats = StatsRecorder()
    made = FrameComposer(
        predictions,
        StatusBoard(),
        stats,
        OverlayStyle(),
        max_age=10.0,
        detecting=True,
        hud=True,
        clock=lambda: 0.5,
        motion=motion,
        boxes_log=boxes_log,
    )
    return made, predictions


def frame(index: int) -> Frame:
    return Frame(index, np.zeros((120, 160, 3), np.uint8), 0.0)


def carried_at(index: int, dx: float) -> Carried:
    answer = Predictions(items=(BOX,)).for_frame(0, 0.0, 0)
    moved = Prediction(BOX.x1 + dx, BOX.y1, BOX.x2 + dx, BOX.y2, BOX.confidence, BOX.class_name, track_id=4)
    return Carried(index, index, answer, (moved,), ((2.0, 0.0),))


def test_the_display_draws_carried_boxes_a_frame_ahead_by_their_velocity(tmp_path: Path) -> None:
    slot: LatestSlot[Carried] = LatestSlot()
    slot.put(carried_at(5, 10.0))
    log = BoxesLog(tmp_path / "boxes.jsonl")
    made, _ = composer(slot, log)
    made.compose(frame(6), new=True)
    log.close()
    [entry] = [json.loads(text) for text in (tmp_path / "boxes.jsonl").read_text().splitlines()]
    assert entry["frame"] == 6 and entry["from_frame"] == 0 and entry["age_ms"] == 500.0
    assert entry["predictions"] == [
        {"x": 42.0, "y": 40.0, "width": 40.0, "height": 40.0, "class": "cat", "confidence": 0.875, "track_id": 4}
    ]
    assert (made.compensated_frames, made.skipped_frames) == (1, 0)


def test_a_motion_thread_too_far_behind_skips_compensation_not_the_frame(tmp_path: Path) -> None:
    slot: LatestSlot[Carried] = LatestSlot()
    slot.put(carried_at(5, 10.0))
    log = BoxesLog(tmp_path / "boxes.jsonl")
    made, _ = composer(slot, log)
    made.compose(frame(6 + MAX_AHEAD), new=True)
    log.close()
    [entry] = [json.loads(text) for text in (tmp_path / "boxes.jsonl").read_text().splitlines()]
    assert entry["predictions"][0]["x"] == 30.0  # where it was detected
    assert (made.compensated_frames, made.skipped_frames) == (0, 1)
    assert "motion skipped" in made._hud_lines(0.5, None)[0]


def test_without_motion_the_hud_says_so_and_answers_are_drawn_as_detected() -> None:
    made, _ = composer(None)
    made.compose(frame(3), new=True)
    assert "motion off" in made._hud_lines(0.5, None)[0]
    assert made.compensated_frames == 0


def test_a_log_line_is_roboflow_centre_boxes() -> None:
    assert json.loads(line(3, None, None, ())) == {"frame": 3, "from_frame": None, "age_ms": None, "predictions": []}


def test_a_full_disk_is_one_message_and_the_display_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    log = BoxesLog(Path("/dev/full"), buffer_lines=8)
    for index in range(50):
        log.write(index, 0, 1.0, (BOX,))  # never raises nor blocks, however many are offered
    log.close()
    assert log.failed is not None and log.lines + log.dropped == 50
    assert [r.message for r in caplog.records if "boxes log" in r.message] == [
        f"the boxes log /dev/full stopped: {log.failed} (the display goes on)"
    ]


def test_a_closed_pipe_is_one_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    log = BoxesLog(fifo)
    os.close(reader)
    for index in range(5):
        log.write(index, None, None, ())
    log.close()
    assert log.failed is not None and log.stats().failed == log.failed
    assert len([r for r in caplog.records if "boxes log" in r.message]) == 1


def test_an_unwritable_boxes_log_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="--boxes-log: cannot write"):
        BoxesLog(tmp_path / "missing" / "boxes.jsonl")


@pytest.mark.parametrize(
    ("given", "parts"),
    [
        ("on", ("class", "confidence")),
        ("off", ()),
        ("none", ()),
        ("id,class", ("class", "id")),
        ("class,confidence,id", ("class", "confidence", "id")),
        (True, ("class", "confidence")),
    ],
)
def test_label_parts(given: object, parts: tuple[str, ...]) -> None:
    style = label_style(check_flag(LABELS, given))
    shown = tuple(
        name
        for name, on in (
            ("class", style.show_class),
            ("confidence", style.show_confidence),
            ("id", style.show_track_id),
        )
        if on and style.labels
    )
    assert shown == parts


def test_label_text_shows_the_track() -> None:
    assert label_text(BOX, label_style(("class", "id"))) == "cat #4"
    assert label_text(BOX, label_style(True)) == "cat 0.88"


def test_bad_motion_and_label_values_are_clear_errors() -> None:
    assert check_flag(MOTION, "off") is False and check_flag(MOTION, True) is True
    with pytest.raises(ConfigError, match="--motion: must be on or off"):
        check_flag(MOTION, "maybe")
    with pytest.raises(ConfigError, match="--labels: must be none, on or a comma list of class, confidence, id"):
        check_flag(LABELS, "class,colour")


def moving_box(seen: Seen) -> Reply:
    width, height = seen.image_size or (320, 240)
    box = {"x": width / 2, "y": height / 2, "width": width / 4, "height": height / 4, "confidence": 0.9, "class": "a"}
    return Reply(body={"image": {"width": width, "height": height}, "predictions": [box]})


def run_livecam(api: StubApi, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    stats_path, boxes_path = tmp_path / "stats.json", tmp_path / "boxes.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            "synthetic:320x240@30:45",
            "--headless",
            "--api-url",
            api.url,
            "--model",
            "test/1",
            "--api-key",
            KEY,
            "--stats-json",
            str(stats_path),
            "--boxes-log",
            str(boxes_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    text = boxes_path.read_text()
    return json.loads(stats_path.read_text()), [json.loads(t) for t in text.splitlines()], text + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("motion", ["on", "off"])
def test_run_logs_one_line_per_displayed_frame_over_http(tmp_path: Path, motion: str) -> None:
    with StubApi(latency=0.1, script=moving_box) as api:
        stats, lines, text = run_livecam(api, tmp_path, "--motion", motion, "--labels", "class,id")
    assert len(lines) == stats["displayed_frames"] == stats["boxes_log"]["lines"]
    assert stats["boxes_log"]["dropped"] == 0
    frames = [entry["frame"] for entry in lines]
    assert frames == sorted(set(frames)) and frames[0] >= 0
    answered = [entry for entry in lines if entry["from_frame"] is not None]
    assert answered and all(entry["from_frame"] <= entry["frame"] for entry in answered)
    assert all(entry["predictions"][0]["class"] == "a" for entry in answered if entry["predictions"])
    assert KEY not in text
    section = stats["motion"]
    assert section["enabled"] is (motion == "on")
    assert set(section) >= {"enabled", "compensated_frames", "cost_ms", "tracks_started"}
    if motion == "on":
        assert section["tracks_started"] >= 1 and section["compensated_frames"] >= 1
        ids = {entry["predictions"][0]["track_id"] for entry in answered if entry["predictions"]} - {None}
        assert ids and all(isinstance(i, int) and i >= 1 for i in ids)
    else:
        assert section["compensated_frames"] == 0 and section["cost_ms"] == {"p50": None, "p95": None}


def test_the_kiosk_file_takes_motion_and_label_parts(tmp_path: Path) -> None:
    import argparse

    from livecam.cli.kiosk import add_arguments, live_config, load_kiosk_config

    path = tmp_path / "kiosk.toml"
    path.write_text('[overlay]\nmotion = false\nlabels = ["id", "class"]\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = live_config(load_kiosk_config(parser.parse_args(["--config", str(path)])))
    assert config.motion is False
    assert (config.style.show_class, config.style.show_confidence, config.style.show_track_id) == (True, False, True)
    flags = parser.parse_args(["--config", str(path), "--motion", "on", "--labels", "none"])
    config = live_config(load_kiosk_config(flags))
    assert config.motion is True and config.style.labels is False


def test_boxes_keep_their_class_colour_unless_ids_are_shown() -> None:
    from livecam.overlay import class_color, draw_predictions, track_color

    def colours(style: OverlayStyle) -> set[tuple[int, ...]]:
        image = np.zeros((120, 160, 3), np.uint8)
        draw_predictions(image, Predictions(items=(BOX,)), style)
        return {tuple(int(v) for v in pixel) for pixel in image.reshape(-1, 3)}

    assert class_color("cat") in colours(OverlayStyle(labels=False, thickness=2))
    shown = colours(label_style(("id",), base=OverlayStyle(thickness=2)))
    assert track_color(4) in shown and class_color("cat") not in shown
