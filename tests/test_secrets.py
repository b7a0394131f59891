"""The API key never appears in any output of a failing run, and the embedded server guards it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import cv2
import numpy as np
import pytest
from faults.servers import RESET, Answer, FaultServer, always, free_port

from livecam.server import ServerConfig

KEY = "rf+SECRET/key=42_abc"
FORMS = (KEY, quote(KEY, safe=""), quote_plus(KEY))
ECHO = always(Answer.json({"message": f"key {KEY} is not valid; api_key={KEY}"}, 401))

SERVERS = {
    "401 echoing the key": ECHO,
    "500": always(Answer.json({"message": f"boom for {KEY}"}, 500)),
    "html 502 echoing the key": always(Answer.text(502, f"<html>{KEY}</html>")),
    "reset": always(RESET),
    "not json": always(Answer.text(200, f"nope {KEY}")),
}


def livecam(*args: str, env_key: bool) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    if env_key:
        env["ROBOFLOW_API_KEY"] = KEY
    return subprocess.run([sys.executable, "-m", "livecam", *args], capture_output=True, text=True, timeout=60, env=env)


def assert_no_key(*texts: str) -> None:
    for text in texts:
        for form in FORMS:
            assert form not in text


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "in.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (96, 64))
    for i in range(4):
        writer.write(np.full((64, 96, 3), i * 40, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("env_key", [False, True], ids=["flag", "env"])
@pytest.mark.parametrize("name", list(SERVERS))
def test_failing_run_never_prints_the_key(name: str, env_key: bool, tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    key_args = () if env_key else ("--api-key", KEY)
    with FaultServer(SERVERS[name]) as server:
        result = livecam(
            "run",
            "synthetic:160x120@40:16",
            "--headless",
            "--api-url",
            server.url,
            "--model",
            "t/1",
            *key_args,
            "--timeout",
            "0.5",
            "--stats-json",
            str(stats),
            "-vv",
            env_key=env_key,
        )
        assert server.requests >= 1
    assert result.returncode == 0, result.stderr[-2000:]
    assert_no_key(result.stdout, result.stderr, stats.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("env_key", [False, True], ids=["flag", "env"])
def test_failing_annotate_never_writes_the_key(env_key: bool, video: Path, tmp_path: Path) -> None:
    key_args = () if env_key else ("--api-key", KEY)
    jsonl = tmp_path / "out.jsonl"
    with FaultServer(always(Answer.json({"message": f"bad {KEY}"}, 400))) as server:
        result = livecam(
            "annotate",
            str(video),
            "-o",
            str(tmp_path / "out.avi"),
            "--json",
            str(jsonl),
            "--api-url",
            server.url,
            "--model",
            "t/1",
            *key_args,
            "-vv",
            env_key=env_key,
        )
    assert result.returncode == 1
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 4 and all("error" in line for line in lines)
    assert_no_key(result.stdout, result.stderr, jsonl.read_text())


def test_unreachable_api_never_prints_the_key(tmp_path: Path) -> None:
    result = livecam(
        "run",
        "synthetic:160x120@40:8",
        "--headless",
        "--api-url",
        f"http://127.0.0.1:{free_port()}",
        "--model",
        "t/1",
        "--api-key",
        KEY,
        "-vv",
        env_key=False,
    )
    assert result.returncode == 0
    assert_no_key(result.stdout, result.stderr)


@pytest.mark.parametrize("command", [[], ["run"], ["annotate"], ["serve"]])
def test_help_never_shows_the_key(command: list[str]) -> None:
    key_args = ("--api-key", KEY) if command else ()
    result = livecam(*command, *key_args, "--help", env_key=True)
    assert result.returncode == 0
    assert_no_key(result.stdout, result.stderr)


def test_embedded_server_binds_loopback_enforces_and_hides_the_key() -> None:
    import requests

    assert ServerConfig().host == "127.0.0.1"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "livecam", "serve", "--port", str(port), "--api-key", KEY, "-vv"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:
            if "serving" in line:
                break
        listening = [row.split() for row in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = {f[1] for f in listening if f[3] == "0A" and int(f[1].split(":")[1], 16) == port}
        assert local == {f"0100007F:{port:04X}"}, local  # 127.0.0.1 only
        url = f"http://127.0.0.1:{port}/coco/1"
        body = b"aGVsbG8="
        assert requests.post(url, data=body, timeout=30).status_code == 401
        assert requests.post(f"{url}?api_key=wrong", data=body, timeout=30).status_code == 401
        assert requests.post(url, params={"api_key": KEY}, data=body, timeout=30).status_code == 400
        assert requests.post(url, data=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30).status_code == 400
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert re.search(r"POST /coco/1\?api_key=\*\*\*", err)
    assert_no_key(out, err)
