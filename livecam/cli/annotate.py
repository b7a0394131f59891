"""``livecam annotate``: arguments, checks before any work, the run, the summary, the exit status."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from livecam.annotate.batch import (
    Batch,
    BatchItem,
    FileOutcome,
    TotalProgress,
    expand_inputs,
    frames_of,
    holds_videos,
    is_video,
    plan,
    settings_of,
    summary,
)
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
from livecam.annotate.keyframes import MAX_GAP, Keyframes, asking_for_tracks, parse_keyframes
from livecam.annotate.media import (
    FrameInput,
    ImageFolderInput,
    InputFrame,
    VideoInput,
    VideoOutput,
)
from livecam.annotate.segments import DEFAULT_SEGMENT_S
from livecam.cli import collect
from livecam.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    api_choice,
    check_positive,
    stop_on_signals,
)
from livecam.cli.flags import add_options
from livecam.cli.run import API_HELP
from livecam.collect import CollectConfig, Collector
from livecam.connection import ApiSettings
from livecam.errors import ConfigError
from livecam.frames import Frame
from livecam.outputs import check_writable, check_writable_folder
from livecam.overlay import OverlayStyle
from livecam.predictions import Predictions
from livecam.progress import Progress
from livecam.public.annotate import outputs, window_for, worth_keeping
from livecam.public.collecting import asking_low_confidence, collect_config, collecting
from livecam.public.options import API_OPTIONS
from livecam.public.serve import checked_precision, connect

log = logging.getLogger(__name__)

JSON_BESIDE = Path("<OUTDIR/name.jsonl>")
"""``--json`` given without a name."""
_GLOB_CHARS = frozenset("*?[")


class _OutputAction(argparse.Action):
    """Stores ``-o`` as a Path, and in ``output_folder`` whether it was written as a folder (``out/``),
    which the Path forgets."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        setattr(namespace, self.dest, Path(text))
        namespace.output_folder = text.endswith(("/", os.sep))


