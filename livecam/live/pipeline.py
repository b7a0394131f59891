"""The live pipeline: capture thread -> sender threads -> display loop, with one stop event.

Example:
    >>> from livecam import ApiConfig, LivePipeline, open_source, HeadlessDisplay
    >>> api = ApiConfig("http://127.0.0.1:9001", "coco/1")
    >>> with LivePipeline(open_source("video.mp4"), api, HeadlessDisplay()) as pipeline:
    ...     stats = pipeline.run()
    >>> stats.displayed_frames

The pipeline wires the threads and runs the display loop; drawing is :mod:`.compose`, the
window's keys :mod:`.keys`, the counters :mod:`.stats`. Given several sources it runs one
:class:`~livecam.live.camera.Camera` (capture, slots, motion thread) per source, shares the servers
among them (:mod:`.fairness`) and shows them in a grid (:mod:`.grid`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from livecam.balance.pool import ServerPool, server_label
from livecam.balance.window import InFlightWindow
from livecam.client import ApiConfig, DetectionClient
from livecam.cost.budget import RequestBudget
from livecam.cost.policy import SendPolicy
from livecam.display import Display, VideoRecorder
from livecam.errors import OutputError, SourceError
from livecam.frames import Frame, Image
from livecam.live.boxes_log import BoxesLog
from livecam.live.camera import STALL_S, Camera, CameraCounters
from livecam.live.compose import ShownHook, warm_up_drawing
from livecam.live.fairness import CameraTurns
from livecam.live.grid import GridLayout, GridView, auto_shape, fit_into
from livecam.live.keys import KeyBindings
from livecam.live.opener import Reopening
from livecam.live.sender import AnswerHook, SenderPool
from livecam.live.slot import Doorbell, LatestSlot
from livecam.live.stats import MotionStats, RunStats, SourceSummary, StatsRecorder
from livecam.live.status import StatusBoard
from livecam.motion import Carried
from livecam.outputs import StagedFile
from livecam.overlay import MAX_AGE_S, OverlayStyle, draw_status
from livecam.parsing import AnswerParser
from livecam.predictions import Predictions
from livecam.sources import SourceInfo, VideoSource, may_come_back
from livecam.stats import CameraStats, RequestsSkipped, ServerStats
from livecam.workers import JOIN_TIMEOUT_S

log = logging.getLogger(__name__)

_IDLE_REDRAW_S = 0.25
_MAX_REPEATS = 50
"""A grid recording repeats a picture at most this many times to catch up after a stall."""
_AUTO_SPACING_FRAMES = 0.9
"""``adaptive``: send at most once per frame interval (a little less, so no new frame waits)."""
MAX_SENDERS = 64
"""Sender threads at most, whatever the servers' windows add up to."""
__all__ = ["STALL_S", "CameraAnswerHook", "CameraShownHook", "LiveConfig", "LivePipeline", "LiveProgress"]

CameraAnswerHook = Callable[[int, Frame, Predictions], None]
"""Like :data:`~livecam.live.sender.AnswerHook`, with the camera's index first (several sources)."""
CameraShownHook = Callable[[int, Frame, Predictions | None, float | None], None]
"""Called with the camera's index, each of its newly shown frames, the boxes drawn on it and their age."""


