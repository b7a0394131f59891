"""``livecam``: the parser of every command, and the one place errors become exit statuses."""

from __future__ import annotations

import argparse
import difflib
import os
from collections.abc import Callable, Mapping, Sequence

from livecam import __version__
from livecam.cli import annotate, kiosk, run, serve, upload
from livecam.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    configure_logging,
    log,
    quiet_native_logs,
)
from livecam.connection import API_KEY_ENV
from livecam.errors import ConfigError, LivecamError
from livecam.redaction import redact

EPILOG = f"""\
examples:
  livecam run sample_videos/vtest.avi                 offline, embedded COCO model
  livecam run 0 --model my-project/3                  webcam, Roboflow hosted (key from ${API_KEY_ENV})
  livecam run rtsp://cam.local/stream --api-url http://localhost:9001 --model my-project/3
  livecam annotate in.mp4 -o out.mp4 --json out.jsonl
  livecam annotate footage/ -o annotated/ --json      every video in a folder (add --ray for a Ray cluster)
  livecam serve --port 9001
  livecam upload collected/ --project my-project      send --collect's frames to Roboflow for labelling
"""

Handler = Callable[[argparse.Namespace, Mapping[str, str]], int]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``livecam`` command. Returns the process exit status."""
    env = os.environ if env is None else env
    args = parse_arguments(build_parser(), argv)
    secret = getattr(args, "api_key", None) or env.get(API_KEY_ENV)
    configure_logging(args.verbose - args.quiet, secret)
    quiet_native_logs(args.verbose >= 2)
    handler: Handler = args.handler
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


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, but an unknown option is reported by its command, with the closest
    option of that command (argparse would print the top-level usage and no suggestion).

    Exits with status 2 on a usage error, as argparse does.
    """
    args, unknown = parser.parse_known_args(argv)
    if not unknown:
        return args
    command = _subcommands(parser).get(getattr(args, "command", None) or "", parser)
    options = [name for name in command._option_string_actions if name.startswith("--")]
    hints = []
    for word in unknown:
        close = difflib.get_close_matches(word.split("=", 1)[0], options, n=1, cutoff=0.75)
        if word.startswith("-") and close:
            hints.append(f"{word} (did you mean {close[0]}?)")
        else:
            hints.append(word)
    command.error(f"unrecognized arguments: {' '.join(hints)}")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def build_parser() -> argparse.ArgumentParser:
    """The ``livecam`` parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="livecam",
        description="Object detections from a Roboflow-format API, drawn on live video.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"livecam {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log lines (-vv for debug)")
    common.add_argument("-q", "--quiet", action="count", default=0, help="fewer log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser(
        "run",
        parents=[common],
        help="show live video with detections",
        description="Show a camera, file or stream with the newest detections drawn on it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_arguments(command)
    command.set_defaults(handler=run.run)

    command = commands.add_parser(
        "annotate",
        parents=[common],
        help="annotate video files (or a folder of images), every frame",
        description="Send every frame of a video to the API and write an annotated video and JSON Lines; "
        "several videos go into a folder, here or on a Ray cluster (--ray).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    annotate.add_arguments(command)
    command.set_defaults(handler=annotate.run)

    command = commands.add_parser(
        "kiosk",
        parents=[common],
        help="unattended fullscreen display from a config file, with a web view",
        description="Run an unattended, self-healing fullscreen display configured by a TOML file.",
    )
    kiosk.add_arguments(command)
    command.set_defaults(handler=kiosk.run)

    command = commands.add_parser(
        "serve",
        parents=[common],
        help="run the embedded Roboflow-compatible server",
        description="Serve a detection model over Roboflow's HTTP API.",
    )
    serve.add_arguments(command)
    command.set_defaults(handler=serve.run)

    command = commands.add_parser(
        "upload",
        parents=[common],
        help="send collected frames and their pre-labels to a Roboflow project",
        description="Upload what --collect saved to a Roboflow project, each image with its pre-label.",
        epilog=upload.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    upload.add_arguments(command)
    command.set_defaults(handler=upload.run)
    return parser
