"""The one redaction, over a table of real camera, stream and API URL forms."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from stub_api import Reply, StubApi

from livecam.redaction import redact, redact_url

ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}

CASES = [
    # user:pass@ in every scheme, an unescaped "@" in the password too
    (
        "rtsp://admin:CaMpAsS1@192.168.1.64:554/Streaming/Channels/101",
        "rtsp://***@192.168.1.64:554/Streaming/Channels/101",
    ),
    (
        "rtsp://admin:p@ss@10.0.0.5/cam/realmonitor?channel=1&subtype=0",
        "rtsp://***@10.0.0.5/cam/realmonitor?channel=1&subtype=0",
    ),
    ("http://viewer@cam.local/mjpg/video.mjpg", "http://***@cam.local/mjpg/video.mjpg"),
    ("https://u:p%40ss@host/x?token=T&Access_Token=A", "https://***@host/x?token=***&Access_Token=***"),
    # query names
    ("http://cam/videostream.cgi?user=admin&pwd=S3cret", "http://cam/videostream.cgi?user=***&pwd=***"),
    (
        "http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=S3cret",
        "http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=***&pwd=***",
    ),
    ("http://cam/snapshot.cgi?user=admin&pass=S3cret", "http://cam/snapshot.cgi?user=***&pass=***"),
    (
        "http://cam/livestream.cgi?loginuse=admin&loginpas=S3cret&streamid=0",
        "http://cam/livestream.cgi?loginuse=***&loginpas=***&streamid=0",
    ),
    (
        "http://cam/video.cgi?passwd=a&password=b&passphrase=c",
        "http://cam/video.cgi?passwd=***&password=***&passphrase=***",
    ),
    (
        "https://api/x?api_key=K&api-key=K&apikey=K&key=K&jwt=J&auth=A",
        "https://api/x?api_key=***&api-key=***&apikey=***&key=***&jwt=***&auth=***",
    ),
    ("https://h/v?sig=S&signature=S&format=json", "https://h/v?sig=***&signature=***&format=json"),
    (
        "https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261206&"
        "X-Amz-Date=20261206T000000Z&X-Amz-Security-Token=IQo&X-Amz-Signature=abc123",
        "https://b.s3.amazonaws.com/v.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***&"
        "X-Amz-Date=20261206T000000Z&X-Amz-Security-Token=***&X-Amz-Signature=***",
    ),
    # ;token= parameters and the DVR path form
    ("rtsp://host:554/live/ch00_0;token=abc123", "rtsp://host:554/live/ch00_0;token=***"),
    ("http://host/stream?a=1;token=abc;b=2", "http://host/stream?a=1;token=***;b=2"),
    (
        "rtsp://10.0.0.9:554/user=admin&password=S3cret&channel=1&stream=0.sdp?",
        "rtsp://10.0.0.9:554/user=***&password=***&channel=1&stream=0.sdp?",
    ),
    # SRT, RTMP stream keys
    ("srt://host:9000?mode=caller&passphrase=LongS3cretPhrase", "srt://host:9000?mode=caller&passphrase=***"),
    ("rtmp://live.twitch.tv/app/live_123456_abcdef", "rtmp://live.twitch.tv/app/***"),
    ("rtmps://live-api-s.facebook.com:443/rtmp/FB-1234-0-Ab", "rtmps://live-api-s.facebook.com:443/rtmp/***"),
    ("rtmp://a.rtmp.youtube.com/live2/xxxx-xxxx-xxxx-xxxx", "rtmp://a.rtmp.youtube.com/live2/***"),
    # nothing to hide
    ("rtmp://host/live", "rtmp://host/live"),
    (
        "http://host:8080/video.mjpg?resolution=640x480&monkey=1",
        "http://host:8080/video.mjpg?resolution=640x480&monkey=1",
    ),
    ("0", "0"),
    ("sample_videos/vtest.avi", "sample_videos/vtest.avi"),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_camera_url_forms(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact(url) == expected


def test_urls_inside_messages_and_the_key_anywhere() -> None:
    key = "rf+SECRET/key=42"
    message = (
        f"cannot reach http://user:pw@h:9001/coco/1?api_key={key}&token=T (refused); "
        f"stream rtsp://admin:CaMpAsS1@cam/x failed; Authorization: Bearer {key}; echoed {key}"
    )
    text = redact(message, key)
    for secret in (key, "pw@", "token=T", "CaMpAsS1", "SECRET"):
        assert secret not in text
    assert "http://***@h:9001/coco/1?api_key=***&token=***" in text
    assert "rtsp://***@cam/x failed" in text


def test_redaction_is_idempotent() -> None:
    for url, expected in CASES:
        assert redact(expected) == expected, url


# --- end to end: what users see -----------------------------------------------------------------

PASSWORD = "CaMpAsS1"
TOKEN = "ToKeN42"


def livecam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livecam", *args], capture_output=True, text=True, timeout=120, env=ENV
    )


def test_annotate_json_errors_and_warnings_hide_the_api_url_credentials(tmp_path: Path) -> None:
    video = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        writer.write(np.full((48, 64, 3), 60 * i, np.uint8))
    writer.release()
    jsonl = tmp_path / "out.jsonl"
    # 400: not retried, so every frame gets an "error" at once.
    with StubApi(script=lambda seen: Reply(400, {"message": f"bad request from {seen.path}"})) as api:
        url = api.url.replace("http://", f"http://viewer:{PASSWORD}@")
        result = livecam(
            "annotate",
            str(video),
            "-o",
            str(tmp_path / "out.mp4"),
            "--json",
            str(jsonl),
            "--api-url",
            url,
            "--model",
            "t/1",
            "--max-failed-fraction",
            "1",
        )
    errors = [json.loads(line).get("error") for line in jsonl.read_text().splitlines()]
    assert errors and all(errors), (result.returncode, result.stderr[-2000:])
    for text in (jsonl.read_text(), result.stderr, result.stdout):
        assert PASSWORD not in text


def test_the_kiosk_start_line_hides_the_camera_password() -> None:
    camera = f"rtsp://admin:{PASSWORD}@127.0.0.1:9/live?token={TOKEN}"
    kiosk = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livecam",
            "kiosk",
            "--source",
            camera,
            "--headless",
            "--model",
            "t/1",
            "--api-url",
            "http://127.0.0.1:9",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    killer = threading.Timer(60, kiosk.kill)  # bounds the test if the line never comes
    killer.start()
    lines = []
    try:
        assert kiosk.stderr is not None
        for line in kiosk.stderr:
            lines.append(line)
            if "kiosk started" in line:
                break
    finally:
        kiosk.kill()  # only the start line matters here
        rest = kiosk.communicate(timeout=30)[1]
        killer.cancel()
    text = "".join(lines) + rest
    assert "kiosk started: rtsp://***@127.0.0.1:9/live?token=***" in text, text[-2000:]
    assert PASSWORD not in text and TOKEN not in text
