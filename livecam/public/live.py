"""Live runs from option values: what ``livecam run`` and the Python ``run`` and ``stream`` share.

    plan = live_plan("clip.mp4", keyword_values(keywords, LIVE_OPTIONS), os.environ, headless=True)
    stats = run_live(plan, stop)                          # -> RunStats, the same as the command

:func:`stream` runs the same pipeline on a thread of its own and hands the caller each displayed
frame; a caller slower than the source gets the newest one, and the frames it missed are counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import os
import threading
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from livecam.connection import ApiSettings
from livecam.frames import Frame, Image
from livecam.live.pipeline import CameraAnswerHook, CameraShownHook, LiveConfig, LivePipeline
from livecam.live.sender import AnswerHook
from livecam.live.slot import Doorbell, LatestSlot
from livecam.predictions import Predictions
from livecam.public.options import (
    API_OPTIONS,
    COLLECT_OPTIONS,
    FULLSCREEN,
    HEADLESS,
    LABELS,
    RUN_OPTIONS,
    SEND_OPTIONS,
    SOURCE_OPTIONS,
    Option,
    label_style,
)
from livecam.public.serve import connect
from livecam.redaction import redact_url
from livecam.sources import CaptureOptions, open_source
from livecam.stats import RunStats, write_json
from livecam.workers import JOIN_TIMEOUT_S, Worker

if TYPE_CHECKING:
    from livecam.collect.collector import Collector

log = logging.getLogger("livecam")

LIVE_OPTIONS: tuple[Option, ...] = (*SOURCE_OPTIONS, *API_OPTIONS, *SEND_OPTIONS, *RUN_OPTIONS, *COLLECT_OPTIONS)
"""Every option of a live run, by flag or by Python keyword."""

STREAM_JOIN_S = 4 * JOIN_TIMEOUT_S
"""How long breaking out of :func:`stream` waits for its run, which joins its own threads one after another."""

_WAIT_STEP_S = 0.5


@dataclass(frozen=True)
class LivePlan:
    """A checked live run: the source, the API, the pipeline's configuration and where things go."""

    sources: tuple[str, ...]
    capture: CaptureOptions
    api: ApiSettings
    config: LiveConfig
    headless: bool
    fullscreen: bool
    stats_json: Path | None
    collect: Mapping[str, Any]

    @property
    def source(self) -> str:
        """The first source (the only one, unless several were given)."""
        return self.sources[0]


def live_plan(
    source: str | Sequence[str], values: Mapping[Option, Any], env: Mapping[str, str], *, headless: bool
) -> LivePlan:
    """The plan for ``source`` (or several) from checked option values; absent ones take the defaults.

    Args:
        headless: whether the run has no window when the values do not say.

    Raises:
        ConfigError: an output folder that does not exist, or options that cannot go together.
    """
    from livecam.errors import ConfigError
    from livecam.outputs import check_writable

    by_dest = {option.dest: value for option, value in values.items() if option in RUN_OPTIONS}
    api = ApiSettings.given({o.dest: v for o, v in values.items() if o in (*API_OPTIONS, *SEND_OPTIONS)}, env)
    in_flight, adaptive = api.live_window
    sources = (source,) if isinstance(source, str) else tuple(source)
    if not sources:
        raise ConfigError("no source given")
    grid, weights = by_dest.get("grid"), by_dest.get("weight")
    if grid is not None and grid[0] * grid[1] < len(sources):
        raise ConfigError(f"--grid {grid[0]}x{grid[1]} has {grid[0] * grid[1]} tiles for {len(sources)} sources")
    if weights is not None and len(weights) != len(sources):
        raise ConfigError(f"--weight: {len(weights)} weights for {len(sources)} sources; give one per source")
    config = LiveConfig(
        in_flight=in_flight,
        adaptive=adaptive,
        max_frames=by_dest.get("max_frames"),
        duration=by_dest.get("duration"),
        max_prediction_age=by_dest.get("max_age", LiveConfig.max_prediction_age),
        hud=by_dest.get("hud", LiveConfig.hud),
        style=label_style(values.get(LABELS, True)),
        snapshot_dir=by_dest.get("snapshot_dir", LiveConfig.snapshot_dir),
        record=by_dest.get("record"),
        motion=by_dest.get("motion", LiveConfig.motion),
        boxes_log=by_dest.get("boxes_log"),
        grid=grid,
        display_fps=by_dest.get("display_fps"),
        weights=weights,
    )
    for option in RUN_OPTIONS:
        path = values.get(option)
        if isinstance(path, Path) and option.dest != "snapshot_dir":
            check_writable(path, option.flag)
    windowless = values.get(HEADLESS, headless)
    if windowless and values.get(FULLSCREEN):
        raise ConfigError("--fullscreen needs a window; leave out --headless")
    return LivePlan(
        sources=sources,
        capture=CaptureOptions(**{o.dest: v for o, v in values.items() if o in SOURCE_OPTIONS}),
        api=api,
        config=config,
        headless=windowless,
        fullscreen=bool(values.get(FULLSCREEN)),
        stats_json=by_dest.get("stats_json"),
        collect={o.dest: v for o, v in values.items() if o in COLLECT_OPTIONS},
    )


