"""``livecam annotate``: arguments, checks before any work, the run, the summary, the exit status."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from livecam.annotate.engine import (
    DEFAULT_IN_FLIGHT,
    EMBEDDED_IN_FLIGHT,
    MAX_WORKERS,
    AnnotateOptions,
    AnnotateResult,
    Annotator,
    AnswerHook,
    PooledDetector,
    server_pool,
)
from livecam.annotate.media import (
    FrameInput,
    ImageFolderInput,
    InputFrame,
    VideoInput,
    VideoOutput,
)
from livecam.cli import collect
from livecam.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    api_choice,
    stop_on_signals,
)
from livecam.cli.run import API_HELP
from livecam.collect import CollectConfig, Collector
from livecam.collect.session import asking_low_confidence, collect_config, collecting
from livecam.connection import ApiSettings, connect
from livecam.errors import ConfigError
from livecam.frames import Frame
from livecam.options import API_OPTIONS, add_options
from livecam.outputs import check_writable, check_writable_folder
from livecam.overlay import OverlayStyle
from livecam.predictions import Predictions
from livecam.progress import Progress
from livecam.public.annotate import outputs, window_for, worth_keeping

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``livecam annotate`` (including the shared API options)."""
    parser.add_argument(
        "input",
        type=Path,
        metavar="INPUT",
        help="a video file OpenCV can read, or a folder of .jpg/.png/.bmp/.webp images",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUTPUT",
        help="the annotated video (.mp4: H.264 when available, else MPEG-4; .avi: MJPEG), "
        "or a folder for annotated images",
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PREDICTIONS.jsonl",
        help="also write one JSON object per frame, in order (Roboflow format)",
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        metavar="N",
        help="send only every Nth frame; the frames between keep its boxes (default: 1)",
    )
    parser.add_argument(
        "--max-failed-fraction",
        type=float,
        default=0.0,
        metavar="F",
        help="exit 0 even if up to this fraction (0-1) of requests failed (default: 0)",
    )
    parser.add_argument("--no-labels", action="store_true", help="draw boxes without labels")
    if parser.get_default("quiet") is None:
        parser.add_argument("-q", "--quiet", action="count", default=0, help="no progress bar")
    add_options(
        parser.add_argument_group("detection API", API_HELP),
        API_OPTIONS,
        check=True,
        helps={
            "in-flight": f"concurrent requests per server (default and 'auto': up to {DEFAULT_IN_FLIGHT} for each "
            f"API server, learnt from its round trips; {EMBEDDED_IN_FLIGHT} for the embedded model)"
        },
    )
    collect.add_arguments(parser)


@dataclass(frozen=True)
class AnnotateJob:
    """Checked paths and options of one ``annotate`` run."""

    input: Path
    output: Path
    json: Path | None
    folder: bool
    options: AnnotateOptions
    max_failed_fraction: float
    collect: CollectConfig | None = None
    per_server: int = DEFAULT_IN_FLIGHT
    adaptive: bool = False


def check_arguments(args: argparse.Namespace, choice: ApiSettings) -> AnnotateJob:
    """Validate the paths and numbers before any work.

    Raises:
        ConfigError: what is wrong and how to fix it.
    """
    source: Path = args.input
    output: Path = args.output
    if not source.exists():
        raise ConfigError(f"INPUT {source} does not exist; give a video file or a folder of images")
    folder = source.is_dir()
    if not folder and not source.is_file():
        raise ConfigError(f"INPUT {source} is not a regular file or folder")
    if not 0.0 <= args.max_failed_fraction <= 1.0:
        raise ConfigError(f"--max-failed-fraction must be between 0 and 1 (got {args.max_failed_fraction})")
    per_server, adaptive = window_for(choice)
    workers = min(MAX_WORKERS, per_server * choice.servers)
    options = AnnotateOptions(in_flight=workers, every=args.every, style=OverlayStyle(labels=not args.no_labels))
    taken = {source.resolve(): "INPUT"}
    _check_target(output, "-o", folder, taken)
    taken[output.resolve()] = "-o"
    if args.json is not None:
        _check_target(args.json, "--json", False, taken)
    collecting = collect_config(collect.given(args))
    if collecting is not None and collecting.directory.resolve() in taken:
        what = taken[collecting.directory.resolve()]
        raise ConfigError(f"--collect {collecting.directory} is the same folder as {what}; choose another folder")
    return AnnotateJob(
        source, output, args.json, folder, options, args.max_failed_fraction, collecting, per_server, adaptive
    )


def _check_target(path: Path, flag: str, folder: bool, taken: dict[Path, str]) -> None:
    resolved = path.resolve()
    if resolved in taken:
        raise ConfigError(f"{flag} {path} is the same file as {taken[resolved]}; choose another name")
    if not resolved.parent.is_dir():
        raise ConfigError(f"{flag}: folder {path.parent} does not exist; create it first")
    if folder and path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; with a folder of images as INPUT, give a folder")
    if not folder and path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name")
    if folder:
        check_writable_folder(path, flag)
    else:
        check_writable(path, flag)


