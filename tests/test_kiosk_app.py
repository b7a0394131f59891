import logging
import threading
from collections.abc import Callable

import numpy as np
import pytest

from livecam.backoff import Backoff
from livecam.display import NO_KEY
from livecam.errors import SourceError
from livecam.kiosk.app import CaptureStuck, Outcome, Supervisor
from livecam.kiosk.display import KioskDisplay
from livecam.kiosk.keys import QuitSequence
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.overlay import draw_status
from livecam.sources import SourceInfo, SyntheticSource, VideoSource

FAST = Backoff(initial=0.01, maximum=0.02, jitter=0.0)


class Screen:
    """The real display under a KioskDisplay: counts pictures, answers with scripted keys."""

    fullscreen = True
    closed_by_user = False

    def __init__(self, keys: list[int] | None = None, fail_first: int = 0) -> None:
        self.keys = list(keys or [])
        self.fail_first = fail_first
        self.pictures = 0
        self.closed = False
        self.last: np.ndarray | None = None

    def show(self, image: np.ndarray) -> int:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("boom")
        self.pictures += 1
        self.last = image
        return self.keys.pop(0) if self.keys else NO_KEY

    def set_fullscreen(self, on: bool) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class StallingCamera:
    """A live camera that delivers a few frames, then stops delivering without ever ending.

    After the frames it reports a dropout, and every reconnect fails: the capture thread keeps
    retrying, so the pipeline neither ends nor shows anything new.
    """

    def __init__(self, frames: int = 5) -> None:
        self.frames = frames
        self.info: SourceInfo | None = None
        self._sent = 0
        self._opened = False

    def open(self) -> SourceInfo:
        if self._opened:
            raise SourceError("camera gone")
        self._opened = True
        self.info = SourceInfo(fps=100.0, width=64, height=48, live=True, name="stalling camera", paced=True)
        return self.info

    def read(self) -> np.ndarray | None:
        if self._sent >= self.frames:
            return None
        self._sent += 1
        return np.full((48, 64, 3), self._sent, np.uint8)

    def close(self) -> None:
        pass


class MissingCamera:
    info = None

    def open(self) -> SourceInfo:
        raise SourceError("cannot open camera 7: no such device")

    def read(self) -> None:
        return None

    def close(self) -> None:
        pass


def kiosk(screen: Screen, stop: threading.Event) -> KioskDisplay:
    return KioskDisplay(screen, QuitSequence.parse("qqq"), stop)


def test_watchdog_restarts_a_stalled_pipeline() -> None:
    stop = threading.Event()
    display = kiosk(Screen(), stop)
    built: list[LivePipeline] = []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        if len(built) == 2:
            stop.set()  # the third pipeline only starts to be stopped: the test ends
        built.append(LivePipeline(StallingCamera(), None, display, LiveConfig(hud=False), stop=pipeline_stop))
        return built[-1]

    supervisor = Supervisor(make_pipeline, display, stop, watchdog_s=0.3, backoff=FAST, tick=0.02)
    supervisor.run()
    assert supervisor.outcomes[Outcome.STALLED] == 2
    assert supervisor.restarts == 2
    # Up to the camera's 5 frames each: how many the display caught before the stall depends on
    # how busy the machine is (it shows the newest frame), so the count is not asserted.
    assert all(p.stats.displayed_frames <= 5 for p in built[:2])


