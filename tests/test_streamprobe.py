"""The short FFmpeg probe for TCP and RTMP streams: options, the fallback check, the environment."""

from __future__ import annotations

import os

import cv2
import pytest

from livecam import sources
from livecam.streamprobe import ENV, SHORT_PROBE_US, capture_options, needs_full_probe, short_probe_options


@pytest.mark.parametrize("url", ["tcp://127.0.0.1:5000", "rtmp://host/live/x", "RTMPS://host/live/x"])
def test_tcp_and_rtmp_get_a_short_probe(url: str) -> None:
    assert short_probe_options(url, None) == f"analyzeduration;{SHORT_PROBE_US}"


@pytest.mark.parametrize("url", ["rtsp://cam/stream", "udp://127.0.0.1:5000", "http://host/live.m3u8", "srt://h:1"])
def test_other_schemes_keep_ffmpegs_defaults(url: str) -> None:
    assert short_probe_options(url, None) is None
    assert short_probe_options(url, "rtsp_transport;udp") is None


def test_the_users_options_are_kept() -> None:
    assert short_probe_options("tcp://h:1", "fflags;nobuffer") == f"fflags;nobuffer|analyzeduration;{SHORT_PROBE_US}"


@pytest.mark.parametrize("mine", ["analyzeduration;2000000", "fflags;nobuffer|probesize;65536", " Probesize;1"])
def test_a_user_who_chose_how_to_probe_wins(mine: str) -> None:
    assert short_probe_options("rtmp://h/live/x", mine) is None


def test_a_capture_without_a_picture_size_is_probed_again() -> None:
    assert needs_full_probe(0.0, 0.0)
    assert needs_full_probe(640.0, 0.0)
    assert not needs_full_probe(640.0, 272.0)


def test_the_environment_is_set_for_the_block_then_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    with capture_options("analyzeduration;1"):
        assert os.environ[ENV] == "analyzeduration;1"
    assert ENV not in os.environ
    monkeypatch.setenv(ENV, "rtsp_transport;udp")
    with pytest.raises(RuntimeError), capture_options("x;1"):
        raise RuntimeError("the open failed")
    assert os.environ[ENV] == "rtsp_transport;udp"
    with capture_options(None):
        assert os.environ[ENV] == "rtsp_transport;udp"


class FakeCapture:
    """A ``cv2.VideoCapture`` stand-in that records the FFmpeg options each open saw."""

    opens: list[str | None] = []
    sizes: list[float] = []

    def __init__(self, *args: object) -> None:
        FakeCapture.opens.append(os.environ.get(ENV))
        self._width = FakeCapture.sizes.pop(0)

    def isOpened(self) -> bool:  # noqa: N802  (OpenCV's name)
        return True

    def get(self, prop: int) -> float:
        if prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            return self._width
        return 25.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize(
    ("sizes", "opens"),
    [
        ([640.0], [f"analyzeduration;{SHORT_PROBE_US}"]),  # the short probe found the picture size
        ([0.0, 640.0], [f"analyzeduration;{SHORT_PROBE_US}", None]),  # joined mid-GOP: probed again fully
    ],
)
def test_an_rtmp_open_probes_briefly_and_fully_only_when_it_must(
    monkeypatch: pytest.MonkeyPatch, sizes: list[float], opens: list[str | None]
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(FakeCapture, "opens", [])
    monkeypatch.setattr(FakeCapture, "sizes", list(sizes))
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    info = sources.OpenCVSource("rtmp://127.0.0.1:1935/live/x").open()
    assert FakeCapture.opens == opens
    assert info.width == 640
    assert ENV not in os.environ
