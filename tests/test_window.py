"""A real OpenCV (Qt) window on a private Xvfb server, checked by screenshots.

The window runs in a child process with DISPLAY set, because Qt binds to the display it finds
first. The child shows frames continuously and obeys one-line commands on stdin, answering on
stdout once it has pumped enough frames for the command to take effect.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from xvfb import close_window, running_xvfb, screenshot, window_id

pytestmark = pytest.mark.window

TITLE = "livecam-window-test"
REPLY_TIMEOUT_S = 20.0
CHECKS_PER_WINDOW = 3
REOPENS = 3

CHILD = r"""
import queue, sys, threading
import numpy as np
from livecam.display import WindowDisplay
from livecam.overlay import OverlayStyle, draw_hud, draw_predictions, draw_status
from livecam.predictions import Prediction, Predictions

title, recreate, screen = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
screen_size = tuple(int(v) for v in screen.split("x")) if screen != "-" else None
image = np.full((480, 640, 3), 60, np.uint8)
boxes = Predictions(items=(Prediction(100, 100, 400, 300, 0.87, "target"),
                           Prediction(450, 200, 600, 400, 0.42, "person")))
draw_predictions(image, boxes, OverlayStyle(thickness=6, colors={"target": (0, 0, 255)}))
draw_hud(image, ["source 30.0 fps | infer 4.8/s | latency 180 ms"])
draw_status(image, ["Detection service unreachable \u2014 retrying in 2 s"])

commands = queue.Queue()
def read_commands():
    for line in sys.stdin:
        commands.put(line.split())
    commands.put(["quit"])
threading.Thread(target=read_commands, daemon=True).start()

display = WindowDisplay(title, recreate_on_close=recreate, screen_size=screen_size)
pending, frames = ["shown"], 0
while True:
    display.show(image)
    frames += 1
    if display.closed_by_user:
        print("closed", flush=True)
        break
    if pending and frames >= 15:
        print(*pending, flush=True)
        pending, frames = [], 0
    try:
        command = commands.get(timeout=1 / 30)
    except queue.Empty:
        continue
    if command[0] == "quit":
        break
    if command[0] == "reopen":
        display.close()
    if command[0] == "fullscreen":
        display.set_fullscreen(command[1] == "on")
    pending, frames = ["ok", command[0], str(display.fullscreen)], 0
display.close()
print("bye", flush=True)
"""


class WindowChild:
    """The child process showing the window, and its command channel."""

    def __init__(self, display: str, recreate: bool = False, screen: str = "-") -> None:
        env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, TITLE, "1" if recreate else "0", screen],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, first_word: str) -> list[str]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], REPLY_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        words = line.split()
        assert words and words[0] == first_word, f"expected {first_word!r}, got {line!r}; {self.stderr()}"
        return words

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(child still running)"
        assert self.process.stderr is not None
        return "child stderr: " + self.process.stderr.read()[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.send("quit")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def xdisplay() -> Iterator[str]:
    for tool in ("Xvfb", "import", "xwininfo"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install xvfb imagemagick x11-utils)")
    with running_xvfb(1280, 720) as display:
        yield display


@pytest.fixture
def child_factory(xdisplay: str) -> Iterator[list[WindowChild]]:
    children: list[WindowChild] = []
    yield children
    for child in children:
        child.stop()


def red_bounds(path: Path) -> tuple[int, int, int, int] | None:
    """(x1, y1, x2, y2) of the pure-red pixels (the target box and its label) in a screenshot."""
    shot = cv2.imread(str(path))
    assert shot is not None
    red = (shot[:, :, 2] > 220) & (shot[:, :, 1] < 40) & (shot[:, :, 0] < 40)
    ys, xs = np.nonzero(red)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def shows_box(bounds: tuple[int, int, int, int] | None, box: tuple[int, int, int, int], slack: int) -> bool:
    """Whether red ``bounds`` match ``box`` on the left, right and bottom; the label sits above its top."""
    if bounds is None:
        return False
    (x1, y1, x2, y2), (bx1, by1, bx2, by2) = bounds, box
    return abs(x1 - bx1) <= slack and abs(x2 - bx2) <= slack and abs(y2 - by2) <= slack and y1 < by1 - 10


def assert_screen_shows_box(
    child: WindowChild, xdisplay: str, path: Path, box: tuple[int, int, int, int], slack: int = 6
) -> None:
    """Screenshot until the box is seen; between tries the child acknowledges 15 more frames.

    The X server repaints asynchronously, so a screenshot right after an acknowledgement can
    still show the previous state. And the Qt backend of the opencv-python wheels sometimes
    maps a window that it then never paints (black, under Xvfb in roughly one start in ten;
    opencv/opencv-python#356 and #362 report the same on desktops); such a window is reopened
    a bounded number of times rather than failing on Qt's race.
    """
    bounds = None
    for _ in range(REOPENS + 1):
        for _ in range(CHECKS_PER_WINDOW):
            bounds = red_bounds(screenshot(xdisplay, path))
            if shows_box(bounds, box, slack):
                return
            child.send("ping")
            child.expect("ok")
        if bounds is not None:
            break  # painted, but not where expected: a real failure
        child.send("reopen")
        child.expect("ok")
    raise AssertionError(f"screen shows red at {bounds}, expected the box {box}; see {path}")


def test_window_shows_the_drawn_frame(xdisplay: str, child_factory: list[WindowChild], tmp_path: Path) -> None:
    child = WindowChild(xdisplay)
    child_factory.append(child)
    child.expect("shown")
    # No window manager: the window sits at the origin at the frame's size (640x480).
    assert_screen_shows_box(child, xdisplay, tmp_path / "window.png", (97, 97, 403, 303))
    child.send("fullscreen on")
    assert child.expect("ok") == ["ok", "fullscreen", "True"]
    child.send("fullscreen off")
    assert child.expect("ok") == ["ok", "fullscreen", "False"]
    child.send("quit")
    child.expect("bye")


def test_fullscreen_with_screen_size_fills_a_bare_x_server(
    xdisplay: str, child_factory: list[WindowChild], tmp_path: Path
) -> None:
    child = WindowChild(xdisplay, screen="1280x720")
    child_factory.append(child)
    child.expect("shown")
    child.send("fullscreen on")
    child.expect("ok")
    # 640x480 scaled to 960x720 (aspect kept) and centred: the box is 1.5x larger, 160 px in.
    assert_screen_shows_box(child, xdisplay, tmp_path / "fullscreen.png", (160 + 146, 146, 160 + 604, 454), 8)
    child.send("fullscreen off")
    child.expect("ok")
    assert_screen_shows_box(child, xdisplay, tmp_path / "back.png", (97, 97, 403, 303))


def test_closing_the_window_is_reported(xdisplay: str, child_factory: list[WindowChild]) -> None:
    child = WindowChild(xdisplay)
    child_factory.append(child)
    child.expect("shown")
    window = window_id(xdisplay, TITLE)
    assert window is not None
    close_window(xdisplay, window)
    child.expect("closed")
    child.expect("bye")


def test_kiosk_window_comes_back_after_a_close(xdisplay: str, child_factory: list[WindowChild]) -> None:
    child = WindowChild(xdisplay, recreate=True)
    child_factory.append(child)
    child.expect("shown")
    first = window_id(xdisplay, TITLE)
    assert first is not None
    close_window(xdisplay, first)
    child.send("ping")  # answered only after 15 more frames, by which time the close was handled
    child.expect("ok")
    again = window_id(xdisplay, TITLE)
    assert again is not None and again != first
    child.send("quit")
    child.expect("bye")
