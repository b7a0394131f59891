"""The kiosk with several cameras: ``[[source]]`` tables, per-camera web views, ``/stats`` cameras."""

import http.client
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_kiosk_config import load
from test_kiosk_web import get

from livecam.display import HeadlessDisplay
from livecam.errors import ConfigError
from livecam.kiosk.web import FrameHub, WebView
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import SyntheticSource

TABLES = """
[[source]]
input = "synthetic:320x240@15"
name = "door"
size = "640x480"

[[source]]
input = "rtsp://user:pw@cam.local/live"
rotation = 90
mirror = true
"""


def test_source_tables_give_one_camera_each(tmp_path: Path) -> None:
    config = load(tmp_path, TABLES)
    first, second = config.sources
    assert (first.input, first.name, first.width, first.height) == ("synthetic:320x240@15", "door", 640, 480)
    assert (second.rotation, second.mirror) == (90, True)
    assert config.display.orientation_of(first).identity
    assert config.display.orientation_of(second).rotation == 90


def test_a_list_of_inputs_shares_the_other_source_keys(tmp_path: Path) -> None:
    config = load(tmp_path, '[source]\ninput = ["synthetic", "0"]\nfps = 12\n')
    assert [(s.input, s.fps) for s in config.sources] == [("synthetic", 12.0), ("0", 12.0)]


def test_one_source_table_is_the_one_source(tmp_path: Path) -> None:
    config = load(tmp_path, '[[source]]\ninput = "synthetic"\nname = "hall"\n')
    assert config.sources == () and config.source.name == "hall"


def test_the_source_flag_replaces_the_files_cameras(tmp_path: Path) -> None:
    config = load(tmp_path, TABLES, "--source", "synthetic")
    assert config.sources == () and config.source.input == "synthetic"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[source]]\ninput = "0"\nzoom = 2\n', "line 3: source.zoom: unknown key"),
        ('[[source]]\nname = "x"\n', "needs an input"),
        ('[[source]]\ninput = "0"\nrotation = 45\n', "source.rotation"),
        ("[source]\ninput = []\n", "at least one source"),
    ],
)
def test_bad_source_tables_are_named_with_their_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load(tmp_path, text)


def test_each_camera_has_its_own_stream_and_snapshot() -> None:
    hubs = [FrameHub(fps=20), FrameHub(fps=20)]
    published = [threading.Event(), threading.Event()]

    def publish(camera: int, picture: np.ndarray) -> None:
        hubs[camera].publish(picture)
        published[camera].set()

    sources = [
        SyntheticSource(160, 120, 30, frames=30, live=False),
        SyntheticSource(96, 128, 30, frames=30, live=False),
    ]
    with WebView(("127.0.0.1", 0), FrameHub(fps=20), dict, cameras=hubs) as web:
        with LivePipeline(sources, None, HeadlessDisplay(), LiveConfig(hud=False), on_camera_frame=[publish]) as pipe:
            pipe.run()
        assert all(event.is_set() for event in published)
        sizes = []
        for number in (1, 2):
            status, kind, body = get(web, f"/camera/{number}/snapshot.jpg")
            assert (status, kind) == (200, "image/jpeg")
            image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None
            sizes.append(image.shape[:2])
        assert sizes == [(120, 160), (128, 96)]  # each camera at its own size, not the grid's
        for path in ("/camera/3/snapshot.jpg", "/camera/0/stream.mjpg", "/camera/1/other"):
            assert get(web, path)[0] == 404


def fetch(url: str, path: str) -> tuple[int, bytes]:
    host, port = url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_kiosk_with_two_cameras_reports_each_in_stats(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        '[[source]]\ninput = "synthetic:160x120@20"\n[[source]]\ninput = "synthetic:160x120@10"\n'
        '[display]\nheadless = true\n[kiosk]\nweb = "127.0.0.1:0"\n',
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "livecam", "kiosk", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:
            found = re.search(r"web view at (http://\S+)/", line)
            if found:
                url = found.group(1)
                break
        assert url is not None
        cameras: list[dict[str, object]] = []
        for _ in range(40):  # the pipeline starts after the web view; each snapshot waits for a picture
            status = fetch(url, "/camera/2/snapshot.jpg")[0]
            cameras = json.loads(fetch(url, "/stats")[1]).get("cameras", [])
            if status == 200 and len(cameras) == 2:
                break
        assert len(cameras) == 2 and cameras[1]["source"] == "synthetic 160x120@10 live"
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0