def _keyframes(text: str) -> Keyframes:
    try:
        return parse_keyframes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``livecam annotate`` (including the shared API options)."""
    parser.add_argument(
        "input",
        type=Path,
        nargs="+",
        metavar="INPUT",
        help="a video file OpenCV can read, or a folder of .jpg/.png/.bmp/.webp images; several videos, "
        "a folder of videos or a quoted glob ('day1/*.mp4') write OUTDIR/<name>.mp4 each",
    )
    parser.add_argument(
        "-o",
        "--output",
        action=_OutputAction,
        required=True,
        metavar="OUTPUT",
        help="the annotated video (.mp4: H.264 when available, else MPEG-4; .avi: MJPEG), "
        "a folder for annotated images, or OUTDIR/ for several videos (created if missing)",
    )
    parser.add_argument(
        "--json",
        type=Path,
        nargs="?",
        const=JSON_BESIDE,
        metavar="PREDICTIONS.jsonl",
        help="also write one JSON object per frame, in order (Roboflow format); with several "
        "videos give no name: each goes to OUTDIR/<name>.jsonl",
    )
    parser.add_argument(
        "--skip-done",
        action="store_true",
        help="with several videos: leave out those whose outputs an earlier run finished (after Ctrl-C, "
        "run the same command again with this)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="spread the videos and their segments over a Ray cluster (pip install 'livecam[ray]'): "
        "RAY_ADDRESS's, ADDRESS (auto, ray://head:10001) or, with neither, a local one on this machine",
    )
    parser.add_argument(
        "--segment-s",
        type=float,
        default=None,
        metavar="S",
        help=f"with --ray: cut videos longer than this into segments of S seconds, each a task "
        f"(default: {DEFAULT_SEGMENT_S:g})",
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        metavar="N",
        help="send only every Nth frame; the frames between keep its boxes (default: 1)",
    )
    parser.add_argument(
        "--keyframes",
        type=_keyframes,
        metavar="auto|N",
        help="send only keyframes (every Nth frame, or auto: where the picture changed, at least every "
        f"{MAX_GAP} frames) and place every other frame's boxes from the answers before and after it, "
        "carried with the objects' motion; JSON lines of such frames say from_keyframes",
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
    given: Path | list[Path] = args.input
    if isinstance(given, list):
        if len(given) != 1:
            raise ConfigError("several INPUTs write into a folder: give -o OUTDIR/")
        given = given[0]
    source: Path = given
    output: Path = args.output
    json_path: Path | None = args.json
    if json_path == JSON_BESIDE:
        json_path = output.with_suffix(".jsonl")
    if not source.exists():
        raise ConfigError(f"INPUT {source} does not exist; give a video file or a folder of images")
    folder = source.is_dir()
    if not folder and not source.is_file():
        raise ConfigError(f"INPUT {source} is not a regular file or folder")
    if not 0.0 <= args.max_failed_fraction <= 1.0:
        raise ConfigError(f"--max-failed-fraction must be between 0 and 1 (got {args.max_failed_fraction})")
    options, per_server, adaptive = annotate_options(args, choice)
    taken = {source.resolve(): "INPUT"}
    _check_target(output, "-o", folder, taken)
    taken[output.resolve()] = "-o"
    if json_path is not None:
        _check_target(json_path, "--json", False, taken)
    collecting = collect_config(collect.given(args))
    if collecting is not None and collecting.directory.resolve() in taken:
        what = taken[collecting.directory.resolve()]
        raise ConfigError(f"--collect {collecting.directory} is the same folder as {what}; choose another folder")
    return AnnotateJob(
        source, output, json_path, folder, options, args.max_failed_fraction, collecting, per_server, adaptive
    )


def annotate_options(args: argparse.Namespace, choice: ApiSettings) -> tuple[AnnotateOptions, int, bool]:
    """The engine's options, the requests in flight per server and whether each server's window is learnt.

    Raises:
        ConfigError: a number out of range.
    """
    per_server, adaptive = window_for(choice)
    workers = min(MAX_WORKERS, per_server * choice.servers)
    options = AnnotateOptions(
        in_flight=workers,
        every=args.every,
        keyframes=args.keyframes,
        confidence=choice.confidence / 100,
        style=OverlayStyle(labels=not args.no_labels),
    )
    return options, per_server, adaptive


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
    given: list[Path] = args.input if isinstance(args.input, list) else [args.input]
    if _several(args, given):
        return run_many(args, env, given, stop=stop, progress_stream=progress_stream)
    if getattr(args, "segment_s", None) is not None:
        raise ConfigError("--segment-s goes with --ray")
    choice = api_choice(args, env)
    job = check_arguments(args, choice)
    source: FrameInput = ImageFolderInput(job.input) if job.folder else VideoInput(job.input)
    stop = threading.Event() if stop is None else stop
    try:
        with stop_on_signals(stop), contextlib.ExitStack() as stack:
            api = asking_low_confidence(stack.enter_context(connect(choice)), job.collect)
            api = asking_for_tracks(api, job.options.keyframes)
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


def _several(args: argparse.Namespace, given: list[Path]) -> bool:
    """Whether this is a run over several videos into OUTDIR/ (else today's one INPUT, one OUTPUT)."""
    if len(given) > 1 or getattr(args, "ray", None) is not None or getattr(args, "skip_done", False):
        return True
    (path,) = given
    if path.is_dir():
        return holds_videos(path)
    if not path.exists():
        return bool(_GLOB_CHARS & set(str(path)))
    output: Path = args.output
    return bool(getattr(args, "output_folder", False)) or output.is_dir()


def run_many(
    args: argparse.Namespace,
    env: Mapping[str, str],
    given: list[Path],
    *,
    stop: threading.Event | None = None,
    progress_stream: TextIO | None = None,
) -> int:
    """``livecam annotate IN [IN ...] -o OUTDIR/``: every video into OUTDIR, here or on a Ray cluster.

    Raises:
        ConfigError: bad arguments or paths, found before any work.
    """
    choice = api_choice(args, env)
    if not 0.0 <= args.max_failed_fraction <= 1.0:
        raise ConfigError(f"--max-failed-fraction must be between 0 and 1 (got {args.max_failed_fraction})")
    if args.json is not None and args.json != JSON_BESIDE:
        raise ConfigError(
            f"with several videos, --json takes no name: each goes to OUTDIR/<name>.jsonl (got {args.json})"
        )
    if collect_config(collect.given(args)) is not None:
        raise ConfigError("--collect works with one INPUT; annotate the videos one at a time to collect frames")
    if args.segment_s is not None and args.ray is None:
        raise ConfigError("--segment-s goes with --ray")
    if args.ray is not None and getattr(args, "keyframes", None) is not None:
        # A segment's first frames would take their boxes from keyframes in the segment before.
        raise ConfigError("--keyframes does not combine with --ray yet; use --every N, or run without --ray")
    check_positive(segment_s=args.segment_s)
    options, per_server, adaptive = annotate_options(args, choice)
    outdir: Path = args.output
    if outdir.exists() and not outdir.is_dir():
        raise ConfigError(f"-o {outdir} is a file; with several videos give a folder (OUTDIR/)")
    if not outdir.exists() and is_video(outdir) and not getattr(args, "output_folder", False):
        raise ConfigError(
            f"-o {outdir} names a video file, but --skip-done, --ray and several inputs write into a folder: "
            "give -o OUTDIR/"
        )
    if not outdir.exists() and not outdir.resolve().parent.is_dir():
        raise ConfigError(f"-o: folder {outdir.parent} does not exist; create it first")
    items = plan(expand_inputs(given), outdir, json=args.json is not None)
    stop = threading.Event() if stop is None else stop
    stream = progress_stream or sys.stderr
    quiet = bool(getattr(args, "quiet", 0))
    if args.ray is not None:
        return _run_on_ray(args, env, choice, items, options, per_server, adaptive, stop, None if quiet else stream)
    outdir.mkdir(exist_ok=True)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        api = asking_for_tracks(stack.enter_context(connect(choice)), options.keyframes)
        stack.enter_context(stop_on_signals(stop))
        pool = server_pool(api, per_server, adaptive)
        stack.callback(pool.close)
        total = TotalProgress(None)
        batch = Batch(
            items,
            pool,
            options,
            stop,
            settings=settings_of(api, options),
            max_failed_fraction=args.max_failed_fraction,
            skip_done=args.skip_done,
            progress=total,
        )
        todo, skipped = batch.pending()
        for outcome in skipped:
            log.info("%s: already done in %s; skipped", outcome.item.source.name, outcome.item.video)
        if not quiet and todo:
            total.progress = Progress(_sum_known(frames_of(item.source) for item in todo), stream)
        outcomes = [*skipped, *batch.run(todo)]
        if total.progress is not None:
            total.progress.finish()
    return _report_many(outcomes, batch.interrupted, time.monotonic() - started)


def _run_on_ray(
    args: argparse.Namespace,
    env: Mapping[str, str],
    choice: ApiSettings,
    items: list[BatchItem],
    options: AnnotateOptions,
    per_server: int,
    adaptive: bool,
    stop: threading.Event,
    stream: TextIO | None,
) -> int:
    from livecam.annotate.cluster import ClusterJob, import_ray, run_on_ray

    address = args.ray or env.get("RAY_ADDRESS") or None
    import_ray(local=address is None)  # before any work: a clear message when Ray is missing
    if choice.embedded:
        from livecam.server.config import ServerConfig

        # Each node's own embedded server takes this URL's place on the node.
        api = choice.api_config(("http://127.0.0.1:9001",), ServerConfig().model_id)
    else:
        with connect(choice) as given:
            api = given
    job = ClusterJob(
        items=tuple(items),
        api=api,
        embedded=choice.embedded,
        options=options,
        per_server=per_server,
        adaptive=adaptive,
        segment_s=DEFAULT_SEGMENT_S if args.segment_s is None else args.segment_s,
        max_failed_fraction=args.max_failed_fraction,
        skip_done=args.skip_done,
        precision=checked_precision(choice.precision),
    )
    args.output.mkdir(exist_ok=True)
    with stop_on_signals(stop):
        outcome = run_on_ray(job, address, stop, stream)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcome.failed else EXIT_OK


def _sum_known(counts: Iterable[int | None]) -> int | None:
    """The sum, or None when any count is unknown."""
    values = list(counts)
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def _report_many(outcomes: Sequence[FileOutcome], interrupted: bool, elapsed_s: float) -> int:
    log.info("%s", summary(outcomes, elapsed_s))
    failed = [o for o in outcomes if not o.ok and o.error != "interrupted"]
    if failed:
        log.error(
            "%d of %d files failed: %s", len(failed), len(outcomes), ", ".join(str(o.item.source) for o in failed)
        )
    if interrupted:
        log.warning("interrupted: run the same command with --skip-done to finish only what is missing")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


def _offer_to(collector: Collector) -> AnswerHook:
    """Hands annotated frames to the collector, timed by their place in the video (a copy: the writer draws next)."""

    lowest = collector.config.lowest_confidence

    def offer(frame: InputFrame, predictions: Predictions) -> None:
        if predictions.below_threshold:  # keyframes may have asked lower than the collector wants
            kept = () if lowest is None else tuple(p for p in predictions.below_threshold if p.confidence >= lowest)
            predictions = replace(predictions, below_threshold=kept)
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
