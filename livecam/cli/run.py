"""``livecam run``: live video with the newest detections drawn on it."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Mapping

from livecam.cli import collect
from livecam.cli.common import EXIT_FAILED, EXIT_OK, api_values, stop_on_signals
from livecam.cli.flags import add_options, given_values
from livecam.display import require_display
from livecam.public.live import live_plan, run_live
from livecam.public.options import API_OPTIONS, LABELS, RUN_OPTIONS, SEND_OPTIONS, SOURCE_OPTIONS

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
    add_options(parser.add_argument_group("detection API", API_HELP), API_OPTIONS, check=True)
    add_options(parser.add_argument_group("what is sent"), SEND_OPTIONS, check=True)
    group = parser.add_argument_group("display")
    add_options(group, RUN_OPTIONS, check=True)
    group.add_argument(
        "--no-labels", dest=LABELS.dest, action="store_const", const=False, help="draw boxes without labels"
    )
    collect.add_arguments(parser)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run ``livecam run``; returns the exit status."""
    options = (*SOURCE_OPTIONS, *SEND_OPTIONS, *RUN_OPTIONS)
    values = {**given_values(args, options), **api_values(args), **collect.given_options(args)}
    plan = live_plan(args.source, values, env, headless=False)
    if not plan.headless:
        require_display(env, "With --headless, --record OUT.mp4 keeps the annotated video.")
    stop = threading.Event()
    stats = run_live(plan, stop, signals=stop_on_signals(stop))
    log.info(
        "%d of %d source frames shown (%.1f fps), %d detections answered, %d failed",
        stats.displayed_frames,
        stats.source_frames,
        stats.display_fps,
        stats.responses_ok,
        stats.responses_failed,
    )
    if stats.failure is not None:
        log.error("the run ended early: %s", stats.failure)
        return EXIT_FAILED
    return EXIT_OK