@dataclass(frozen=True)
class LiveConfig:
    """How the live pipeline runs and draws.

    Attributes:
        in_flight: concurrent requests per server (``--in-flight``); with ``adaptive``, the most allowed.
        adaptive: send every new frame as it is captured whatever the latency, with up to
            ``in_flight`` requests open, so boxes are as fresh as the network allows
            (``--in-flight auto``; one request per frame, which hosted APIs bill).
        max_frames: stop after this many source frames.
        duration: stop after this many seconds.
        max_prediction_age: predictions older than this (seconds) are hidden, not shown stale.
        hud: start with the HUD shown (toggle with ``h``).
        style: how boxes and labels are drawn.
        snapshot_dir: where ``s`` saves PNGs.
        record: also write the annotated video to this file.
        motion: carry the boxes with their objects between answers (``--motion``).
        boxes_log: write the boxes of every displayed frame here as JSON Lines (``--boxes-log``).
        grid: (columns, rows) of the grid with several sources (``--grid``); None: by their number.
        display_fps: with several sources, show at most this many pictures per second
            (``--display-fps``); None: as often as the fastest source has a new frame.
        weights: with several sources, one weight each for a weighted round robin of the
            requests (``--weight``); None: the camera that waited longest goes first.
        camera_watchdog: with several sources and a ``reopen`` factory, a camera that showed no
            new frame for this many seconds gets a fresh capture of its source, alone (the kiosk's
            watchdog); None: never.
        send: which frames are sent (``--send``, ``--refresh``, ``--max-requests-per-minute``;
            the budget is the run's, over every camera).
    """

    in_flight: int = 1
    adaptive: bool = False
    max_frames: int | None = None
    duration: float | None = None
    max_prediction_age: float = MAX_AGE_S
    hud: bool = True
    style: OverlayStyle = field(default_factory=OverlayStyle)
    snapshot_dir: Path = Path(".")
    record: Path | None = None
    motion: bool = True
    boxes_log: Path | None = None
    grid: tuple[int, int] | None = None
    display_fps: float | None = None
    weights: tuple[float, ...] | None = None
    camera_watchdog: float | None = None
    send: SendPolicy = field(default_factory=SendPolicy)


@dataclass(frozen=True)
class LiveProgress:
    """What a running pipeline has done so far (what the kiosk's supervisor and web view read).

    Attributes:
        displayed_frames: frames shown.
        answers: answers received.
        latency_p50_ms: median request latency so far.
        newest: the newest answer, if any.
        status: the status lines shown over the picture.
        source_name: the source's name once opened.
        last_frame: the newest captured frame.
        servers: each detection server's counters (the ``servers`` section of the stats).
        cameras: with several sources, each camera's counters (the ``cameras`` section).
    """

    displayed_frames: int
    answers: int
    latency_p50_ms: float | None
    newest: Predictions | None
    status: list[str]
    source_name: str | None
    last_frame: Frame | None
    servers: tuple[ServerStats, ...] = ()
    cameras: tuple[CameraStats, ...] = ()


