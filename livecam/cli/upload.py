"""``livecam upload DIR --project PROJECT``: send collected frames and their pre-labels to Roboflow."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from livecam.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, stop_on_signals
from livecam.collect import items
from livecam.connection import API_KEY_ENV
from livecam.errors import ConfigError
from livecam.progress import Progress
from livecam.upload import (
    DEFAULT_API_URL,
    DEFAULT_BATCH,
    JOURNAL_NAME,
    SPLITS,
    Journal,
    RoboflowUploadApi,
    UploadOptions,
    UploadResult,
    UploadTarget,
    upload_folder,
)

log = logging.getLogger("livecam")

EPILOG = f"""\
examples:
  livecam upload collected/ --project my-project               key from ${API_KEY_ENV}
  livecam upload collected/ --project my-project --split valid --batch lobby-week-3 --tag lobby

Each image goes up with its pre-label marked as a model prediction, for review in Roboflow.
{JOURNAL_NAME} in DIR records what is done: run it again after an interruption and it
continues; nothing is uploaded twice.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``livecam upload``."""
    parser.add_argument("directory", type=Path, metavar="DIR", help="a folder filled by --collect")
    parser.add_argument(
        "--project", required=True, metavar="PROJECT", help="the Roboflow project's id, as in its URL (my-project)"
    )
    parser.add_argument("--split", choices=SPLITS, default="train", help="the dataset split (default: train)")
    parser.add_argument(
        "--batch",
        default=DEFAULT_BATCH,
        metavar="NAME",
        help=f"the upload batch to file images under (default: {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--tag", action="append", default=[], metavar="T", help="tag every image with T (repeat for more tags)"
    )
    parser.add_argument(
        "--api-url", default=DEFAULT_API_URL, metavar="URL", help=f"Roboflow's REST API (default: {DEFAULT_API_URL})"
    )
    parser.add_argument("--api-key", metavar="KEY", help=f"Roboflow API key (default: ${API_KEY_ENV})")


def run(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    stop: threading.Event | None = None,
    progress_stream: TextIO | None = None,
) -> int:
    """Run ``livecam upload``; returns the exit status.

    Raises:
        ConfigError: a missing key, folder or project, found before anything is sent.
    """
    directory: Path = args.directory
    if not directory.is_dir():
        raise ConfigError(f"DIR {directory} is not a folder; give the folder --collect saved frames in")
    target = UploadTarget(args.api_url, args.project, args.api_key or env.get(API_KEY_ENV) or "")
    tags = tuple(t.strip() for t in args.tag if t.strip())
    if not args.batch.strip():
        raise ConfigError("--batch must not be empty")
    options = UploadOptions(split=args.split, batch=args.batch.strip(), tags=tags)
    stop = threading.Event() if stop is None else stop
    with Journal(directory) as journal, stop_on_signals(stop):
        todo = sum(1 for item in items(directory) if not journal.done(target.project, item.stem))
        quiet = getattr(args, "quiet", 0) > 0
        progress = (
            None
            if quiet or todo == 0
            else Progress(todo, progress_stream or sys.stderr, label="images", rate_unit="images/s")
        )
        api = RoboflowUploadApi(target, stop=stop)
        try:
            result = upload_folder(directory, api, options, journal, stop, progress)
        finally:
            api.close()
        if progress is not None:
            progress.finish()
    return _report(directory, target.project, result)


def _report(directory: Path, project: str, result: UploadResult) -> int:
    if result.total == 0:
        log.warning("%s holds no collected frames (run livecam with --collect %s first)", directory, directory)
        return EXIT_OK
    log.info(
        "%d uploaded to %s, %d were already there, %d failed (of %d in %s)",
        result.uploaded,
        project,
        result.already,
        len(result.failed),
        result.total,
        directory,
    )
    if result.stopped is not None:
        log.error("stopped: %s; run the same command again to continue", result.stopped)
        return EXIT_FAILED
    if result.interrupted:
        log.warning("interrupted; run the same command again to continue")
        return EXIT_INTERRUPTED
    if result.failed:
        log.error(
            "%d images were refused: %s", len(result.failed), "; ".join(f"{n}: {r}" for n, r in result.failed[:5])
        )
        return EXIT_FAILED
    return EXIT_OK
