import threading

import pytest
from stub_api import Reply, StubApi, assert_all_shown

from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.errors import SourceError
from livecam.pipeline import LiveConfig, LivePipeline
from livecam.sources import SyntheticSource

KEY = "sk-live-SECRET-77aa"


def clip(frames: int, fps: float = 30.0, width: int = 640, height: int = 360) -> SyntheticSource:
    return SyntheticSource(width, height, fps, frames=frames, live=False)


def test_every_source_frame_is_displayed_while_the_api_takes_500_ms():
    with StubApi(latency=0.5) as api:
        with LivePipeline(clip(90), ApiConfig(api.url, "test/1", api_key=KEY), HeadlessDisplay()) as pipe:
            stats = pipe.run()
    assert stats["source_frames"] == 90
    assert_all_shown(stats)
    # One request in flight at 500 ms each over 3 s of video: frames are skipped, not queued.
    assert 2 <= stats["requests_sent"] <= 8
    assert stats["responses_ok"] >= 1
    assert stats["prediction_age_ms"]["p50"] is not None


def test_in_flight_requests_overlap_on_the_server():
    with StubApi(latency=0.3) as api:
        config = LiveConfig(in_flight=3)
        with LivePipeline(clip(60), ApiConfig(api.url, "test/1"), HeadlessDisplay(), config) as pipe:
            stats = pipe.run()
        assert api.max_concurrent >= 2
    assert_all_shown(stats)


def test_a_late_answer_never_replaces_a_newer_one():
    gate = threading.Event()
    first = []

    def script(seen):
        if not first:
            first.append(seen)
            gate.wait(10)  # the first frame's answer arrives after a later frame's
        return Reply(body={"predictions": []})

    with StubApi(script=script) as api:
        with LivePipeline(clip(40), ApiConfig(api.url, "test/1"), HeadlessDisplay(),
                          LiveConfig(in_flight=2)) as pipe:
            pipe.start()
            api.wait_for_requests(3)
            gate.set()
            stats = pipe.run()
            held = pipe.predictions.peek()
    assert held is not None and held.frame_seq > 0
    assert stats["stale_responses"] >= 1


def test_failing_api_keeps_video_going_and_backs_off():
    with StubApi(script=lambda s: Reply(503, {"message": "not ready"})) as api:
        with LivePipeline(clip(60), ApiConfig(api.url, "test/1", api_key=KEY), HeadlessDisplay()) as pipe:
            stats = pipe.run()
    assert_all_shown(stats)
    assert stats["responses_failed"] == stats["requests_sent"] <= 6
    assert stats["errors"] == {"http_503": stats["responses_failed"]}


def test_unopenable_source_raises_a_clear_error(tmp_path):
    from livecam.sources import OpenCVSource

    with pytest.raises(SourceError, match="missing.mp4"):
        LivePipeline(OpenCVSource(str(tmp_path / "missing.mp4")), None, HeadlessDisplay()).start()


def test_stop_from_outside_ends_an_endless_source_promptly():
    stop = threading.Event()
    with StubApi(latency=2.0) as api:
        pipe = LivePipeline(SyntheticSource(320, 240, 30, live=True), ApiConfig(api.url, "test/1"),
                            HeadlessDisplay(), stop=stop)
        with pipe:
            pipe.start()
            api.wait_for_requests(1)
            stop.set()
            stats = pipe.run()
    assert stats["source_frames"] >= 1


def test_no_api_shows_video_alone():
    with LivePipeline(clip(10), None, HeadlessDisplay()) as pipe:
        stats = pipe.run()
    assert_all_shown(stats)
    assert stats["requests_sent"] == 0
