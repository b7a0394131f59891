"""Several cameras in a real window on a private Xvfb server: one grid, boxes in every tile."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from stub_api import StubApi
from xvfb import close_window, running_xvfb, screenshot, window_id

from livecam.overlay import class_color

pytestmark = pytest.mark.window
ATTEMPTS = 3
SCREENSHOTS_PER_ATTEMPT = 4
TITLE = "livecam"


@pytest.fixture(scope="module")
def xdisplay() -> Iterator[str]:
    if not (shutil.which("Xvfb") and shutil.which("import") and shutil.which("xwininfo")):
        pytest.skip("needs Xvfb, imagemagick and x11-utils (scripts/test.sh installs them)")
    with running_xvfb(1024, 768) as display:
        yield display


def window_box(display: str, window: int) -> tuple[int, int, int, int]:
    """(x, y, width, height) of ``window`` on the screen."""
    out = subprocess.run(
        ["xwininfo", "-display", display, "-id", str(window)], capture_output=True, text=True, timeout=30
    ).stdout
    values = [
        int(re.search(rf"{name}:\s+(-?\d+)", out).group(1))  # type: ignore[union-attr]
        for name in ("Absolute upper-left X", "Absolute upper-left Y", "Width", "Height")
    ]
    return values[0], values[1], values[2], values[3]


def person_pixels_per_half(path: Path, box: tuple[int, int, int, int]) -> tuple[int, int]:
    """Pixels of the "person" box colour in the left and the right half of the window."""
    image = cv2.imread(str(path))
    assert image is not None
    x, y, width, height = box
    inside = image[y : y + height, x : x + width].astype(np.int16)
    match = np.abs(inside - np.array(class_color("person"), np.int16)).max(axis=2) <= 12
    return int(match[:, : width // 2].sum()), int(match[:, width // 2 :].sum())


def start(xdisplay: str, api: StubApi, stats: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            "synthetic:320x240@20",
            "synthetic:320x180@15",
            "--api-url",
            api.url,
            "--model",
            "test/1",
            "--stats-json",
            str(stats),
        ],
        env={**os.environ, "DISPLAY": xdisplay},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_sources_share_one_window_with_boxes_in_each_tile(xdisplay: str, tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    with StubApi() as api:
        for attempt in range(ATTEMPTS):
            process = start(xdisplay, api, stats)
            try:
                halves = (0, 0)
                window = None
                for shot in range(SCREENSHOTS_PER_ATTEMPT):
                    assert api.wait_for_requests(api.requests + 6, timeout=30), "no requests from livecam"
                    window = window_id(xdisplay, TITLE)
                    if window is None:
                        continue
                    path = screenshot(xdisplay, tmp_path / f"screen-{attempt}-{shot}.png")
                    halves = person_pixels_per_half(path, window_box(xdisplay, window))
                    if min(halves) > 150:
                        break
                if window is not None and min(halves) > 150:
                    close_window(xdisplay, window)
                    _, err = process.communicate(timeout=20)
                    assert process.returncode == 0, err
                    assert "Traceback" not in err
                    cameras = json.loads(stats.read_text())["cameras"]
                    assert len(cameras) == 2 and all(c["responses_ok"] > 0 for c in cameras)
                    return
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=10)
        # Qt in the opencv-python wheels sometimes maps a window it never paints (opencv-python#356).
        pytest.fail(f"no boxes in both tiles after {ATTEMPTS} starts; see {tmp_path}")
