import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from json_view import loose
from stepped import run_every_frame
from stub_api import Reply, Seen, StubApi

from livecam.client import ApiConfig, DetectionClient
from livecam.display import HeadlessDisplay
from livecam.errors import SourceError
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import SyntheticSource

KEY = "sk-live-SECRET-77aa"


def clip(frames: int, fps: float = 30.0, width: int = 640, height: int = 360) -> SyntheticSource:
    return SyntheticSource(width, height, fps, frames=frames, live=False)


def run_stepped(
    frames: int,
    api: ApiConfig | None,
    config: LiveConfig | None = None,
    keys: str = "",
    on_shown: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Every frame of a ``frames``-frame clip, each read once the previous one was shown (asserted)."""
    source = SyntheticSource(160, 120, 30, frames=frames, live=False)
    return run_every_frame(source, api, config, keys=keys, on_shown=on_shown)[1]


def request_gaps(api: StubApi) -> list[float]:
    """Seconds between the arrivals of consecutive requests (of the last few kept)."""
    times = [seen.at for seen in api.seen]
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def test_every_source_frame_is_displayed_while_the_api_holds_its_answer() -> None:
    released = threading.Event()

    def never_during_the_clip(seen: Seen) -> Reply:
        released.wait(60)  # opened once the last frame was shown
        return Reply(body={"predictions": []})

    def release_after_the_last_frame(shown: int) -> None:
        if shown >= 90:
            released.set()

    with StubApi(script=never_during_the_clip) as api:
        try:
            stats = run_stepped(90, ApiConfig(api.url, "test/1", api_key=KEY), on_shown=release_after_the_last_frame)
        finally:
            released.set()
    assert stats["source_frames"] == stats["displayed_frames"] == 90
    # One request in flight, unanswered for the whole clip: frames are skipped, not queued (the
    # answer let in at the end may start one more).
    assert 1 <= stats["requests_sent"] <= 2


def test_in_flight_requests_overlap_on_the_server() -> None:
    overlapping = threading.Event()
    stop = threading.Event()
    with StubApi() as api:

        def once_three_are_open(seen: Seen) -> Reply:
            overlapping.wait(30)
            return Reply(body={"predictions": []})

        api.script = once_three_are_open  # nothing is answered until three requests are open at once
        pipe = LivePipeline(
            SyntheticSource(160, 120, 30, live=True),
            ApiConfig(api.url, "test/1"),
            HeadlessDisplay(),
            LiveConfig(in_flight=3),
            stop=stop,
        )
        with pipe:
            pipe.start()
            try:
                assert api.wait_until(lambda: api.active >= 3, timeout=30)
            finally:
                overlapping.set()
                stop.set()
            pipe.run()
    assert api.max_concurrent == 3


def test_a_late_answer_never_replaces_a_newer_one() -> None:
    gate = threading.Event()
    gated: list[int] = []

    def script(seen: Seen) -> Reply:
        if not gated:
            gated.append(seen.client_port)
            gate.wait(10)  # this answer arrives after later frames' answers
        return Reply(body={"predictions": []})

    stop = threading.Event()
    with StubApi(script=script) as api:
        pipe = LivePipeline(
            SyntheticSource(160, 120, 30, live=True),
            ApiConfig(api.url, "test/1"),
            HeadlessDisplay(),
            LiveConfig(in_flight=2),
            stop=stop,
        )
        with pipe:
            pipe.start()
            # The other worker's 4th request means it has published the answer to its 3rd, for a
            # frame claimed after the gated one.
            assert api.wait_for_requests(4)
            gate.set()
            # The gated worker sends again only after it has handled its late answer.
            seen_before = api.requests

            def gated_worker_sent_again() -> bool:
                new = api.requests - seen_before
                return new > 0 and any(s.client_port == gated[0] for s in api.seen[-new:])

            assert api.wait_until(gated_worker_sent_again)
            stop.set()
            stats = loose(pipe.run().to_json())
    assert stats["stale_responses"] >= 1
    held = pipe.predictions.peek()
    assert held is not None and held.frame_seq > 1


def test_failing_api_keeps_video_going_and_backs_off() -> None:
    with StubApi(script=lambda s: Reply(503, {"message": "not ready"})) as api:
        stats = run_stepped(60, ApiConfig(api.url, "test/1", api_key=KEY))
        gaps = request_gaps(api)
    assert stats["displayed_frames"] == 60
    assert stats["responses_failed"] == stats["requests_sent"] >= 1
    assert stats["errors"] == {"http_503": stats["responses_failed"]}
    # Backing off: a failed request is retried no sooner than the outage backoff's first step
    # (0.25 s less its 20 % jitter); a busy machine only makes the gaps longer.
    assert all(gap >= 0.19 for gap in gaps), gaps


def test_unopenable_source_raises_a_clear_error(tmp_path: Path) -> None:
    from livecam.sources import OpenCVSource

    with pytest.raises(SourceError, match="missing.mp4"):
        LivePipeline(OpenCVSource(str(tmp_path / "missing.mp4")), None, HeadlessDisplay()).start()


def livecam_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("livecam-sender", "capture"))]


def test_stop_from_outside_ends_an_endless_source_and_every_thread() -> None:
    stop = threading.Event()
    with StubApi(latency=2.0) as api:
        pipe = LivePipeline(
            SyntheticSource(320, 240, 30, live=True),
            ApiConfig(api.url, "test/1"),
            HeadlessDisplay(),
            LiveConfig(in_flight=2),
            stop=stop,
        )
        with pipe:
            pipe.start()
            assert api.wait_for_requests(1)
            stop.set()
            stats = loose(pipe.run().to_json())  # joins are bounded (JOIN_TIMEOUT_S) even with a request in flight
    assert stats["source_frames"] >= 1
    assert livecam_threads() == []


def test_no_api_shows_video_alone() -> None:
    stats = run_stepped(60, None)
    assert stats["source_frames"] == stats["displayed_frames"] == 60
    assert stats["requests_sent"] == 0


class StallingSource(SyntheticSource):
    """A camera that delivers a few frames, then hangs in read() until released."""

    def __init__(self, frames_before_stall: int) -> None:
        super().__init__(160, 120, 50, live=True)
        self.release = threading.Event()
        self._left = frames_before_stall

    def read(self) -> Image | None:
        if self._left == 0:
            self.release.wait(30)
            return None
        self._left -= 1
        return super().read()


class CountingDisplay(HeadlessDisplay):
    def __init__(self, until: int) -> None:
        super().__init__()
        self.shown = 0
        self.reached = threading.Event()
        self._until = until

    def show(self, image: Image) -> int:
        self.shown += 1
        if self.shown >= self._until:
            self.reached.set()
        return -1


def test_a_stalled_source_keeps_the_picture_with_a_status_line() -> None:
    from livecam.live import pipeline as pipeline_module

    source = StallingSource(frames_before_stall=3)
    display = CountingDisplay(until=3 + int(pipeline_module.STALL_S / 0.25) + 2)
    stop = threading.Event()
    pipe = LivePipeline(source, None, display, stop=stop)
    runner = threading.Thread(target=pipe.run)
    runner.start()
    try:
        assert display.reached.wait(20)
        assert any(line.startswith("No new video") for line in pipe.status.lines())
    finally:
        stop.set()
        source.release.set()
        runner.join(10)
    assert not runner.is_alive()
    assert 1 <= pipe.stats.displayed_frames <= 3


def test_detection_counts_stay_bounded_whatever_names_the_api_invents() -> None:
    from livecam.live.stats import MAX_CLASS_NAMES, StatsRecorder

    stats = StatsRecorder()
    for i in range(5 * MAX_CLASS_NAMES):
        stats.response_ok(0.01, stale=False, classes=[f"name-{i}"])
    counts = stats.snapshot().detections
    assert len(counts) <= MAX_CLASS_NAMES + 1
    assert sum(counts.values()) == 5 * MAX_CLASS_NAMES


class KeyDisplay(HeadlessDisplay):
    """Presses ``key`` on the first frame shown."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self._keys = [ord(key)]

    def show(self, image: Image) -> int:
        return self._keys.pop() if self._keys else -1


def test_a_snapshot_that_cannot_be_saved_does_not_end_the_run(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    stats = run_stepped(30, None, LiveConfig(snapshot_dir=blocker / "snaps"), keys="s")
    assert stats["source_frames"] == stats["displayed_frames"] == 30


def test_snapshot_key_saves_a_png(tmp_path: Path) -> None:
    with LivePipeline(clip(5), None, KeyDisplay("s"), LiveConfig(snapshot_dir=tmp_path)) as pipe:
        pipe.run()
    assert len(list(tmp_path.glob("*.png"))) == 1


def test_a_refused_key_is_retried_slowly_not_stormed() -> None:
    with StubApi(script=lambda s: Reply(401, {"message": "bad key"})) as api:
        stats = run_stepped(90, ApiConfig(api.url, "test/1", api_key=KEY))
        gaps = request_gaps(api)
    assert stats["displayed_frames"] == 90
    assert stats["requests_sent"] >= 1
    assert set(stats["errors"]) == {"http_401"}
    # A refused key waits 2 s (less 20 % jitter) before the next try; an outage would wait 0.25 s.
    assert all(gap >= 1.59 for gap in gaps), gaps


class CrashingSource(SyntheticSource):
    """Reads ``frames`` frames, then fails in a way no source is expected to."""

    def __init__(self, frames: int) -> None:
        super().__init__(160, 120, 30, live=False)
        self._left = frames

    def read(self) -> Image | None:
        self._left -= 1
        if self._left < 0:
            raise ZeroDivisionError("a bug in the source")
        return super().read()


def test_a_crashed_capture_thread_is_the_run_s_failure() -> None:
    with LivePipeline(CrashingSource(5), None, HeadlessDisplay()) as pipe:
        stats = pipe.run()
    assert stats.failure is not None and "capture" in stats.failure and "ZeroDivisionError" in stats.failure
    assert stats.to_json()["failure"] == stats.failure


def test_a_crashed_sender_ends_the_run_with_its_failure() -> None:
    def broken_client() -> DetectionClient:
        raise ZeroDivisionError("a bug in the sender")

    source = SyntheticSource(160, 120, 30, live=True)  # endless: only the crash ends this run
    with LivePipeline(source, None, HeadlessDisplay(), make_client=broken_client) as pipe:
        stats = pipe.run()
    assert stats.failure is not None and "detection" in stats.failure and "ZeroDivisionError" in stats.failure


def test_progress_reports_what_the_run_has_shown() -> None:
    with LivePipeline(clip(10), None, HeadlessDisplay()) as pipe:
        before = pipe.progress()
        pipe.run()
        after = pipe.progress()
    assert before.displayed_frames == 0 and before.source_name is None
    assert after.displayed_frames == 10 and after.last_frame is not None and after.newest is None
