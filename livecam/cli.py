"""Command line: argparse -> frozen config -> run. The only module that reads the environment."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

from livecam import __version__
from livecam.client import HOSTED_API_URL, ApiConfig
from livecam.encode import ENCODER_NAMES
from livecam.errors import ConfigError, LivecamError
from livecam.redaction import redact

log = logging.getLogger("livecam")

API_KEY_ENV = "ROBOFLOW_API_KEY"
AUTO_MAX_IN_FLIGHT = 32
"""``--in-flight auto``: the most requests open at once."""
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG = f"""\
examples:
  livecam run sample_videos/vtest.avi                 offline, embedded COCO model
  livecam run 0 --model my-project/3                  webcam, Roboflow hosted (key from ${API_KEY_ENV})
  livecam run rtsp://cam.local/stream --api-url http://localhost:9001 --model my-project/3
  livecam annotate in.mp4 -o out.mp4 --json out.jsonl
  livecam serve --port 9001
"""


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``livecam`` command. Returns the process exit status."""
    env = os.environ if env is None else env
    parser = build_parser()
    args = parser.parse_args(argv)
    secret = getattr(args, "api_key", None) or env.get(API_KEY_ENV)
    configure_logging(args.verbose - args.quiet, secret)
    quiet_native_logs(args.verbose >= 2)
    handler: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.handler
    try:
        return handler(args, env)
    except ConfigError as exc:
        log.error("%s", redact(str(exc), secret))
        return EXIT_USAGE
    except LivecamError as exc:
        log.error("%s", redact(str(exc), secret))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livecam",
        description="Object detections from a Roboflow-format API, drawn on live video.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"livecam {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv for debug)")
    common.add_argument("-q", "--quiet", action="count", default=0, help="fewer log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="show live video with detections",
        description="Show a camera, file or stream with the newest detections drawn on it.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_source_arguments(run)
    add_api_arguments(
        run,
        in_flight_help="concurrent requests (default: 1); 'auto' sends every frame with "
        f"up to {AUTO_MAX_IN_FLIGHT} requests open: the freshest boxes a slow "
        "network allows, at one request per frame",
    )
    add_display_arguments(run)
    run.set_defaults(handler=_run)

    from livecam.annotate.command import add_annotate_arguments, run_annotate
    from livecam.kiosk.command import add_kiosk_arguments, run_kiosk
    from livecam.server.config import add_serve_arguments

    annotate = commands.add_parser(
        "annotate",
        parents=[common],
        help="annotate a video file (or a folder of images), every frame",
        description="Send every frame of a video to the API and write an annotated video and JSON Lines.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_annotate_arguments(annotate)
    annotate.set_defaults(handler=run_annotate)

    kiosk = commands.add_parser(
        "kiosk",
        parents=[common],
        help="unattended fullscreen display from a config file, with a web view",
        description="Run an unattended, self-healing fullscreen display configured by a TOML file.",
    )
    add_kiosk_arguments(kiosk)
    kiosk.set_defaults(handler=run_kiosk)

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the embedded Roboflow-compatible server",
        description="Serve a detection model over Roboflow's HTTP API.",
    )
    add_serve_arguments(serve)
    serve.set_defaults(handler=_serve)
    return parser


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        default="0",
        metavar="SOURCE",
        help="camera index (0), video file, stream URL (rtsp://, http://), or synthetic:WxH@FPS (default: 0)",
    )
    group = parser.add_argument_group("camera")
    group.add_argument("--width", type=int, help="ask the camera for this frame width")
    group.add_argument("--height", type=int, help="ask the camera for this frame height")
    group.add_argument("--fps", type=float, help="ask the camera for this frame rate")
    group.add_argument("--fourcc", metavar="CODE", help="camera pixel format, e.g. MJPG for USB cameras")


def add_api_arguments(
    parser: argparse.ArgumentParser,
    in_flight_default: int | None = 1,
    in_flight_help: str = "concurrent requests (default: 1)",
) -> None:
    group = parser.add_argument_group(
        "detection API",
        "With neither --api-url nor --model, livecam starts its embedded server with the bundled COCO "
        f"model. With --model alone it uses Roboflow's hosted API ({HOSTED_API_URL}).",
    )
    group.add_argument(
        "--api-url",
        metavar="URL",
        help="base URL: a self-hosted inference server (http://localhost:9001), "
        "https://detect.roboflow.com, or livecam serve",
    )
    group.add_argument("--model", metavar="PROJECT/VERSION", help="model id, e.g. my-project/3")
    group.add_argument("--api-key", metavar="KEY", help=f"Roboflow API key (default: ${API_KEY_ENV})")
    group.add_argument(
        "--confidence", type=float, default=40.0, metavar="0-100", help="minimum confidence in percent (default: 40)"
    )
    group.add_argument(
        "--overlap", type=float, default=30.0, metavar="0-100", help="NMS overlap threshold in percent (default: 30)"
    )
    group.add_argument("--classes", metavar="A,B", help="only show these classes (comma separated)")
    group.add_argument(
        "--max-side",
        type=int,
        default=640,
        metavar="PX",
        help="downsize frames so the longest side is at most PX before sending; 0 sends full size (default: 640)",
    )
    group.add_argument("--jpeg-quality", type=int, default=80, metavar="Q", help="1-100 (default: 80)")
    group.add_argument("--in-flight", type=_in_flight, default=in_flight_default, metavar="K", help=in_flight_help)
    group.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds to wait for an answer (default: 10)"
    )
    group.add_argument(
        "--encoder", choices=ENCODER_NAMES, default="auto", help="JPEG encoder (default: auto = the fastest measured)"
    )


