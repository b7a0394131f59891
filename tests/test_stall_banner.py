"""One banner for a source that stopped: the capture's own, not also the display's "No new video"."""

from __future__ import annotations

import dataclasses

import numpy as np

from livecam.frames import Frame
from livecam.live.camera import STALL_S, Camera
from livecam.live.capture import STATUS_KEY
from livecam.live.stats import StatsRecorder
from livecam.live.status import StatusBoard
from livecam.overlay import OverlayStyle
from livecam.sources import SourceInfo, SyntheticSource


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def camera(stall_timeout_s: float | None) -> tuple[Camera, Clock]:
    clock = Clock()
    status = StatusBoard()
    cam = Camera(
        SyntheticSource(64, 48, 25, live=True),
        None,
        StatsRecorder(),
        status,
        style=OverlayStyle(),
        max_age=1.0,
        detecting=False,
        motion=False,
        hud=False,
        boxes_log=None,
        clock=clock,
    )
    info = SourceInfo(fps=25.0, width=64, height=48, live=True, name="s", kind="stream")
    cam.info = dataclasses.replace(info, stall_timeout_s=stall_timeout_s)
    cam.last_frame = Frame(0, np.zeros((48, 64, 3), np.uint8), clock.now)
    cam.last_frame_at = clock.now
    return cam, clock


def test_a_camera_without_its_own_stall_check_says_no_new_video() -> None:
    cam, clock = camera(None)
    clock.now += STALL_S + 0.1
    cam.shown_frame()
    assert cam.status.lines() == ["No new video for 2 s"]


def test_a_stream_shows_only_the_captures_stall_banner() -> None:
    cam, clock = camera(3.0)
    clock.now += STALL_S + 0.1
    cam.shown_frame()
    assert cam.status.lines() == []  # the capture declares the stall on its own clock
    cam.status.set(STATUS_KEY, "Stream stalled - no new video for 3 s")
    clock.now += 1.0
    cam.shown_frame()
    assert cam.status.lines() == ["Stream stalled - no new video for 3 s"]


def test_a_dropout_banner_replaces_no_new_video() -> None:
    cam, clock = camera(None)
    clock.now += STALL_S + 0.1
    cam.shown_frame()
    cam.status.set(STATUS_KEY, "Camera disconnected - retrying in 1 s")
    clock.now += 1.0
    cam.shown_frame()
    assert cam.status.lines() == ["Camera disconnected - retrying in 1 s"]


def test_the_watchdogs_message_is_left_alone() -> None:
    cam, clock = camera(3.0)
    cam.status.set("video", "No new video - reopening failed, retrying in 30 s")
    cam.status.set(STATUS_KEY, "Stream disconnected - reconnecting")
    clock.now += STALL_S + 0.1
    cam.shown_frame()
    assert "No new video - reopening failed, retrying in 30 s" in cam.status.lines()
