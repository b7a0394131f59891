"""Sources: spec parsing, OpenCV files and streams, the synthetic pattern, URL redaction."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from mjpeg_server import MjpegServer

from livecam.errors import ConfigError, SourceError
from livecam.kiosk.orientation import Orientation, OrientedSource
from livecam.sources import (
    CaptureOptions,
    OpenCVSource,
    SyntheticSource,
    is_stream_url,
    may_come_back,
    open_source,
    redact_url,
    sane_fps,
)

REPO = Path(__file__).resolve().parent.parent


def write_video(path: Path, frames: int, fps: float = 25.0, size: tuple[int, int] = (64, 48)) -> Path:
    """A small MJPG AVI whose frame ``i`` is filled with grey level ``10 * i``."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), (10 * i) % 256, np.uint8))
    writer.release()
    return path


def sample_video(name: str) -> Path:
    """A sample clip from the repo's sample_videos/, skipping the test when it is absent."""
    path = REPO / "sample_videos" / name
    if not path.is_file():
        pytest.skip(f"sample video {name} not present")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://user:pass@cam.local:554/live", "rtsp://***@cam.local:554/live"),
        ("rtsp://admin@10.0.0.2/h264", "rtsp://***@10.0.0.2/h264"),
        ("https://host/stream.mjpg?api_key=SECRET&size=hd", "https://host/stream.mjpg?api_key=***&size=hd"),
        ("http://u:p%40ss@host/x?token=T&Access_Token=A", "http://***@host/x?token=***&Access_Token=***"),
        ("http://host:8080/video.mjpg", "http://host:8080/video.mjpg"),
    ],
)
def test_redact_url_hides_credentials(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_stream_source_name_and_errors_never_show_the_password() -> None:
    url = f"http://viewer:hunter2@127.0.0.1:{free_port()}/stream.mjpg?token=tok123"
    source = OpenCVSource(url, CaptureOptions(open_timeout_s=2.0))
    assert source.kind == "stream"
    assert "hunter2" not in source.name and "tok123" not in source.name
    with pytest.raises(SourceError) as caught:
        source.open()
    message = str(caught.value)
    assert message.startswith("cannot open http://***@127.0.0.1:")
    assert "connection refused by 127.0.0.1:" in message
    assert "hunter2" not in message and "tok123" not in message


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        ("0", "camera"),
        (" 2 ", "camera"),
        (1, "camera"),
        ("rtsp://cam/live", "stream"),
        ("RTSPS://cam/live", "stream"),
        ("udp://@:5000", "stream"),
        ("clip.mp4", "file"),
        ("synthetic.mp4", "file"),
        ("C:/videos/a.avi", "file"),
    ],
)
def test_spec_kinds(spec: str | int, kind: str) -> None:
    source = open_source(spec, CaptureOptions())
    assert isinstance(source, OpenCVSource)
    assert source.kind == kind


def test_is_stream_url() -> None:
    assert is_stream_url("http://x/y") and is_stream_url("srt://x:1")
    assert not is_stream_url("file.mp4") and not is_stream_url("ftp://x/y")


def test_empty_spec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty source"):
        OpenCVSource("")


def test_missing_file_fails_before_opencv(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot open file .*nope\.mp4: no such file; check the path"):
        OpenCVSource(str(tmp_path / "nope.mp4")).open()


def test_non_video_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(SourceError, match="not a video OpenCV can read"):
        OpenCVSource(str(path)).open()


def test_absent_camera_says_to_check_its_number() -> None:
    source = OpenCVSource(63)
    with pytest.raises(SourceError, match=r"cannot open camera 63: no such device.*check the camera number") as info:
        source.open()
    assert "--source" not in str(info.value)  # run takes the camera as SOURCE, not as a flag


def test_a_folder_says_it_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a folder, not a video file"):
        OpenCVSource(str(tmp_path)).open()


def test_file_source_reads_every_frame_then_none(tmp_path: Path) -> None:
    source = OpenCVSource(str(write_video(tmp_path / "clip.avi", 20)))
    info = source.open()
    assert (info.fps, info.width, info.height, info.frame_count) == (25.0, 64, 48, 20)
    assert (info.live, info.paced, info.kind) == (False, True, "file")
    levels = []
    while (image := source.read()) is not None:
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        levels.append(int(image.mean()))
    assert len(levels) == 20
    assert levels == sorted(levels)
    source.close()
    source.close()
    with pytest.raises(SourceError, match="not open"):
        source.read()


def test_file_source_reopens_from_the_start(tmp_path: Path) -> None:
    source = OpenCVSource(str(write_video(tmp_path / "clip.avi", 5)))
    source.open()
    first = source.read()
    source.read()
    source.open()
    again = source.read()
    assert first is not None and again is not None
    assert np.array_equal(first, again)
    source.close()


def test_real_sample_file_reports_its_format() -> None:
    source = OpenCVSource(str(sample_video("bikes.mp4")))
    info = source.open()
    assert (info.width, info.height, info.fps, info.frame_count) == (640, 272, 25.0, 250)
    image = source.read()
    assert image is not None and image.shape == (272, 640, 3)
    source.close()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (25.0, 25.0),
        (29.97, 29.97),
        (0.0, None),
        (-1.0, None),
        (float("nan"), None),
        (90000.0, None),
    ],
)
def test_sane_fps(raw: float, expected: float | None) -> None:
    assert sane_fps(raw) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fourcc": "MJPEG"},
        {"backend": "no_such_backend"},
        {"width": 0},
        {"fps": -5.0},
        {"read_timeout_s": 0.0},
    ],
)
def test_capture_options_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        CaptureOptions(**kwargs)


