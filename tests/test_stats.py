"""The typed statistics and their one serialiser: the documented names, optional and flattened sections."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from json_view import loose

from livecam.errors import OutputError
from livecam.predictions import Prediction, Predictions, prediction_json
from livecam.stats import (
    FLATTENED,
    OPTIONAL,
    BoxesLogStats,
    CollectStats,
    MotionStats,
    Percentiles,
    RunStats,
    ServerStats,
    SourceSummary,
    to_json,
    write_json,
)

DOCUMENTED = {
    "source_frames",
    "displayed_frames",
    "source_fps",
    "display_fps",
    "requests_sent",
    "responses_ok",
    "responses_failed",
    "stale_responses",
    "prediction_rate",
    "request_latency_ms",
    "prediction_age_ms",
    "bytes_sent",
    "duration_s",
    "errors",
    "detections",
    "in_flight",
    "encoder",
    "frames_not_shown",
    "reconnects",
    "stream_lag_ms",
    "frames_dropped_to_stay_live",
    "send",
    "requests_skipped",
    "requests_by_reason",
    "requests_per_minute",
    "estimated_credits",
}


def full_run() -> RunStats:
    return RunStats(
        source_frames=10,
        request_latency_ms=Percentiles(12.5, 30.0),
        errors={"timeout": 1},
        source=SourceSummary("clip.mp4", 640, 360, 30.0, False),
        failure="capture thread crashed: boom",
        motion=MotionStats(enabled=True, compensated_frames=4, tracks_started=2),
        servers=(ServerStats("http://127.0.0.1:9001", requests=3, ok=2, failed=1, state="backing-off"),),
        boxes_log=BoxesLogStats(lines=9, dropped=1),
        collect=CollectStats(2, 0, {"random": 2}, {"duplicate": 5, "limit": 0}),
    )


def test_a_bare_run_writes_the_documented_names_and_no_empty_sections() -> None:
    data = loose(RunStats().to_json())
    assert set(data) == DOCUMENTED
    assert data["request_latency_ms"] == {"p50": None, "p95": None}


def test_every_section_has_its_documented_names() -> None:
    data = loose(full_run().to_json())
    assert set(data) == DOCUMENTED | {
        "source",
        "failure",
        "motion",
        "servers",
        "boxes_log",
        "collected",
        "collect_dropped",
        "collected_by_strategy",
        "collect_skipped",
    }
    assert data["source"] == {"name": "clip.mp4", "width": 640, "height": 360, "nominal_fps": 30.0, "live": False}
    assert set(data["motion"]) == {
        "enabled",
        "compensated_frames",
        "skipped_frames",
        "cost_ms",
        "wall_ms",
        "catch_up_ms",
        "tracks_started",
    }
    assert data["servers"] == [
        {
            "url": "http://127.0.0.1:9001",
            "requests": 3,
            "ok": 2,
            "failed": 1,
            "latency_ms": {"p50": None, "p95": None},
            "state": "backing-off",
        }
    ]
    assert data["boxes_log"] == {"lines": 9, "dropped": 1, "failed": None}
    assert data["collect_skipped"] == {"duplicate": 5, "limit": 0}
    assert json.loads(json.dumps(data)) == data


def test_a_new_field_is_one_typed_line() -> None:
    @dataclass(frozen=True)
    class Lag:
        p50: float | None = None

    @dataclass(frozen=True)
    class Extended:
        frames: int = 0
        lag_ms: Lag = field(default_factory=Lag)
        cameras: tuple[Lag, ...] | None = field(default=None, metadata=OPTIONAL)
        budget: CollectStats | None = field(default=None, metadata=FLATTENED)

    assert to_json(Extended()) == {"frames": 0, "lag_ms": {"p50": None}}
    assert to_json(Extended(cameras=(Lag(1.0),), budget=CollectStats()))["cameras"] == [{"p50": 1.0}]


def test_only_json_values_are_serialised() -> None:
    @dataclass(frozen=True)
    class Odd:
        path: Path

    with pytest.raises(TypeError, match="Path"):
        to_json(Odd(Path("x")))
    with pytest.raises(TypeError):
        to_json({"a": 1})


def test_percentiles_round_to_the_digits_asked() -> None:
    assert Percentiles.rounded(1.234, None) == Percentiles(1.2, None)
    assert Percentiles.rounded(1.234, 5.678, digits=2) == Percentiles(1.23, 5.68)


def test_write_json_is_atomic_and_says_why_it_failed(tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    write_json(path, full_run().to_json())
    assert json.loads(path.read_text())["collected"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]
    with pytest.raises(OutputError, match="cannot write"):
        write_json(tmp_path / "missing" / "stats.json", {})


def test_one_prediction_serialiser_writes_track_id() -> None:
    box = Prediction(10, 20, 30, 60, 0.9, "car", class_id=2, track_id=7, points=((10.0, 20.0), (30.0, 60.0)))
    answer = prediction_json(box)
    assert answer["track_id"] == 7 and "tracker_id" not in answer
    assert answer["x"] == 20 and answer["y"] == 40 and answer["points"] and answer["class_id"] == 2
    assert Predictions(items=(box,)).to_roboflow()["predictions"] == [answer]
    drawn = prediction_json(box, shapes=False)
    assert drawn == {"x": 20, "y": 40, "width": 20, "height": 40, "confidence": 0.9, "class": "car", "track_id": 7}
    untracked = Prediction(10, 20, 30, 60, 0.9, "car")
    assert "track_id" not in prediction_json(untracked)
    assert prediction_json(untracked, shapes=False)["track_id"] is None


def test_write_json_writes_through_a_link_or_a_device_instead_of_replacing_it(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json(link, {"a": 1})
    assert link.is_symlink() and json.loads(target.read_text(encoding="utf-8")) == {"a": 1}
    write_json(Path("/dev/null"), {"a": 1})  # as root, a move would have replaced the device
    assert Path("/dev/null").is_char_device()