def add_display_arguments(parser: argparse.ArgumentParser) -> None:
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
    group.add_argument("--no-labels", action="store_true", help="draw boxes without labels")
    group.add_argument(
        "--snapshot-dir",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="where the s key saves PNG snapshots (default: .)",
    )


def _in_flight(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or 'auto', got {value!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


def configure_logging(level: int, secret: str | None) -> None:
    """Log to stderr, one line per event, with the API key scrubbed from every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(_RedactingFilter(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if level >= 2 else logging.INFO if level >= 0 else logging.WARNING)


def quiet_native_logs(debug: bool) -> None:
    """Keep OpenCV's and FFmpeg's own stderr lines (codec probing, capture back-ends) out of the
    way unless debugging: livecam reports what matters through its own log."""
    if debug:
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL; read at FFmpeg's first use
    import cv2.utils.logging as cv_logging

    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)


class _RedactingFilter(logging.Filter):
    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = redact(message, self._secret)
        record.args = None
        return True


def api_config_from_args(args: argparse.Namespace, env: Mapping[str, str], api_url: str, model_id: str) -> ApiConfig:
    """The API options of ``run``/``annotate``/``kiosk`` as an :class:`ApiConfig`."""
    classes = tuple(c.strip() for c in args.classes.split(",") if c.strip()) if args.classes else None
    return ApiConfig(
        api_url=api_url,
        model_id=model_id,
        api_key=args.api_key or env.get(API_KEY_ENV) or None,
        confidence=args.confidence,
        overlap=args.overlap,
        classes=classes,
        max_side=args.max_side or None,
        jpeg_quality=args.jpeg_quality,
        read_timeout=args.timeout,
        encoder=args.encoder,
    )


@contextlib.contextmanager
def resolved_api(args: argparse.Namespace, env: Mapping[str, str]) -> Iterator[ApiConfig]:
    """The API to use; starts the embedded server for as long as the context lasts when needed."""
    if args.api_url is None and args.model is None:
        from livecam.server import EmbeddedServer, ServerConfig

        if not log.isEnabledFor(logging.DEBUG):
            logging.getLogger("livecam.server.http").setLevel(logging.WARNING)  # no access log in-process
        with EmbeddedServer(ServerConfig(port=0)) as server:
            log.info("no --api-url or --model: using the embedded server at %s with the bundled COCO model", server.url)
            yield api_config_from_args(args, env, server.url, server.model_id)
        return
    if args.model is None:
        raise ConfigError("--api-url needs --model PROJECT/VERSION (e.g. --model coco/1)")
    yield api_config_from_args(args, env, args.api_url or HOSTED_API_URL, args.model)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` so the run ends cleanly (a second Ctrl-C aborts)."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("stopping (%s)", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from livecam.display import HeadlessDisplay, WindowDisplay
    from livecam.overlay import OverlayStyle
    from livecam.pipeline import LiveConfig, LivePipeline
    from livecam.sources import CaptureOptions, open_source
    from livecam.stats import write_json

    _check_positive(args, "max_frames", "duration", "max_age")
    source = open_source(
        args.source, CaptureOptions(width=args.width, height=args.height, fps=args.fps, fourcc=args.fourcc)
    )
    adaptive = args.in_flight == "auto"
    config = LiveConfig(
        in_flight=AUTO_MAX_IN_FLIGHT if adaptive else args.in_flight,
        adaptive=adaptive,
        max_frames=args.max_frames,
        duration=args.duration,
        max_prediction_age=args.max_age,
        hud=not args.no_hud,
        style=OverlayStyle(labels=not args.no_labels),
        snapshot_dir=args.snapshot_dir,
        record=args.record,
    )
    for flag, path in (("--stats-json", args.stats_json), ("--record", args.record)):
        if path is not None and not path.parent.is_dir():
            raise ConfigError(f"{flag}: folder {path.parent} does not exist")
    if not args.headless:
        _require_screen(env)
    stop = threading.Event()
    with resolved_api(args, env) as api, stop_on_signals(stop):
        display = HeadlessDisplay() if args.headless else WindowDisplay(fullscreen=args.fullscreen)
        with LivePipeline(source, api, display, config, stop=stop) as pipeline:
            stats = pipeline.run()
    log.info(
        "%d of %d source frames shown (%.1f fps), %d detections answered, %d failed",
        stats["displayed_frames"],
        stats["source_frames"],
        stats["display_fps"],
        stats["responses_ok"],
        stats["responses_failed"],
    )
    if args.stats_json is not None:
        write_json(args.stats_json, stats)
    return EXIT_OK


def _serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from livecam.server import serve
    from livecam.server.config import server_config_from_args

    config = server_config_from_args(args)
    stop = threading.Event()
    with stop_on_signals(stop):
        serve(config, stop)
    return EXIT_OK


def _require_screen(env: Mapping[str, str]) -> None:
    if sys.platform.startswith("linux") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        raise ConfigError(
            "no screen to open a window on (DISPLAY is not set): add --headless, "
            "with --record OUT.mp4 to keep the annotated video"
        )


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive (got {value})")
