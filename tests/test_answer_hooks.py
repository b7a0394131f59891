"""Answer hooks: the live pipeline and the annotator hand each fresh answer and its frame on."""

from __future__ import annotations

import logging
import threading

import pytest
from json_view import loose
from stub_api import StubApi

from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.frames import Frame
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.predictions import Predictions
from livecam.sources import SyntheticSource


def test_hooks_get_the_full_size_frame_and_its_answer_in_frame_order() -> None:
    seen: list[tuple[int, tuple[int, ...], float]] = []
    lock = threading.Lock()

    def record(frame: Frame, predictions: Predictions) -> None:
        with lock:
            centre = (predictions.items[0].x1 + predictions.items[0].x2) / 2
            seen.append((frame.seq, frame.image.shape, centre))

    source = SyntheticSource(1280, 720, 60, frames=60, live=False)
    with StubApi(latency=0.01) as api:
        config = LiveConfig(in_flight=3)
        with LivePipeline(source, ApiConfig(api.url, "test/1"), HeadlessDisplay(), config, on_answer=[record]) as pipe:
            stats = loose(pipe.run().to_json())
    assert len(seen) >= 3 and len(seen) <= stats["responses_ok"]
    seqs = [s for s, _, _ in seen]
    assert seqs == sorted(set(seqs))  # fresh answers only, oldest first, even with 3 in flight
    assert all(shape == (720, 1280, 3) for _, shape, _ in seen)  # not the 640-wide copy that was sent
    assert all(abs(centre - 640) < 2 for _, _, centre in seen)  # boxes in the frame's own pixels


def test_a_failing_hook_is_logged_once_and_detection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    def broken(frame: Frame, predictions: Predictions) -> None:
        raise RuntimeError("bug in a hook")

    source = SyntheticSource(320, 240, 60, frames=60, live=False)
    with StubApi() as api, caplog.at_level(logging.WARNING):
        with LivePipeline(source, ApiConfig(api.url, "test/1"), HeadlessDisplay(), on_answer=[broken]) as pipe:
            stats = loose(pipe.run().to_json())
    assert stats["responses_ok"] >= 3
    assert caplog.text.count("an answer hook failed") == 1
