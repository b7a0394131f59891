"""`livecam run` in a real window on a private Xvfb server: boxes on screen, close to quit."""

from __future__ import annotations

import json
import os
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


@pytest.fixture(scope="module")
def xdisplay() -> Iterator[str]:
    if not (shutil.which("Xvfb") and shutil.which("import") and shutil.which("xwininfo")):
        pytest.skip("needs Xvfb, imagemagick and x11-utils (scripts/test.sh installs them)")
    with running_xvfb(1024, 768) as display:
        yield display


def person_pixels(path: Path) -> int:
    """How many screen pixels have the colour livecam draws "person" boxes in."""
    image = cv2.imread(str(path))
    assert image is not None
    target = np.array(class_color("person"), np.int16)
    return int((np.abs(image.astype(np.int16) - target).max(axis=2) <= 12).sum())


def start(xdisplay: str, api: StubApi, stats: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DISPLAY": xdisplay}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livecam",
            "run",
            "synthetic:640x360@20",
            "--api-url",
            api.url,
            "--model",
            "test/1",
            "--no-hud",
            "--stats-json",
            str(stats),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_run_draws_boxes_in_a_window_and_quits_when_it_is_closed(xdisplay: str, tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    with StubApi() as api:
        for attempt in range(ATTEMPTS):
            process = start(xdisplay, api, stats)
            try:
                seen = 0
                for shot in range(SCREENSHOTS_PER_ATTEMPT):
                    # Each answered request is at least one more frame drawn with boxes.
                    assert api.wait_for_requests(api.requests + 5, timeout=30), "no requests from livecam"
                    seen = person_pixels(screenshot(xdisplay, tmp_path / f"screen-{attempt}-{shot}.png"))
                    if seen > 400:
                        break
                if seen > 400:
                    window = window_id(xdisplay, "livecam")
                    assert window is not None
                    close_window(xdisplay, window)
                    _, err = process.communicate(timeout=20)
                    assert process.returncode == 0, err
                    assert "Traceback" not in err
                    assert json.loads(stats.read_text())["displayed_frames"] > 0
                    return
            finally:
                if process.poll() is None:
                    process.kill()
                    process.communicate(timeout=10)
        # Qt in the opencv-python wheels sometimes maps a window it never paints (opencv-python#356).
        pytest.fail(f"no box on screen after {ATTEMPTS} starts; see {tmp_path}")