def test_a_source_that_cannot_open_is_retried_with_a_banner(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    screen = Screen()
    display = kiosk(screen, stop)
    banners: list[list[str]] = []
    attempts = []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        attempts.append(1)
        banners.append(supervisor.status.lines())
        if len(attempts) == 4:
            stop.set()
        source = MissingCamera() if len(attempts) < 3 else SyntheticSource(64, 48, 20.0, frames=10, live=False)
        return LivePipeline(source, None, display, LiveConfig(hud=False), stop=pipeline_stop)

    supervisor = Supervisor(make_pipeline, display, stop, watchdog_s=5, backoff=FAST, tick=0.01)
    with caplog.at_level(logging.INFO, logger="livecam.kiosk"):
        supervisor.run()
    assert supervisor.outcomes[Outcome.FAILED] == 2 and supervisor.outcomes[Outcome.ENDED] == 1
    assert banners[1][0].startswith("Camera not available - retrying in")
    assert banners[3] == []  # the clip played, so the banner went away
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["cannot start the video: cannot open camera 7: no such device"]  # once, not per retry
    assert screen.pictures >= 10


def test_an_unexpected_exception_is_logged_and_the_pipeline_restarted(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    screen = Screen(fail_first=1)
    display = kiosk(screen, stop)
    calls = []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        calls.append(1)
        if len(calls) == 3:
            stop.set()
        return LivePipeline(
            SyntheticSource(64, 48, 200.0, frames=5, live=False),
            None,
            display,
            LiveConfig(hud=False),
            stop=pipeline_stop,
        )

    supervisor = Supervisor(make_pipeline, display, stop, watchdog_s=5, backoff=FAST, tick=0.01)
    with caplog.at_level(logging.DEBUG, logger="livecam.kiosk"):
        supervisor.run()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["pipeline 1 failed: RuntimeError: boom"]
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)
    assert supervisor.outcomes[Outcome.FAILED] == 1 and supervisor.outcomes[Outcome.ENDED] == 1


def test_keys_are_ignored_but_the_quit_sequence_stops_the_process() -> None:
    stop = threading.Event()
    q = ord("q")
    screen = Screen(keys=[ord("f"), ord("h"), 27, ord("s"), q, q, q])
    display = kiosk(screen, stop)

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        return LivePipeline(SyntheticSource(64, 48, 200.0), None, display, LiveConfig(hud=False), stop=pipeline_stop)

    Supervisor(make_pipeline, display, stop, watchdog_s=5, tick=0.01).run()
    assert stop.is_set() and not screen.closed
    display.shutdown()
    assert screen.closed


@pytest.mark.parametrize("key", [ord("q"), 27])
def test_the_pipeline_shortcuts_do_not_reach_the_pipeline(key: int) -> None:
    stop = threading.Event()
    display = kiosk(Screen(keys=[key] * 3), stop)
    assert display.show(np.zeros((48, 64, 3), np.uint8)) == NO_KEY


class HungCamera:
    """A live camera that delivers a few frames, then blocks in ``read`` until :attr:`gate` is set."""

    def __init__(self, frames: int = 3) -> None:
        self.frames = frames
        self.info: SourceInfo | None = None
        self.gate = threading.Event()
        self.closed = threading.Event()
        self._sent = 0

    def open(self) -> SourceInfo:
        self.closed.clear()
        self.info = SourceInfo(fps=100.0, width=64, height=48, live=True, name="hung camera", paced=False)
        return self.info

    def read(self) -> np.ndarray | None:
        if self._sent >= self.frames:
            self.gate.wait(30)
            return None
        self._sent += 1
        return np.full((48, 64, 3), 99, np.uint8)

    def close(self) -> None:
        self.closed.set()


class OnLog(logging.Handler):
    """Runs ``action`` when a record containing ``text`` is logged."""

    def __init__(self, text: str, action: Callable[[], object]) -> None:
        super().__init__(logging.WARNING)
        self.text = text
        self.action = action

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.action()


def run_logged(supervisor: Supervisor, handler: logging.Handler) -> None:
    logger = logging.getLogger("livecam.kiosk.app")
    logger.addHandler(handler)
    try:
        supervisor.run()
    finally:
        logger.removeHandler(handler)


@pytest.mark.slow
def test_a_capture_stuck_in_read_lets_the_source_go_before_it_is_opened_again() -> None:
    stop = threading.Event()
    display = kiosk(Screen(), stop)
    camera = HungCamera()
    closed_at_next_start: list[bool] = []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        source: VideoSource = camera
        if closed_at_next_start or camera.info is not None:
            closed_at_next_start.append(camera.closed.is_set())
            stop.set()
            source = MissingCamera()
        return LivePipeline(source, None, display, LiveConfig(hud=False), stop=pipeline_stop)

    supervisor = Supervisor(
        make_pipeline,
        display,
        stop,
        watchdog_s=0.3,
        backoff=FAST,
        tick=0.02,
        release_backoff=Backoff(initial=20.0, maximum=20.0, jitter=0.0),
    )
    try:
        # The read is released only once the supervisor has found the capture stuck.
        run_logged(supervisor, OnLog("still blocked reading the source", camera.gate.set))
    finally:
        camera.gate.set()
    assert supervisor.outcomes[Outcome.STALLED] == 1
    assert closed_at_next_start == [True]


@pytest.mark.slow
def test_too_many_stuck_captures_end_the_run_with_an_error() -> None:
    stop = threading.Event()
    display = kiosk(Screen(), stop)
    cameras: list[HungCamera] = []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        cameras.append(HungCamera())
        return LivePipeline(cameras[-1], None, display, LiveConfig(hud=False), stop=pipeline_stop)

    supervisor = Supervisor(
        make_pipeline, display, stop, watchdog_s=0.3, backoff=FAST, tick=0.02, max_stuck=1, release_backoff=FAST
    )
    try:
        with pytest.raises(CaptureStuck, match="2 capture threads are stuck"):
            supervisor.run()
    finally:
        for camera in cameras:
            camera.gate.set()
    assert len(cameras) == 2 and not stop.is_set()


class GreyClip:
    """A short non-live clip of flat grey frames."""

    info: SourceInfo | None = None

    def open(self) -> SourceInfo:
        self._left = 5
        self.info = SourceInfo(fps=200.0, width=64, height=48, live=False, name="grey clip", paced=True)
        return self.info

    def read(self) -> np.ndarray | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return np.full((48, 64, 3), 200, np.uint8)

    def close(self) -> None:
        pass


def test_the_waiting_screen_is_the_last_raw_frame_dimmed_with_only_the_current_status() -> None:
    stop = threading.Event()
    screen = Screen()
    display = kiosk(screen, stop)
    seen: list[np.ndarray | None] = []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        seen.append(None if screen.last is None else screen.last.copy())
        if len(seen) == 3:
            stop.set()
        source = GreyClip() if len(seen) == 1 else MissingCamera()
        return LivePipeline(source, None, display, LiveConfig(hud=True), stop=pipeline_stop)

    supervisor = Supervisor(make_pipeline, display, stop, watchdog_s=5, backoff=FAST, tick=0.01)
    supervisor.run()
    after_clip, waiting = seen[1], seen[2]
    assert after_clip is not None and waiting is not None
    assert (after_clip != 200).any()  # the clip was shown with its HUD
    expected = draw_status(np.full((48, 64, 3), 100, np.uint8), ["Camera not available - retrying in 0 s"])
    assert np.array_equal(waiting, expected)