class LivePipeline:
    """Shows ``source`` on ``display`` with the newest detections from ``api`` drawn on it.

    The display loop runs on the thread that calls :meth:`run` (OpenCV windows need the main
    thread); capture and sending run on their own threads. Use it as a context manager so the
    threads, source and window are always released.

    Args:
        source: an unopened video source, or several: each gets its own capture, slots and
            motion thread, they share the servers, and the display shows them in a grid.
        api: where detections come from; None shows the video alone.
        display: a window, a headless display, or a recording display.
        config: run options.
        make_client: builds a detection client (tests inject a transport here).
        on_frame: called with every annotated frame (e.g. the kiosk's web view).
        on_answer: called on a sender thread with each fresh answer and its full-size frame.
        on_camera_answer: the same with the camera's index first (any number of sources).
        on_shown: called on the display thread with each newly shown frame (undrawn), the boxes
            drawn on it and their age (e.g. the Python API's ``stream``).
        on_camera_shown: the same with the camera's index first (any number of sources).
        reopen: with several sources, makes a fresh (unopened) source for camera ``i``, for
            ``config.camera_watchdog``.
        on_camera_frame: with several sources, called with a camera's index and its own
            annotated picture (full size, with its status lines) each time its tile is redrawn
            (e.g. the kiosk's per-camera web views).
        stop: an external stop event (e.g. set by a signal handler); one is made if omitted.
        clock: monotonic time source.
    """

    def __init__(
        self,
        source: VideoSource | Sequence[VideoSource],
        api: ApiConfig | None,
        display: Display,
        config: LiveConfig | None = None,
        *,
        make_client: Callable[[], DetectionClient] | None = None,
        on_frame: Sequence[Callable[[Image], None]] = (),
        on_answer: Sequence[AnswerHook] = (),
        on_camera_answer: Sequence[CameraAnswerHook] = (),
        on_shown: Sequence[ShownHook] = (),
        on_camera_shown: Sequence[CameraShownHook] = (),
        on_camera_frame: Sequence[Callable[[int, Image], None]] = (),
        reopen: Callable[[int], VideoSource] | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sources = [source] if not isinstance(source, Sequence) else list(source)
        if not sources:
            raise ValueError("at least one source")
        self.api = api
        self.display = display
        self.config = config or LiveConfig()
        if self.config.weights is not None and len(self.config.weights) != len(sources):
            raise ValueError(f"{len(self.config.weights)} weights for {len(sources)} sources")
        self.stop = stop or threading.Event()
        self.status = StatusBoard()
        self.stats = StatsRecorder()
        self.info: SourceInfo | None = None
        self._clock = clock
        self._injected_client = make_client is not None
        self._parser = AnswerParser()  # large answers are parsed in this run's own worker process
        if make_client is None and api is not None:
            make_client = lambda: DetectionClient(api, parser=self._parser)  # noqa: E731
        self._make_client = make_client
        self._on_frame = list(on_frame)
        self._on_answer = list(on_answer)
        self._on_camera_answer = list(on_camera_answer)
        self._on_camera_frame = list(on_camera_frame)
        self._reopen = reopen
        self._retired: list[Camera] = []
        self._reopening: dict[int, tuple[Camera, Reopening]] = {}
        """Cameras whose source is being opened in the background, by index: the camera it is for."""
        """Cameras replaced by the watchdog whose threads may still be finishing."""
        self._recorder: VideoRecorder | None = None
        self._record_file: StagedFile | None = None
        self._senders: SenderPool | None = None
        self._boxes_log = BoxesLog(self.config.boxes_log) if self.config.boxes_log is not None else None
        single = len(sources) == 1
        send = self.config.send if make_client is not None and self.config.send.gated else None
        budget = RequestBudget(send.max_per_minute, clock) if send and send.max_per_minute else None
        self.cameras = [
            Camera(
                src,
                None if single else i,
                self.stats if single else CameraCounters(self.stats),
                self.status if single else StatusBoard(),
                style=self.config.style,
                max_age=self.config.max_prediction_age,
                detecting=make_client is not None,
                motion=self.config.motion and make_client is not None,
                hud=self.config.hud,
                boxes_log=self._boxes_log,
                on_shown=[*on_shown, *(_shown_with_camera(hook, i) for hook in on_camera_shown)],
                clock=clock,
                send=send,
                budget=budget,
            )
            for i, src in enumerate(sources)
        ]
        first = self.cameras[0]
        self.source = first.source
        self.frames: LatestSlot[Frame] = first.frames
        self.predictions: LatestSlot[Predictions] = first.predictions
        self.carried: LatestSlot[Carried] | None = first.carried
        self._composer = first.composer
        self.view: GridView | None = None if single else GridView(len(sources))
        self._huds = _Huds(self.cameras)
        self._keys = KeyBindings(display, self._huds, self.stop, self.config.snapshot_dir, self.view)
        self._layout: GridLayout | None = None
        self._bell = Doorbell()
        self._record_start: float | None = None
        self._recorder_fps = 1.0
        self._recorded = 0
        self._closed = False

    def __enter__(self) -> LivePipeline:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def several(self) -> bool:
        """Whether the run shows several cameras."""
        return len(self.cameras) > 1

    def start(self) -> SourceInfo:
        """Open the sources and start the threads (once; :meth:`run` calls it if needed).

        Returns:
            The first source's info.

        Raises:
            SourceError: a source cannot be opened.
        """
        if self.info is not None:
            return self.info
        infos: list[SourceInfo] = []
        unopened: list[tuple[Camera, SourceError]] = []
        for camera in self.cameras:
            try:
                info = camera.open()
            except SourceError as exc:
                if not self.several:
                    raise
                if not may_come_back(camera.source):
                    raise SourceError(f"camera {camera.number}: {exc}") from exc
                unopened.append((camera, exc))
                continue
            log.info("source: %s, %dx%d at %.3g fps", info.name, info.width, info.height, info.fps)
            infos.append(info)
        if not infos:
            first, error = unopened[0]
            raise SourceError(f"camera {first.number}: {error}") from error
        for waiting, error in unopened:
            # One camera offline must not keep the others off the screen: it is opened in the background.
            log.warning("camera %d cannot be opened yet; the others start without it: %s", waiting.number, error)
            self._reopening[waiting.index or 0] = (waiting, self._reopener(waiting, waiting.source, str(error)))
        self.info = infos[0]
        sizes = [(info.width, info.height) for info in infos]
        fps = max(info.fps for info in infos)
        if self.several:
            shape = self.config.grid or auto_shape(len(self.cameras))
            self._layout = GridLayout.fit(shape, sizes)
            fps = self.config.display_fps or fps
        size = self._layout.size if self._layout is not None else sizes[0]
        if self.config.record is not None:
            self._record_file = StagedFile(self.config.record)
            self._recorder = VideoRecorder(self._record_file.path, fps, size)
            self._recorder_fps = fps
            log.info("recording to %s (%s)", self.config.record, self._recorder.codec)
        warm_up_drawing(sizes[0], self.config.style)
        if self._make_client is not None:
            servers = self._server_pool(self._make_client, sum(info.fps for info in infos))
            feeds = [camera.feed(self._hooks(i)) for i, camera in enumerate(self.cameras)]
            weights = self.config.weights
            self._senders = SenderPool(
                servers,
                feeds,
                self.stop,
                self.status,
                workers=min(MAX_SENDERS, self.config.in_flight * len(servers)),
                turns=CameraTurns(len(feeds), weights) if weights is not None else None,
                clock=self._clock,
            )
            self._senders.start()
        started = self._clock()
        self.stats.started_at = started
        for camera in self.cameras:
            camera.frames.watch(self._bell)
            camera.stats.started_at = started
            if camera.info is None:
                continue  # opened in the background
            # Capture last: until it runs, close() closes the source itself if anything above failed.
            camera.start(camera.stop if self.several else self.stop, self.config.max_frames)
        return self.info

    def _reopener(self, camera: Camera, source: VideoSource, failed: str | None = None) -> Reopening:
        return Reopening(source, camera.status, name=f"camera {camera.number}", clock=self._clock, failed=failed)

    def _hooks(self, camera: int) -> list[AnswerHook]:
        """The answer hooks of camera ``camera``."""
        return [*self._on_answer, *(_with_camera(hook, camera) for hook in self._on_camera_answer)]

    def _restart_stopped(self, now: float) -> None:
        """Open cameras in the background: those not open yet, and (with ``camera_watchdog``) each that
        showed no new frame for that long, on a fresh source; swap each in once it opened."""
        limit = self.config.camera_watchdog
        for i, camera in enumerate(self.cameras):
            if i in self._reopening:
                continue
            if limit is not None and self._reopen is not None and camera.stopped_for(now) >= limit:
                log.warning("camera %d showed no new frame for %.0f s; opening it again", i + 1, limit)
                fresh = camera.successor(self._reopen(i))
                self._reopening[i] = (fresh, self._reopener(fresh, fresh.source))
        for i, (fresh, reopening) in list(self._reopening.items()):
            camera = self.cameras[i]
            if fresh is not camera and limit is not None and camera.stopped_for(now) < limit:
                reopening.cancel(0.0)  # the old capture got going again by itself
                del self._reopening[i]
                continue
            info = reopening.poll(now)
            if info is None:
                continue
            del self._reopening[i]
            fresh.info = info
            log.info("camera %d: %s, %dx%d at %.3g fps", i + 1, info.name, info.width, info.height, info.fps)
            if fresh is not camera:
                camera.stop.set()
                camera.frames.close()
                self._retired = [old for old in self._retired if old.capture is not None and old.capture.is_alive()]
                self._retired.append(camera)
                fresh.frames.watch(self._bell)
                if self._senders is not None:
                    self._senders.replace(i, fresh.feed(self._hooks(i)))
                fresh.stats.started_at = self.stats.started_at
                self.cameras[i] = fresh
            fresh.last_frame_at = now  # the watchdog counts from its start
            fresh.start(fresh.stop, self.config.max_frames)

    def _server_pool(self, make_client: Callable[[], DetectionClient], fps: float) -> ServerPool:
        """Every server of ``api``, each with its own window; one server when a client factory was injected."""
        cfg = self.config

        def window() -> InFlightWindow:
            if cfg.adaptive:
                return InFlightWindow(cfg.in_flight, floor=_AUTO_SPACING_FRAMES / fps, adaptive=True)
            return InFlightWindow(cfg.in_flight)

        if self._injected_client or self.api is None:
            label = server_label(self.api) if self.api is not None else "client"
            return ServerPool([(label, make_client)], window, clock=self._clock)
        return ServerPool.from_api(
            self.api, window, make_client=lambda config: DetectionClient(config, parser=self._parser), clock=self._clock
        )

    def run(self) -> RunStats:
        """Run the display loop until the sources end, a limit is reached, or ``stop`` is set.

        Returns:
            The run's statistics; ``failure`` says why, if a capture or sender thread crashed.
        """
        if self.cameras[0].capture is None:
            self.start()
        deadline = None if self.config.duration is None else self._clock() + self.config.duration
        if self.several:
            self._run_grid(deadline)
            return self.finish()
        camera = self.cameras[0]
        while not self.stop.is_set():
            wait = _IDLE_REDRAW_S if deadline is None else min(_IDLE_REDRAW_S, max(0.0, deadline - self._clock()))
            frame = camera.newer(wait)
            if camera.ended:
                break
            if deadline is not None and self._clock() >= deadline:
                break
            if frame is None:
                # No new frame (a dropout, a slow start): redraw the last picture with the current
                # status, which also keeps a window responsive to keys.
                self._show(self._composer.compose(camera.shown_frame(), new=False), new=False)
                continue
            self._show(self._composer.compose(frame, new=True), new=True)
            self.stats.frame_lag(self._clock() - frame.captured_at)
        return self.finish()

    def _run_grid(self, deadline: float | None) -> None:
        """The display loop of several cameras: a picture whenever one has a new frame.

        Pictures are at least half the fastest source's frame interval apart (``--display-fps``
        sets the interval instead), so every camera's frames reach the screen however their
        clocks drift against each other, and the loop redraws when nothing comes.
        """
        assert self.info is not None
        fastest = max(camera.info.fps if camera.info else 1.0 for camera in self.cameras)
        gap = 1.0 / self.config.display_fps if self.config.display_fps else 0.5 / fastest
        last_shown = -math.inf
        while not self.stop.is_set():
            now = self._clock()
            if deadline is not None and now >= deadline:
                break
            if all(camera.ended for camera in self.cameras):
                break
            wait = last_shown + gap - now
            if wait > 0:
                if self.stop.wait(wait if deadline is None else min(wait, max(0.0, deadline - now))):
                    break
                continue
            rings = self._bell.rings
            if not any(camera.has_newer() for camera in self.cameras):
                idle = last_shown + _IDLE_REDRAW_S - now
                if idle > 0:
                    self._bell.wait(rings, idle if deadline is None else min(idle, max(0.0, deadline - now)))
                    continue
            last_shown = now
            self._show_grid(now)
            self._restart_stopped(now)

    def _show_grid(self, now: float) -> None:
        """Draw each camera's tile that changed, then show the grid (or the one camera selected)."""
        layout = self._layout
        assert layout is not None
        selected = self.view.selected if self.view is not None else None
        new = 0
        for camera in self.cameras:
            frame = camera.newer(0.0)
            if camera.index == selected:
                continue
            if frame is None and camera.tile is not None and now - camera.tile_at < _IDLE_REDRAW_S:
                continue
            canvas = camera.composer.compose(frame or camera.shown_frame(), new=frame is not None, decorate=False)
            if self._on_camera_frame:
                full = canvas.copy()
                camera.composer.decorate(full)
                for hook in self._on_camera_frame:
                    hook(camera.index or 0, full)
            tile = np.zeros((layout.cell[1], layout.cell[0], 3), np.uint8)
            fit_into(tile, canvas)
            # The totals go under the HUD of the last tile of the top row (small cells hold one panel).
            totals = [self._totals_line(now)] if camera.index == min(layout.cols, len(self.cameras)) - 1 else []
            camera.composer.decorate(tile, totals)
            camera.tile, camera.tile_at = tile, now
            new += frame is not None
        if selected is not None:
            camera = self.cameras[selected]
            frame = camera.newer(0.0)
            shown = camera.composer.compose(frame or camera.shown_frame(), new=frame is not None)
            picture = layout.single(shown)
        else:
            picture = layout.compose([camera.tile for camera in self.cameras])
            lines = self.status.lines()
            if lines:
                draw_status(picture, lines)
        self._show(picture, new=False)
        self._record(picture, now)

    def finish(self) -> RunStats:
        """Stop the threads and return the statistics."""
        ended = self._clock()
        self.stats.ended_at = ended
        for camera in self.cameras:
            camera.stats.ended_at = ended
        self.close()
        captured = sum(c.frames_captured for c in self.cameras)
        started = any(c.capture is not None for c in self.cameras)
        self.stats.source_frames = captured
        info = self.info
        return dataclasses.replace(
            self.stats.snapshot(),
            in_flight="auto" if self.config.adaptive else self.config.in_flight,
            encoder=self._senders.encoder_name if self._senders else None,
            frames_not_shown=max(0, captured - self.stats.displayed_frames) if started else 0,
            reconnects=sum(c.reconnects for c in self.cameras),
            frames_dropped_to_stay_live=sum(
                c.capture.dropped_to_stay_live for c in self.cameras if c.capture is not None
            ),
            source=None
            if info is None or self.several
            else SourceSummary(info.name, info.width, info.height, info.fps, info.live),
            failure=self._failure(),
            motion=self._motion_stats(),
            boxes_log=self._boxes_log.stats() if self._boxes_log is not None else None,
            servers=tuple(self._senders.servers.reports()) if self._senders is not None else None,
            cameras=tuple(camera.report() for camera in self.cameras) if self.several else None,
            **self._send_stats(),
        )

    def _send_stats(self) -> dict[str, Any]:
        """``send``, ``requests_skipped`` and ``requests_by_reason`` over every camera."""
        gates = [c.gate for c in self.cameras if c.gate is not None]
        skipped = [gate.skipped() for gate in gates]
        reasons: dict[str, int] = {}
        for gate in gates:
            for reason, count in gate.reasons.items():
                reasons[reason] = reasons.get(reason, 0) + count
        return {
            "send": self.config.send.mode,
            "requests_skipped": RequestsSkipped(sum(s.unchanged for s in skipped), sum(s.budget for s in skipped)),
            "requests_by_reason": reasons,
        }

    def _motion_stats(self) -> MotionStats:
        counted = MotionStats(
            enabled=self.carried is not None,
            compensated_frames=sum(c.composer.compensated_frames for c in self.cameras),
            skipped_frames=sum(c.composer.skipped_frames for c in self.cameras),
        )
        first = self.cameras[0].motion
        if first is None:
            return counted
        # Timings are the first camera's (percentiles do not add up); track ids are counted for all.
        timed = first.stats(counted)
        tracks = sum(c.motion.stats(counted).tracks_started for c in self.cameras if c.motion is not None)
        return dataclasses.replace(timed, tracks_started=tracks)

    @property
    def displayed_frames(self) -> int:
        """Frames shown so far (cheap: the kiosk's watchdog reads it every tick)."""
        return self.stats.displayed_frames

    @property
    def answers(self) -> int:
        """Answers received so far."""
        return self.stats.responses_ok

    def progress(self) -> LiveProgress:
        """What the run has done so far; safe to call from any thread."""
        p50, _ = self.stats.latency_ms()
        return LiveProgress(
            displayed_frames=self.stats.displayed_frames,
            answers=self.stats.responses_ok,
            latency_p50_ms=p50,
            newest=self.predictions.peek(),
            status=self.status.lines(),
            source_name=self.info.name if self.info is not None else None,
            last_frame=self.frames.peek(),
            servers=tuple(self._senders.servers.reports()) if self._senders is not None else (),
            cameras=tuple(camera.report() for camera in self.cameras) if self.several else (),
        )

    def _failure(self) -> str | None:
        crashed: list[tuple[str, BaseException]] = []
        for camera in self.cameras:
            error = camera.capture.error if camera.capture else None
            if error is not None:
                crashed.append(
                    (f"capture thread of camera {camera.number}" if self.several else "capture thread", error)
                )
        if self._senders is not None and self._senders.error is not None:
            crashed.append(("detection thread", self._senders.error))
        if not crashed:
            return None
        return "; ".join(f"the {name} failed: {type(e).__name__}: {e}" for name, e in crashed)

    def close(self) -> None:
        """Stop every thread (bounded joins) and release the sources and display. Idempotent.

        Call it from the thread that runs :meth:`run` (the context manager does); other threads
        stop a run by setting :attr:`stop`. Only the first call waits for the threads, each bounded
        by ``JOIN_TIMEOUT_S``.
        """
        if self._closed:
            return
        self._closed = True
        self.stop.set()
        for camera in [*self.cameras, *self._retired]:
            camera.stop.set()
            camera.frames.close()
        for _, reopening in self._reopening.values():
            reopening.cancel(0.0)  # an open still under way closes what it opens
        self.display.close()  # the window goes at once, even while a request is still in flight
        self._finish_recording()
        stuck: list[str] = []
        for camera in self.cameras:
            if camera.capture is not None and not camera.capture.join(JOIN_TIMEOUT_S):
                stuck.append("capture" if not self.several else f"capture {camera.number}")
        if self._senders is not None:
            stuck += self._senders.join(JOIN_TIMEOUT_S)
            self._senders.servers.close()
        self._parser.close()
        for camera in self.cameras:
            if camera.motion is not None and not camera.motion.join(JOIN_TIMEOUT_S):
                stuck.append("motion" if not self.several else f"motion {camera.number}")
        if self._boxes_log is not None:
            self._boxes_log.close()
        if stuck:
            log.warning("threads still running after %.0f s (left as daemons): %s", JOIN_TIMEOUT_S, ", ".join(stuck))
        for camera in self.cameras:
            if camera.capture is None:
                camera.source.close()  # otherwise the capture thread closes it on its way out

    def _finish_recording(self) -> None:
        """Close the recording and put it in place; a run that recorded nothing leaves the file as it was."""
        recorder, staged = self._recorder, self._record_file
        if recorder is None or staged is None:
            return
        recorder.close()
        if recorder.frames_written == 0:
            staged.discard()
            log.warning("no frame was recorded; %s was not written", staged.target)
            return
        try:
            staged.commit()
        except OutputError as exc:
            log.error("the recording could not be put in place: %s", exc)

    @property
    def holds_source(self) -> bool:
        """Whether a capture thread is still running, and so still holds its source open.

        After :meth:`close` this stays True only for a capture blocked in a read it cannot leave;
        it closes the source itself when the read finally returns.
        """
        return any(camera.capture is not None and camera.capture.is_alive() for camera in self.cameras)

    def _show(self, canvas: Image, new: bool) -> None:
        for callback in self._on_frame:
            callback(canvas)
        if new and self._recorder is not None:
            self._recorder.write(canvas)
        self._keys.handle(self.display.show(canvas), canvas)

    def _record(self, picture: Image, now: float) -> None:
        """Write the grid to the recording on its own clock: pictures repeat or skip to keep time."""
        if self._recorder is None:
            return
        if self._record_start is None:
            self._record_start = now
        due = min(int((now - self._record_start) * self._recorder_fps) + 1, self._recorded + _MAX_REPEATS)
        while self._recorded < due:
            self._recorder.write(picture)
            self._recorded += 1

    def _totals_line(self, now: float) -> str:
        """The grid's HUD: how many cameras, and their frames and answers per second together."""
        shown = answers = 0.0
        for camera in self.cameras:
            frames, drawn = camera.composer.rates(now)
            shown += frames
            answers += drawn
        p50, _ = self.stats.latency_ms()
        parts = [f"{len(self.cameras)} cameras", f"{shown:.0f} fps"]
        if self._make_client is not None:
            parts.append(f"{answers:.1f}/s")
            parts.append("latency -" if p50 is None else f"latency {p50:.0f} ms")
        return "  ".join(parts)


class _Huds:
    """What ``h`` toggles with several cameras: every tile's HUD and the totals line together."""

    def __init__(self, cameras: Sequence[Camera]) -> None:
        self._cameras = cameras

    @property
    def hud(self) -> bool:
        return self._cameras[0].composer.hud

    @hud.setter
    def hud(self, on: bool) -> None:
        for camera in self._cameras:
            camera.composer.hud = on
            camera.tile_at = -math.inf  # redrawn with (or without) it on the next picture


def _with_camera(hook: CameraAnswerHook, camera: int) -> AnswerHook:
    return lambda frame, predictions: hook(camera, frame, predictions)


def _shown_with_camera(hook: CameraShownHook, camera: int) -> ShownHook:
    return lambda frame, predictions, age: hook(camera, frame, predictions, age)
