"""``livecam run``: live video with the newest detections drawn on it."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
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
from livecam.display import HeadlessDisplay, WindowDisplay, require_display
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.live.stats import write_json
from livecam.outputs import check_writable
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
        nargs="?",
        default="0",
        metavar="SOURCE",
        help="camera index (0), video file, stream URL (rtsp://, http://), or synthetic:WxH@FPS (default: 0)",
    )
    add_options(parser.add_argument_group("camera"), SOURCE_OPTIONS, check=True)
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
    check_positive(max_frames=args.max_frames, duration=args.duration, max_age=args.max_age)
    camera = {option.dest: value for option, value in given_values(args, SOURCE_OPTIONS).items()}
    source = open_source(args.source, CaptureOptions(**camera))
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
    )
    collect_config = collect.collect_config(collect.given(args))
    for flag, path in (("--stats-json", args.stats_json), ("--record", args.record), ("--boxes-log", args.boxes_log)):
        if path is not None:
            check_writable(path, flag)
    if not args.headless:
        require_display(env, "With --headless, --record OUT.mp4 keeps the annotated video.")
    stop = threading.Event()
    # The handlers stay until the stats are written: a second Ctrl-C, or one racing the end of
    # the file, must not lose them.
    with stop_on_signals(stop), contextlib.ExitStack() as stack:
        api = collect.asking_low_confidence(stack.enter_context(resolved_api(choice)), collect_config)
        collector = stack.enter_context(
            collect.collecting(collect_config, source=redact_url(args.source), model_id=api.model_id)
        )
        display = HeadlessDisplay() if args.headless else WindowDisplay(fullscreen=args.fullscreen)
        hooks = [collector.offer] if collector is not None else []
        with LivePipeline(source, api, display, config, on_answer=hooks, stop=stop) as pipeline:
            stats = pipeline.run()
        if collector is not None:
            collector.close()
            stats = dataclasses.replace(stats, collect=collector.summary())
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