def run_live(
    plan: LivePlan,
    stop: threading.Event,
    *,
    on_shown: Sequence[CameraShownHook] = (),
    on_answer: Sequence[AnswerHook] = (),
    signals: contextlib.AbstractContextManager[None] | None = None,
) -> RunStats:
    """Run ``plan`` to its end (the source ends, a limit is reached, or ``stop`` is set).

    Starts the embedded server when no API is named, collects with ``--collect``, and writes
    ``--stats-json``.

    Args:
        on_shown: called with each camera's index and displayed frame, the boxes drawn on it and
            their age (see :class:`~livecam.live.pipeline.LivePipeline`).
        on_answer: called with each fresh answer and its frame (besides the collector's).
        signals: entered once the API is up, e.g. to turn Ctrl-C into ``stop``.

    Raises:
        ConfigError: bad settings found while starting (an unknown source, an unusable API, ...).
    """
    from livecam.display import HeadlessDisplay, WindowDisplay
    from livecam.public.collecting import asking_low_confidence, collect_config, collecting

    sources = [open_source(spec, plan.capture) for spec in plan.sources]
    names = [redact_url(spec) for spec in plan.sources]
    to_collect = collect_config(plan.collect)
    with contextlib.ExitStack() as stack:
        # The signal handlers stay until the stats are written: a second Ctrl-C, or one racing
        # the end of the file, must not lose them.
        if signals is not None:
            stack.enter_context(signals)
        api = asking_low_confidence(stack.enter_context(connect(plan.api)), to_collect)
        config = dataclasses.replace(plan.config, send=plan.api.send_policy(api.urls))
        log.info("sending %s", config.send.describe())
        collector = stack.enter_context(collecting(to_collect, source=", ".join(names), model_id=api.model_id))
        display = HeadlessDisplay() if plan.headless else WindowDisplay(fullscreen=plan.fullscreen)
        hooks = list(on_answer)
        camera_hooks: list[CameraAnswerHook] = []
        if collector is not None and len(sources) == 1:
            hooks.append(collector.offer)
        elif collector is not None:
            camera_hooks.append(camera_collector(collector, names))
        with LivePipeline(
            sources if len(sources) > 1 else sources[0],
            api,
            display,
            config,
            on_answer=hooks,
            on_camera_answer=camera_hooks,
            on_camera_shown=on_shown,
            stop=stop,
        ) as pipeline:
            stats = pipeline.run()
        if collector is not None:
            collector.close()
            stats = dataclasses.replace(stats, collect=collector.summary())
        if plan.stats_json is not None:
            write_json(plan.stats_json, stats.to_json())
    return stats


def camera_collector(collector: Collector, names: Sequence[str]) -> CameraAnswerHook:
    """The answer hook of several cameras: each collected frame's sidecar names its camera."""

    def offer(camera: int, frame: Frame, predictions: Predictions) -> None:
        collector.offer(frame, predictions, camera=(camera, names[camera]))

    return offer


Sources = str | int | Path | Sequence[str | int | Path]
"""One source, or several (shown in one grid, as ``livecam run A B``)."""


def _specs(source: Sources) -> tuple[str, ...]:
    if isinstance(source, str | int | Path):
        return (str(source),)
    return tuple(str(one) for one in source)