def test_capture_options_backend_id() -> None:
    assert CaptureOptions(backend="ffmpeg").backend_id == cv2.CAP_FFMPEG
    assert CaptureOptions().backend_id is None


def test_synthetic_frames_are_deterministic_and_move() -> None:
    a, b = SyntheticSource(320, 240, seed=3), SyntheticSource(320, 240, seed=3)
    a.open()
    b.open()
    first, second = a.read(), a.read()
    same = b.read()
    assert first is not None and second is not None and same is not None
    assert first.shape == (240, 320, 3) and first.dtype == np.uint8
    assert np.array_equal(first, same)
    assert not np.array_equal(first, second)
    assert np.array_equal(second, a.frame(1))
    assert not np.array_equal(first, SyntheticSource(320, 240, seed=4).frame(0))


def test_synthetic_frames_are_independent_arrays() -> None:
    source = SyntheticSource(64, 64)
    source.open()
    first = source.read()
    assert first is not None
    kept = first.copy()
    source.read()
    assert np.array_equal(first, kept)


def test_synthetic_clip_ends_and_reopen_restarts() -> None:
    source = SyntheticSource(64, 48, fps=10.0, frames=3, live=False)
    info = source.open()
    assert (info.live, info.paced, info.frame_count, info.kind) == (False, True, 3, "synthetic")
    frames = [source.read() for _ in range(4)]
    assert [f is None for f in frames] == [False, False, False, True]
    source.close()
    with pytest.raises(SourceError, match="not open"):
        source.read()
    source.open()
    again = source.read()
    assert again is not None and frames[0] is not None
    assert np.array_equal(again, frames[0])


@pytest.mark.parametrize(
    ("spec", "size", "fps", "frames", "live"),
    [
        ("synthetic", (1280, 720), 30.0, None, True),
        ("synthetic:640x480@25", (640, 480), 25.0, None, True),
        ("synthetic:320x240@12.5:100", (320, 240), 12.5, 100, False),
        ("synthetic:320x240", (320, 240), 30.0, None, True),
        ("Synthetic:10", (1280, 720), 30.0, 10, False),
    ],
)
def test_synthetic_specs(spec: str, size: tuple[int, int], fps: float, frames: int | None, live: bool) -> None:
    source = open_source(spec, CaptureOptions())
    assert isinstance(source, SyntheticSource)
    info = source.open()
    assert ((info.width, info.height), info.fps, info.frame_count, info.live) == (size, fps, frames, live)


@pytest.mark.parametrize(
    "spec",
    [
        "synthetic:",
        "synthetic:640x",
        "synthetic:1x2x3",
        "synthetic:axb@30",
        "synthetic:8x8@30",
    ],
)
def test_bad_synthetic_specs_explain_the_syntax(spec: str) -> None:
    with pytest.raises(ConfigError, match="synthetic"):
        open_source(spec, CaptureOptions())


def test_constructors_do_not_open_anything(tmp_path: Path) -> None:
    assert OpenCVSource(str(tmp_path / "missing.mp4")).info is None
    assert OpenCVSource(5).info is None
    assert SyntheticSource().info is None


def test_mjpeg_stream_is_readable_and_its_end_is_a_failed_read() -> None:
    with MjpegServer(fps=50.0) as server:
        source = OpenCVSource(server.url, CaptureOptions(open_timeout_s=5.0, read_timeout_s=2.0))
        info = source.open()
        assert (info.live, info.paced, info.kind, info.frame_count) == (True, False, "stream", None)
        assert (info.width, info.height) == (160, 120)
        for _ in range(3):
            image = source.read()
            assert image is not None and image.shape == (120, 160, 3)
        server.stop()
        failed = None
        for _ in range(200):  # frames already buffered may still arrive before the end shows
            failed = source.read()
            if failed is None:
                break
        assert failed is None
        server.start()
        source.open()
        assert source.read() is not None
        source.close()


def test_only_streams_and_cameras_may_come_back_when_they_cannot_open() -> None:
    stream = OpenCVSource("rtsp://127.0.0.1:9/stream")
    assert may_come_back(stream) and may_come_back(OpenCVSource(0))
    assert may_come_back(OrientedSource(stream, Orientation(rotation=90)))
    assert not may_come_back(OpenCVSource("clip.mp4"))
    assert not may_come_back(SyntheticSource(64, 48))
