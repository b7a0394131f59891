"""The ``livecam run`` command as a user runs it: a subprocess against a loopback API."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from stub_api import Reply, StubApi

from livecam.cli import build_parser

KEY = "rf_SECRETKEY_0123456789"


def livecam(*args: str, env_key: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    if env_key:
        env["ROBOFLOW_API_KEY"] = KEY
    return subprocess.run(
        [sys.executable, "-m", "livecam", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def run_against(
    api: StubApi, tmp_path: Path, *extra: str, frames: int = 40
) -> tuple[subprocess.CompletedProcess[str], Path]:
    stats_path = tmp_path / "stats.json"
    result = livecam(
        "run",
        f"synthetic:320x240@40:{frames}",
        "--headless",
        "--api-url",
        api.url,
        "--model",
        "test/1",
        "--api-key",
        KEY,
        "--stats-json",
        str(stats_path),
        *extra,
    )
    return result, stats_path


def test_run_headless_writes_the_stats_schema(tmp_path: Path) -> None:
    with StubApi(latency=0.05) as api:
        result, stats_path = run_against(api, tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    for field in (
        "source_frames",
        "displayed_frames",
        "source_fps",
        "display_fps",
        "requests_sent",
        "responses_ok",
        "responses_failed",
        "prediction_rate",
        "bytes_sent",
        "duration_s",
    ):
        assert field in stats
    assert set(stats["request_latency_ms"]) == {"p50", "p95"} == set(stats["prediction_age_ms"])
    assert stats["source_frames"] == 40
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py
    assert stats["responses_ok"] >= 1 and stats["bytes_sent"] > 0


@pytest.mark.slow
@pytest.mark.parametrize(
    "reply",
    [
        Reply(401, {"message": "Unauthorized api_key"}),
        Reply(502, b"<html><h1>502 Bad Gateway</h1></html>", {"Content-Type": "text/html"}),
        Reply(200, b"not json at all"),
        Reply(200, {"predictions": [{"x": float("nan"), "y": 1, "width": 1, "height": 1}]}),
    ],
)
def test_bad_answers_never_stop_the_video_nor_leak_the_key(tmp_path: Path, reply: Reply) -> None:
    with StubApi(script=lambda s: reply) as api:
        result, stats_path = run_against(api, tmp_path)
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["source_frames"] == 40
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py
    output = result.stdout + result.stderr + stats_path.read_text()
    assert KEY not in output
    assert "Traceback" not in output


@pytest.mark.slow
def test_401_says_what_to_do_once(tmp_path: Path) -> None:
    with StubApi(script=lambda s: Reply(401, {"message": "bad key"})) as api:
        result, _ = run_against(api, tmp_path, frames=80)
    assert result.stderr.count("refused the API key") == 1
    assert "--api-key" in result.stderr


def test_key_from_the_environment_is_sent_and_never_printed(tmp_path: Path) -> None:
    with StubApi() as api:
        result = livecam(
            "run",
            "synthetic:320x240@40:20",
            "--headless",
            "--api-url",
            api.url,
            "--model",
            "test/1",
            "-vv",
            env_key=True,
        )
        assert api.seen[-1].query["api_key"] == KEY
    assert result.returncode == 0
    assert KEY not in result.stdout + result.stderr


def test_missing_source_is_a_clear_error() -> None:
    result = livecam("run", "missing-file.mp4", "--headless", "--api-url", "http://127.0.0.1:9", "--model", "a/1")
    assert result.returncode == 1
    assert "cannot open file missing-file.mp4" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "synthetic", "--headless", "--api-url", "http://127.0.0.1:9"], "--model"),
        (["run", "synthetic", "--headless", "--api-url", "http://x", "--model", "nope"], "PROJECT/VERSION"),
        (["run", "synthetic", "--headless", "--model", "a/1", "--confidence", "300"], "confidence"),
        (["run", "synthetic", "--api-url", "http://x", "--model", "a/1"], "--headless"),
        (["run", "synthetic", "--headless", "--model", "a/1", "--in-flight", "0"], "at least 1"),
        (["run", "synthetic", "--headless", "--model", "a/1", "--in-flight", "many"], "'auto'"),
        (
            ["run", "synthetic", "--headless", "--model", "a/1", "--stats-json", "/nonexistent/dir/s.json"],
            "does not exist",
        ),
        (["run", "synthetic", "--headless", "--precision", "int4"], "must be one of int8, fp16, fp32"),
        (
            [
                "run",
                "synthetic",
                "--headless",
                "--api-url",
                "http://127.0.0.1:9",
                "--model",
                "a/1",
                "--precision",
                "int8",
            ],
            "--precision int8 chooses the embedded server's model",
        ),
        (["annotate", "in.mp4", "-o", "out.mp4", "--precision", "half"], "must be one of int8, fp16, fp32"),
        (["serve", "--precision", "int8", "--model", "mine.onnx"], "runs as exported"),
    ],
)
def test_usage_errors_are_one_clear_line(args: list[str], message: str) -> None:
    result = livecam(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_precision_reaches_the_embedded_server(tmp_path: Path) -> None:
    stats_path = tmp_path / "stats.json"
    result = livecam(
        "run", "synthetic:160x120@20:8", "--headless", "--precision", "fp32", "--stats-json", str(stats_path)
    )
    assert result.returncode == 0, result.stderr
    assert "bundled NanoDet fp32 on onnxruntime" in result.stderr
    assert json.loads(stats_path.read_text())["responses_ok"] > 0


def test_help_lists_every_contract_option() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    help_text = commands.choices["run"].format_help()
    for option in (
        "--api-url",
        "--model",
        "--api-key",
        "--confidence",
        "--overlap",
        "--max-side",
        "--jpeg-quality",
        "--in-flight",
        "--headless",
        "--fullscreen",
        "--record",
        "--max-frames",
        "--duration",
        "--stats-json",
        "--width",
        "--height",
        "--fps",
        "--fourcc",
    ):
        assert option in help_text


@pytest.mark.slow
def test_in_flight_auto_sends_more_often_than_one_at_a_time(tmp_path: Path) -> None:
    with StubApi(latency=0.2) as api:
        result, stats_path = run_against(api, tmp_path, "--in-flight", "auto", frames=80)
    assert result.returncode == 0, result.stderr
    stats = json.loads(stats_path.read_text())
    assert stats["in_flight"] == "auto"
    assert api.max_concurrent >= 2
    assert stats["displayed_frames"] >= 1  # never waiting for the API: tests/test_pipeline.py


def test_an_unwritable_stats_file_is_a_clear_error() -> None:
    target = Path("/proc/livecam-stats.json")  # a folder no one, root included, can create files in
    if not target.parent.is_dir():
        pytest.skip("needs Linux /proc")
    result = livecam(
        "run",
        "synthetic:160x120@30:5",
        "--headless",
        "--api-url",
        "http://127.0.0.1:9",
        "--model",
        "a/1",
        "--stats-json",
        str(target),
    )
    assert result.returncode == 2  # found before the run, not after it
    assert "cannot write /proc/livecam-stats.json" in result.stderr and "Traceback" not in result.stderr
    assert "source:" not in result.stderr
