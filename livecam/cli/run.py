"""``livecam run``: live video with the newest detections drawn on it."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from livecam.cli import collect
from livecam.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    api_choice,
    check_positive,
    in_flight_window,
    resolved_api,
    stop_on_signals,
)
from livecam.cli.options import (
    API_OPTIONS,
    DRAWING_OPTIONS,
    LABELS,
    MOTION,
    SOURCE_OPTIONS,
    add_options,
    given_values,
    label_style,
)
from livecam.collect.collector import Collector
from livecam.display import HeadlessDisplay, WindowDisplay
from livecam.errors import ConfigError
from livecam.frames import Frame
from livecam.live.grid import parse_grid
from livecam.live.pipeline import CameraAnswerHook, LiveConfig, LivePipeline
from livecam.live.sender import AnswerHook
from livecam.live.stats import write_json
from livecam.predictions import Predictions
from livecam.redaction import redact_url
from livecam.sources import CaptureOptions, open_source

log = logging.getLogger("livecam")

API_HELP = (
    "With neither --api-url nor --model, livecam starts its embedded server with the bundled COCO "
    "model. With --model alone it uses Roboflow's hosted API (https://serverless.roboflow.com)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The source, camera, API and display options of ``livecam run``."""
    parser.add_argument(
        "source",
        nargs="*",
        default=["0"],
        metavar="SOURCE",
        help="camera index (0), video file, stream URL (rtsp://, http://), or synthetic:WxH@FPS (default: 0); "
        "several are shown together in a grid",
    )
    add_options(parser.add_argument_group("camera"), SOURCE_OPTIONS, check=True)
    several = parser.add_argument_group("several sources")
    several.add_argument(
        "--grid",
        metavar="COLSxROWS",
        help="tiles of the grid, e.g. 3x2 (default: 1; 2 side by side; 2x2; 3x2; 3x3 by the number of sources)",
    )
    several.add_argument(
        "--display-fps",
        type=float,
        metavar="FPS",
        help="pictures per second of the grid (default: as often as the fastest source has a new frame)",
    )
    several.add_argument(
        "--weight",
        metavar="W1,W2,...",
        help="share the detection servers by these weights, one per source, e.g. 2,1,1 "
        "(default: equal shares, the camera that waited longest first)",
    )
    add_options(parser.add_argument_group("detection API", API_HELP), API_OPTIONS, check=True)
    group = parser.add_argument_group("display")
    mode = group.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="no window at all (servers, tests)")
    mode.add_argument("--fullscreen", action="store_true", help="start fullscreen (toggle with f)")
    group.add_argument("--record", type=Path, metavar="OUT.mp4", help="also write the annotated video")
    group.add_argument("--max-frames", type=int, metavar="N", help="stop after N source frames")
    group.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    group.add_argument("--stats-json", type=Path, metavar="PATH", help="write run statistics here at the end")
    group.add_argument(
        "--max-age", type=float, default=3.0, metavar="S", help="hide predictions older than this (default: 3 s)"
    )
    group.add_argument("--no-hud", action="store_true", help="start with the HUD hidden (toggle with h)")
    group.add_argument("--no-labels", action="store_true", help="draw boxes without labels (--labels none)")
    add_options(group, DRAWING_OPTIONS, check=True)
    group.add_argument(
        "--boxes-log",
        type=Path,
        metavar="PATH.jsonl",
        help="write one JSON line per displayed frame with the boxes as drawn (after motion compensation)",
    )
    group.add_argument(
        "--snapshot-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where the s key saves PNG snapshots (default: .)",
    )
    collect.add_arguments(parser)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``livecam run``; returns the exit status."""
    check_positive(
        max_frames=args.max_frames, duration=args.duration, max_age=args.max_age, display_fps=args.display_fps
    )
    specs: list[str] = list(args.source) or ["0"]
    camera = {option.dest: value for option, value in given_values(args, SOURCE_OPTIONS).items()}
    sources = [open_source(spec, CaptureOptions(**camera)) for spec in specs]
    grid = parse_grid(args.grid, len(specs)) if args.grid is not None else None
    weights = parse_weights(args.weight, len(specs)) if args.weight is not None else None
    choice = api_choice(args, env)
    in_flight, adaptive = in_flight_window(choice.in_flight)
    drawing = given_values(args, DRAWING_OPTIONS)
    config = LiveConfig(
        in_flight=in_flight,
        adaptive=adaptive,
        max_frames=args.max_frames,
        duration=args.duration,
        max_prediction_age=args.max_age,
        hud=not args.no_hud,
        style=label_style(False if args.no_labels else drawing.get(LABELS, True)),
        snapshot_dir=args.snapshot_dir,
        record=args.record,
        motion=drawing.get(MOTION, True),
        boxes_log=args.boxes_log,
        grid=grid,
        display_fps=args.display_fps,
        weights=weights,
    )
    collect_config = collect.collect_config(collect.given(args))
    for flag, path in (("--stats-json", args.stats_json), ("--record", args.record), ("--boxes-log", args.boxes_log)):
        if path is not None and not path.parent.is_dir():
            raise ConfigError(f"{flag}: folder {path.parent} does not exist")
    if not args.headless:
        require_screen(env)
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        api = collect.asking_low_confidence(stack.enter_context(resolved_api(choice)), collect_config)
        stack.enter_context(stop_on_signals(stop))
        names = [redact_url(spec) for spec in specs]
        collector = stack.enter_context(
            collect.collecting(collect_config, source=", ".join(names), model_id=api.model_id)
        )
        display = HeadlessDisplay() if args.headless else WindowDisplay(fullscreen=args.fullscreen)
        hooks: list[AnswerHook] = []
        camera_hooks: list[CameraAnswerHook] = []
        if collector is not None and len(sources) == 1:
            hooks.append(collector.offer)
        elif collector is not None:
            camera_hooks.append(_collect_camera(collector, names))
        with LivePipeline(
            sources if len(sources) > 1 else sources[0],
            api,
            display,
            config,
            on_answer=hooks,
            on_camera_answer=camera_hooks,
            stop=stop,
        ) as pipeline:
            stats = pipeline.run()
        if collector is not None:
            collector.close()
            stats = stats.with_sections(collector.stats())
    log.info(
        "%d of %d source frames shown (%.1f fps), %d detections answered, %d failed",
        stats.displayed_frames,
        stats.source_frames,
        stats.display_fps,
        stats.responses_ok,
        stats.responses_failed,
    )
    if args.stats_json is not None:
        write_json(args.stats_json, stats.to_json())
    if stats.failure is not None:
        log.error("the run ended early: %s", stats.failure)
        return EXIT_FAILED
    return EXIT_OK


def parse_weights(text: str, sources: int) -> tuple[float, ...]:
    """``--weight 2,1,1``: one positive weight per source.

    Raises:
        ConfigError: not numbers, not positive, or not one per source.
    """
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--weight: expected numbers separated by commas such as 2,1,1, got {text!r}") from None
    if any(not (w > 0 and math.isfinite(w)) for w in weights):
        raise ConfigError(f"--weight: each weight must be a positive number, got {text!r}")
    if len(weights) != sources:
        raise ConfigError(f"--weight: {len(weights)} weights for {sources} sources; give one per source")
    return weights


def _collect_camera(collector: Collector, names: list[str]) -> CameraAnswerHook:
    """The answer hook of several cameras: each collected frame's sidecar names its camera."""

    def offer(camera: int, frame: Frame, predictions: Predictions) -> None:
        collector.offer(frame, predictions, camera=(camera, names[camera]))

    return offer


def require_screen(env: Mapping[str, str]) -> None:
    """Fail early, with what to do, when a window cannot be opened.

    Raises:
        ConfigError: on Linux with neither DISPLAY nor WAYLAND_DISPLAY set.
    """
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise ConfigError(
            "no screen to open a window on (DISPLAY is not set): add --headless, "
            "with --record OUT.mp4 to keep the annotated video"
        )
