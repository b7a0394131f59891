"""Headless display, video recording and snapshots (no screen needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from livecam.display import (
    Display,
    HeadlessDisplay,
    VideoRecorder,
    WindowDisplay,
    save_snapshot,
)
from livecam.errors import ConfigError, OutputError
from livecam.frames import Image


def frame(i: int, width: int = 320, height: int = 240) -> Image:
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, :, 1] = (i * 20) % 256
    return image


def read_back(path: Path) -> tuple[int, float, tuple[int, int], list[Image]]:
    capture = cv2.VideoCapture(str(path))
    try:
        assert capture.isOpened()
        fps = capture.get(cv2.CAP_PROP_FPS)
        size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        images: list[Image] = []
        while True:
            ok, image = capture.read()
            if not ok:
                break
            images.append(np.asarray(image, dtype=np.uint8))
        return len(images), fps, size, images
    finally:
        capture.release()


def test_headless_display_works_without_a_display_server() -> None:
    code = (
        "import numpy as np\n"
        "from livecam.display import HeadlessDisplay\n"
        "d = HeadlessDisplay()\n"
        "keys = [d.show(np.zeros((48, 64, 3), np.uint8)) for _ in range(3)]\n"
        "d.set_fullscreen(True)\n"
        "d.close()\n"
        "print(keys, d.fullscreen, d.closed_by_user)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["QT_QPA_PLATFORM"] = "xcb"  # any GUI call would now abort the process: no X server to reach
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[-1, -1, -1] True False"


def test_displays_satisfy_the_protocol() -> None:
    displays: list[Display] = [HeadlessDisplay(), WindowDisplay("never shown")]
    assert [d.fullscreen for d in displays] == [False, False]
    for d in displays:
        d.close()  # closing a window that was never opened makes no GUI call


def test_window_display_constructor_opens_nothing() -> None:
    display = WindowDisplay("lazy", fullscreen=True, recreate_on_close=True)
    assert display.fullscreen and not display.closed_by_user
    display.set_fullscreen(False)  # before the first show this only records the wish
    assert not display.fullscreen


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_recorder_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    with VideoRecorder(path, fps=25.0, size=(320, 240)) as recorder:
        for i in range(12):
            recorder.write(frame(i))
        assert recorder.frames_written == 12
    count, fps, size, images = read_back(path)
    assert count == 12
    assert fps == pytest.approx(25.0, rel=0.01)
    assert size == (320, 240)
    assert abs(float(images[5][:, :, 1].mean()) - 100) < 8  # the frames keep their order


def test_recorder_reports_its_codec(tmp_path: Path) -> None:
    with VideoRecorder(tmp_path / "a.mp4", fps=30, size=(64, 48)) as recorder:
        assert recorder.codec in ("avc1", "mp4v")
    with VideoRecorder(tmp_path / "a.avi", fps=30, size=(64, 48)) as recorder:
        assert recorder.codec == "MJPG"


def test_recorder_resizes_frames_of_another_size(tmp_path: Path) -> None:
    path = tmp_path / "resized.mp4"
    with VideoRecorder(path, fps=10, size=(160, 120)) as recorder:
        recorder.write(frame(3, 640, 480))
        recorder.write(frame(4, 100, 50))
    count, _, size, _ = read_back(path)
    assert (count, size) == (2, (160, 120))


def test_recorder_in_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        VideoRecorder(tmp_path / "missing" / "out.mp4", fps=25, size=(320, 240))


def test_recorder_with_no_working_codec_raises(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="codecs"):
        VideoRecorder(tmp_path / "out.mp4", fps=25, size=(320, 240), fourccs=["NOPE"])


def test_recorder_rejects_nonsense_fps(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="positive"):
        VideoRecorder(tmp_path / "out.mp4", fps=0, size=(320, 240))


def test_recorder_close_is_idempotent_and_final(tmp_path: Path) -> None:
    recorder = VideoRecorder(tmp_path / "out.mp4", fps=25, size=(64, 48))
    recorder.write(frame(0, 64, 48))
    recorder.close()
    recorder.close()
    with pytest.raises(OutputError, match="closed"):
        recorder.write(frame(1, 64, 48))
    assert read_back(tmp_path / "out.mp4")[0] == 1


def test_snapshot_is_a_timestamped_png(tmp_path: Path) -> None:
    image = frame(7, 64, 48)
    at = datetime(2024, 1, 31, 14, 25, 1, 123456)
    first = save_snapshot(image, tmp_path / "shots", now=lambda: at)
    second = save_snapshot(image, tmp_path / "shots", now=lambda: at)
    assert first.name == "livecam-20240131-142501-123.png"
    assert second.name == "livecam-20240131-142501-123-1.png"
    loaded = cv2.imread(str(first))
    assert loaded is not None and np.array_equal(loaded, image)


def test_snapshot_into_an_unusable_directory_raises(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="snapshot"):
        save_snapshot(frame(0), blocker / "shots")


def test_letterbox_pads_to_the_screen_aspect_with_black() -> None:
    from livecam.display import letterbox

    image = np.full((360, 640, 3), 200, np.uint8)
    boxed = letterbox(image, (1024, 768))  # 16:9 frame on a 4:3 screen: bars above and below
    assert boxed.shape == (480, 640, 3)
    assert (boxed[:60] == 0).all() and (boxed[-60:] == 0).all() and (boxed[60:420] == 200).all()
    tall = letterbox(np.full((480, 360, 3), 200, np.uint8), (1920, 1080))
    assert tall.shape == (480, 853, 3) and (tall[:, :246] == 0).all()
    assert letterbox(image, (1280, 720)) is image
