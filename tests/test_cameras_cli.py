"""``livecam run`` with several sources, as a user runs it: a subprocess against a loopback API."""

import json
from pathlib import Path

import pytest
from stub_api import StubApi
from test_cli import KEY, livecam


def test_run_with_several_sources_writes_each_cameras_statistics(tmp_path: Path) -> None:
    stats_path, boxes = tmp_path / "stats.json", tmp_path / "boxes.jsonl"
    with StubApi(latency=0.05) as api:
        result = livecam(
            "run",
            "synthetic:160x120@30:30",
            "synthetic:320x240@15:15",
            "--headless",
            "--api-url",
            api.url,
            "--model",
            "test/1",
            "--api-key",
            KEY,
            "--grid",
            "3x1",
            "--weight",
            "2,1",
            "--stats-json",
            str(stats_path),
            "--boxes-log",
            str(boxes),
            "--record",
            str(tmp_path / "grid.mp4"),
        )
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stderr
    stats = json.loads(stats_path.read_text())
    assert [c["source_frames"] for c in stats["cameras"]] == [30, 15]
    assert stats["source_frames"] == 45
    assert stats["displayed_frames"] == sum(c["displayed_frames"] for c in stats["cameras"])
    assert {json.loads(line)["camera"] for line in boxes.read_text().splitlines()} == {0, 1}
    assert (tmp_path / "grid.mp4").stat().st_size > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--grid", "1x1"], "--grid 1x1 has 1 tiles for 2 sources"),
        (["--grid", "big"], "COLSxROWS"),
        (["--weight", "1,2,3"], "3 weights for 2 sources"),
        (["--weight", "1,x"], "numbers separated by commas"),
        (["--weight", "1,-1"], "positive"),
        (["--display-fps", "0"], "--display-fps: must be above 0"),
    ],
)
def test_bad_several_source_options_are_one_clear_line(extra: list[str], message: str) -> None:
    result = livecam("run", "synthetic", "synthetic", "--headless", "--model", "a/1", *extra)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