def run(
    args: argparse.Namespace,
    env: Mapping[str, str],
    *,
    stop: threading.Event | None = None,
    progress_stream: TextIO | None = None,
) -> int:
    """Run ``livecam annotate``; returns the exit status.

    Args:
        args: parsed by a parser set up with :func:`add_arguments`.
        env: the environment (for the API key).
        stop: set to stop early; by default Ctrl-C and SIGTERM set it.
        progress_stream: where the progress goes (default: stderr).

    Raises:
        ConfigError: bad arguments or paths, found before any work.
    """
    choice = api_choice(args, env)
    job = check_arguments(args, choice)
    source: FrameInput = ImageFolderInput(job.input) if job.folder else VideoInput(job.input)
    stop = threading.Event() if stop is None else stop
    try:
        with stop_on_signals(stop), contextlib.ExitStack() as stack:
            api = asking_low_confidence(stack.enter_context(connect(choice)), job.collect)
            written = stack.enter_context(outputs(source, job.output, job.json, job.folder))
            collector = stack.enter_context(collecting(job.collect, source=str(job.input), model_id=api.model_id))
            progress = None if getattr(args, "quiet", 0) else Progress(source.total, progress_stream or sys.stderr)
            pool = server_pool(api, job.per_server, job.adaptive)
            stack.callback(pool.close)
            annotator = Annotator(
                source,
                written.frames,
                lambda: PooledDetector(pool),
                job.options,
                stop,
                jsonl=written.jsonl,
                on_answer=[_offer_to(collector)] if collector is not None else [],
                progress=progress,
                servers=pool,
            )
            result = annotator.run()
            written.keep = worth_keeping(result)
            if progress is not None:
                progress.finish()
            codec = written.frames.codec if isinstance(written.frames, VideoOutput) else "images"
    finally:
        source.close()
    if len(result.servers) > 1:
        for server in result.servers:
            log.info(
                "server %s: %d requests, %d ok, %d failed, latency p50 %s ms, %s",
                server.url,
                server.requests,
                server.ok,
                server.failed,
                "-" if server.latency_ms.p50 is None else f"{server.latency_ms.p50:.0f}",
                server.state,
            )
    return _report(job, result, codec, kept=bool(written.keep))


def _offer_to(collector: Collector) -> AnswerHook:
    """Hands annotated frames to the collector, timed by their place in the video (a copy: the writer draws next)."""

    def offer(frame: InputFrame, predictions: Predictions) -> None:
        at = frame.time_s if frame.time_s is not None else time.monotonic()
        collector.offer(Frame(frame.index, frame.image, at), predictions, frame.time_s, copy=True)

    return offer


def _report(job: AnnotateJob, result: AnnotateResult, codec: str, *, kept: bool = True) -> int:
    where = f"{job.output} ({codec})"
    if not kept:
        log.info(
            "nothing written (%s%s left as before); %d sent, %d failed",
            job.output,
            f", {job.json}" if job.json else "",
            result.sent,
            result.failed,
        )
    else:
        log.info(
            "%d frames written to %s in %.1f s (%.1f fps); %d sent, %d failed%s",
            result.frames_written,
            where,
            result.elapsed_s,
            result.fps,
            result.sent,
            result.failed,
            f"; predictions in {job.json}" if job.json else "",
        )
    if result.fatal is not None:
        log.error("stopped after %d frames: %s", result.frames_written, result.fatal)
        return EXIT_FAILED
    if result.interrupted:
        log.warning("interrupted: %s holds the first %d frames", job.output, result.frames_written)
        return EXIT_INTERRUPTED
    if result.broken is not None:
        log.error("stopped after %d frames: %s", result.frames_written, result.broken)
        return EXIT_FAILED
    if result.input_error is not None:
        of = "?" if result.frames_expected is None else str(result.frames_expected)
        log.error(
            "input ended at frame %d of %s: %s; %s holds the %d frames read",
            result.frames_read,
            of,
            result.input_error,
            job.output,
            result.frames_written,
        )
        return EXIT_FAILED
    if result.frames_written == 0:
        log.error("no frame could be read from %s", job.input)
        return EXIT_FAILED
    if result.failed and result.failed_fraction > job.max_failed_fraction:
        log.error(
            "%d of %d requests failed (%.1f%% > --max-failed-fraction %g); those frames have no boxes%s",
            result.failed,
            result.sent,
            100 * result.failed_fraction,
            job.max_failed_fraction,
            f' and an "error" in {job.json}' if job.json else "",
        )
        return EXIT_FAILED
    if result.failed:
        log.warning("%d of %d requests failed (tolerated by --max-failed-fraction)", result.failed, result.sent)
    return EXIT_OK
