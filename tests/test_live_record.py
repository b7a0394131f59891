"""``run --record``: the video is written beside its target and put in place only when it holds frames."""

from __future__ import annotations

from pathlib import Path

import cv2
from test_capture import WAIT, ScriptedSource

from livecam.display import HeadlessDisplay
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import SyntheticSource

OLD = b"the recording that was there before"


def test_a_run_stopped_before_its_first_frame_leaves_the_recording_target_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(OLD)
    source = ScriptedSource([[]])  # its first read waits: no frame ever comes
    pipe = LivePipeline(source, None, HeadlessDisplay(), LiveConfig(record=target))
    try:
        pipe.start()
        assert source.in_read.wait(WAIT)
    finally:
        pipe.close()
        source.release.set()
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # nothing half-written left beside it


def test_a_recording_with_frames_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(OLD)
    source = SyntheticSource(64, 48, 30, frames=5, live=False)
    with LivePipeline(source, None, HeadlessDisplay(), LiveConfig(record=target)) as pipe:
        stats = pipe.run()
    assert stats.displayed_frames == 5
    video = cv2.VideoCapture(str(target))
    assert video.isOpened() and int(video.get(cv2.CAP_PROP_FRAME_COUNT)) >= 1
    video.release()
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