def run(source: Sources = 0, **options: Any) -> RunStats:
    """Run the live pipeline on ``source`` as ``livecam run`` does, headless unless ``headless=False``.

    Args:
        source: a camera index, a video file, a stream URL or ``synthetic:WxH@FPS``; or a list
            of them, shown in one grid with per-camera statistics (``stats.cameras``).
        options: the long option names of ``livecam run`` with underscores (``max_frames=100``,
            ``api_url=...``, ``model=...``, ``motion=False``, ``stats_json="stats.json"``, ...).

    Returns:
        The run's statistics; ``failure`` says why it ended early, if one of its threads crashed.

    Raises:
        TypeError: an unknown option (naming it).
        ValueError: a bad option value (naming it).
        ConfigError: settings that cannot work (an output folder missing, an API URL without a model, ...).
    """
    from livecam.public.options import keyword_values

    plan = live_plan(_specs(source), keyword_values(options, LIVE_OPTIONS), os.environ, headless=True)
    return run_live(plan, threading.Event())


@dataclass(frozen=True)
class Shown:
    """One displayed frame of :func:`stream`.

    Attributes:
        index: the source frame's index (a file's own frame number).
        image: the frame as captured (BGR), nothing drawn on it.
        predictions: the boxes livecam draws on it (carried with their objects by motion
            compensation), in its pixels; None before the first answer or when the newest is too old.
        age_s: how old those boxes' answer is, in seconds (None without boxes).
        skipped: this camera's displayed frames the caller's loop was too slow to get, so far.
        camera: which source it comes from (0 with one source).
    """

    index: int
    image: Image
    predictions: Predictions | None
    age_s: float | None
    skipped: int
    camera: int = 0


def stream(source: Sources = 0, **options: Any) -> Generator[Shown, None, None]:
    """The live pipeline as an iterator: each displayed frame with the boxes as they would be drawn.

    The pipeline runs on its own threads at the source's pace; a loop slower than that gets each
    camera's newest frame each time and the ones between are skipped (counted in
    :attr:`Shown.skipped`). Breaking out of the loop stops every thread of the run.

    Args:
        source: as for :func:`run` (with several, :attr:`Shown.camera` says whose frame it is).
        options: as for :func:`run` (``headless`` is always on).

    Raises:
        TypeError, ValueError, ConfigError: as :func:`run`, at the call.
    """
    from livecam.public.options import keyword_values

    values = keyword_values(options, LIVE_OPTIONS)
    plan = live_plan(_specs(source), values, os.environ, headless=True)
    if not plan.headless:
        from livecam.errors import ConfigError

        raise ConfigError("stream() shows no window: leave out headless=False")
    return _stream(plan)


@dataclass(frozen=True)
class _Handed:
    seq: int
    shown: Shown


def _stream(plan: LivePlan) -> Generator[Shown, None, None]:
    stop = threading.Event()
    bell = Doorbell()
    slots: list[LatestSlot[_Handed]] = [LatestSlot() for _ in plan.sources]
    for slot in slots:
        slot.watch(bell)
    numbers = [itertools.count() for _ in plan.sources]
    failure: list[Exception] = []

    def hand_over(camera: int, frame: Frame, predictions: Predictions | None, age: float | None) -> None:
        shown = Shown(frame.index, frame.image, predictions, age, 0, camera)
        slots[camera].put(_Handed(next(numbers[camera]), shown))

    def work() -> None:
        try:
            run_live(plan, stop, on_shown=[hand_over])
        except Exception as exc:  # noqa: BLE001 - raised again on the caller's thread
            failure.append(exc)
        finally:
            for slot in slots:
                slot.close()

    worker = Worker(work, "livecam-stream")
    worker.start()
    try:
        taken = [-1] * len(slots)
        skipped = [0] * len(slots)
        rings = 0
        while True:
            rings = bell.wait(rings, timeout=_WAIT_STEP_S)
            ended = all(slot.closed for slot in slots)  # read before the items: none is missed
            for camera, slot in enumerate(slots):
                item = slot.peek()
                if item is None or item.seq <= taken[camera]:
                    continue
                skipped[camera] += item.seq - taken[camera] - 1
                taken[camera] = item.seq
                yield dataclasses.replace(item.shown, skipped=skipped[camera])
            if ended:
                break
    finally:
        stop.set()
        if not worker.join(STREAM_JOIN_S):
            log.warning("the stream's run did not stop within %.0f s", STREAM_JOIN_S)
    if failure:
        raise failure[0]
