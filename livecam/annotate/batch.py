"""Many videos in one ``annotate``: several files at once, sharing the servers' windows.

    items = plan(expand_inputs(["day1/", "extra.mp4"]), Path("out"), json=True)
    outcomes = Batch(items, pool, options, stop, settings=settings_of(api, options)).run()

Each file gets the engine's own reader, workers and ordered writer; the workers of every file
lease from one :class:`~livecam.balance.pool.ServerPool`, so the servers' windows bound the
requests of the whole batch, not of each file. A file that cannot be read, or ends early, is
reported and the others go on; a bad key or unknown model stops them all. A file finished
cleanly is recorded in the folder's manifest, which ``--skip-done`` reads.
"""

from __future__ import annotations

import functools
import glob
import logging
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from livecam.annotate.engine import AnnotateOptions, AnnotateResult, Annotator, PooledDetector, ProgressSink
from livecam.annotate.jsonl import JsonLinesWriter
from livecam.annotate.manifest import Manifest, input_identity
from livecam.annotate.media import VideoInput, VideoOutput
from livecam.balance.pool import ServerPool
from livecam.client import ApiConfig
from livecam.errors import ConfigError, LivecamError
from livecam.progress import Progress
from livecam.workers import Worker, join_all

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".ts", ".flv"})
FILES_AT_ONCE = 4
"""Files annotated at the same time: enough to keep the servers' windows full while one file is
between frames, few enough that decoders and held frames stay small."""
_GLOB_CHARS = frozenset("*?[")


def is_video(path: Path) -> bool:
    """Whether ``path`` is named like a video file."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def holds_videos(folder: Path) -> bool:
    """Whether ``folder`` has video files in it (a video library rather than a folder of images)."""
    return any(p.is_file() and is_video(p) for p in folder.iterdir())


def expand_inputs(given: Iterable[Path]) -> list[Path]:
    """Every video the INPUTs name: files as given, a folder's videos and a glob's matches, in name order.

    Raises:
        ConfigError: an INPUT names nothing, or a folder or glob holds no video.
    """
    found: list[Path] = []
    for path in given:
        text = str(path)
        if path.is_dir():
            videos = sorted(p for p in path.iterdir() if p.is_file() and is_video(p))
            if not videos:
                raise ConfigError(f"INPUT folder {path} holds no video ({', '.join(sorted(VIDEO_SUFFIXES))})")
            found += videos
        elif path.exists():
            if not path.is_file():
                raise ConfigError(f"INPUT {path} is not a regular file or folder")
            found.append(path)
        elif _GLOB_CHARS & set(text):
            matches = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file() and is_video(Path(p)))
            if not matches:
                raise ConfigError(f"INPUT {text} matches no video file")
            found += matches
        else:
            raise ConfigError(f"INPUT {path} does not exist; give video files, a folder of videos or a glob")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch and where its outputs go.

    Attributes:
        source: the input video.
        name: the outputs' name (the input's, without its suffix).
        video: ``OUTDIR/<name>.mp4``.
        jsonl: ``OUTDIR/<name>.jsonl``, or None without ``--json``.
    """

    source: Path
    name: str
    video: Path
    jsonl: Path | None


def plan(inputs: Sequence[Path], outdir: Path, json: bool) -> list[BatchItem]:
    """Each input's outputs in ``outdir``.

    Raises:
        ConfigError: two inputs would write the same outputs, or an output would overwrite an input.
    """
    items: list[BatchItem] = []
    by_name: dict[str, Path] = {}
    sources = {p.resolve() for p in inputs}
    for source in inputs:
        name = source.stem
        if name in by_name:
            raise ConfigError(
                f"{by_name[name]} and {source} would both write {outdir / name}.mp4; "
                "rename one or annotate them into different folders"
            )
        by_name[name] = source
        item = BatchItem(source, name, outdir / f"{name}.mp4", outdir / f"{name}.jsonl" if json else None)
        for out in (item.video, item.jsonl):
            if out is not None and out.resolve() in sources:
                raise ConfigError(f"{out} is one of the INPUTs; choose another output folder")
        items.append(item)
    return items


def settings_of(api: ApiConfig, options: AnnotateOptions) -> str:
    """The settings that shape the outputs, as one string: a manifest entry made with others is stale."""
    return (
        f"model={api.model_id} confidence={api.confidence:g} overlap={api.overlap:g} "
        f"classes={','.join(api.classes or ())} max_side={api.max_side} every={options.every} "
        f"labels={options.style.labels} keyframes={options.keyframes}"
    )


def failure(result: AnnotateResult, max_failed_fraction: float) -> str | None:
    """Why a finished run does not count as complete, or None when it does."""
    if result.fatal is not None:
        return str(result.fatal)
    if result.broken is not None:
        return result.broken
    if result.interrupted:
        return "interrupted"
    if result.input_error is not None:
        return result.input_error
    if result.frames_written == 0:
        return "no frame could be read"
    if result.failed and result.failed_fraction > max_failed_fraction:
        return f"{result.failed} of {result.sent} requests failed (more than --max-failed-fraction)"
    return None


@dataclass(frozen=True)
class FileOutcome:
    """What became of one input.

    Attributes:
        item: the input and its outputs.
        result: the engine's result, when the file was annotated (None if skipped or unopened).
        error: why it is not complete, or None.
        skipped: complete from an earlier run (``--skip-done``); nothing was done.
    """

    item: BatchItem
    result: AnnotateResult | None = None
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        """Complete: annotated cleanly now, or before."""
        return self.error is None


class TotalProgress:
    """One count over the frames of several files, each reporting its own frames written."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self._lock = threading.Lock()
        self._done: dict[str, tuple[int, int]] = {}

    def sink(self, key: str) -> ProgressSink:
        """Where file ``key`` reports (a repeat of a file replaces its earlier count)."""
        return _KeyedSink(self, key)

    def set(self, key: str, done: int, failed: int = 0) -> None:
        """File ``key`` has ``done`` frames written, ``failed`` of them without an answer."""
        with self._lock:
            self._done[key] = (done, failed)
            if self.progress is not None:
                self.progress.update(sum(d for d, _ in self._done.values()), sum(f for _, f in self._done.values()))

    def say(self, line: str, error: bool = False) -> None:
        """Log one line without tearing the progress bar."""
        with self._lock:
            if self.progress is not None:
                self.progress.clear()
            (log.error if error else log.info)("%s", line)


class _KeyedSink:
    def __init__(self, total: TotalProgress, key: str) -> None:
        self._total = total
        self._key = key

    def update(self, done: int, failed: int = 0) -> None:
        self._total.set(self._key, done, failed)


def frames_of(path: Path) -> int | None:
    """The frame count a video's header promises (None when it says nothing or cannot be opened)."""
    try:
        source = VideoInput(path)
    except ConfigError:
        return None
    source.close()
    return source.total


class Batch:
    """Annotates ``items`` at most ``files_at_once`` at a time, all requests through ``pool``.

    ``stop`` (Ctrl-C) ends every file early; the batch sets it when it ends. Each file's engine
    has its own stop event, set by this batch when ``stop`` is, since an engine also sets its
    own when it finishes. With ``skip_done``, files the manifest holds complete are left alone.
    """

    def __init__(
        self,
        items: Sequence[BatchItem],
        pool: ServerPool,
        options: AnnotateOptions,
        stop: threading.Event,
        *,
        settings: str,
        max_failed_fraction: float = 0.0,
        skip_done: bool = False,
        progress: TotalProgress | None = None,
        files_at_once: int = FILES_AT_ONCE,
    ) -> None:
        self._items = list(items)
        self._pool = pool
        self._options = options
        self._stop = stop
        self._settings = settings
        self._max_failed = max_failed_fraction
        self._skip_done = skip_done
        self._progress = progress or TotalProgress(None)
        self._files_at_once = max(1, files_at_once)
        self._manifest = Manifest(self._items[0].video.parent) if self._items else None
        self._lock = threading.Lock()
        self._running: list[threading.Event] = []
        self.interrupted = False
        """Whether ``stop`` was set from outside (Ctrl-C) before every file was done."""
        self._fatal = False
        self._outcomes: dict[int, FileOutcome] = {}
        self._finished = 0
        self._left = 0
        self._ended = threading.Event()
        """Set when the last file thread of a run has ended."""

    def pending(self) -> tuple[list[BatchItem], list[FileOutcome]]:
        """The items still to do, and those skipped as complete (only with ``skip_done``)."""
        todo: list[BatchItem] = []
        skipped: list[FileOutcome] = []
        for item in self._items:
            if self._skip_done and self._complete(item):
                skipped.append(FileOutcome(item, skipped=True))
            else:
                todo.append(item)
        return todo, skipped

    def run(self, todo: Sequence[BatchItem] | None = None) -> list[FileOutcome]:
        """Annotate ``todo`` (default: every item not skipped, which are then among the outcomes);
        outcomes in the items' order."""
        skipped: list[FileOutcome] = []
        if todo is None:
            todo, skipped = self.pending()
        work: queue.SimpleQueue[tuple[int, BatchItem]] = queue.SimpleQueue()
        for pair in enumerate(todo):
            work.put(pair)
        self._total = len(todo)
        watcher = Worker(self._watch_stop, "annotate-batch-stop")
        watcher.start()
        workers = [
            Worker(functools.partial(self._annotate_some, work), f"annotate-file-{i}")
            for i in range(min(self._files_at_once, len(todo)))
        ]
        self._left = len(workers)
        self._ended.clear()
        try:
            for worker in workers:
                worker.start()
            # Each file ends on its own once stop is set (its engine joins its threads, bounded),
            # so this waits for the work, however long; only the joins after it have a deadline.
            if workers:
                self._ended.wait()
        finally:
            self.interrupted = self._stop.is_set() and not self._fatal
            self._stop.set()
            self._pool.wake()
            for name in join_all([*workers, watcher], self._options.join_timeout_s):
                log.warning("%s still running %.0f s after the batch ended", name, self._options.join_timeout_s)
        done = [self._outcomes.get(i, FileOutcome(item, error="interrupted")) for i, item in enumerate(todo)]
        order = {item.name: n for n, item in enumerate(self._items)}
        return sorted([*skipped, *done], key=lambda o: order[o.item.name])

    def _watch_stop(self) -> None:
        self._stop.wait()
        with self._lock:
            running = list(self._running)
        for event in running:
            event.set()
        self._pool.wake()

    def _annotate_some(self, work: queue.SimpleQueue[tuple[int, BatchItem]]) -> None:
        try:
            self._annotate_files(work)
        finally:
            with self._lock:
                self._left -= 1
                if self._left == 0:
                    self._ended.set()

    def _annotate_files(self, work: queue.SimpleQueue[tuple[int, BatchItem]]) -> None:
        while not self._stop.is_set():
            try:
                index, item = work.get_nowait()
            except queue.Empty:
                return
            outcome = self._annotate(item)
            with self._lock:
                self._outcomes[index] = outcome
                self._finished += 1
                finished = self._finished
            self._say(outcome, finished)
            if outcome.result is not None and outcome.result.fatal is not None:
                self._fatal = True
                self._stop.set()  # a bad key or an unknown model fails every other file too

    def _annotate(self, item: BatchItem) -> FileOutcome:
        try:
            identity = input_identity(item.source, self._settings)
            source = VideoInput(item.source)
        except (OSError, ConfigError) as exc:
            return FileOutcome(item, error=str(exc))
        file_stop = threading.Event()
        with self._lock:
            self._running.append(file_stop)
            if self._stop.is_set():
                file_stop.set()
        try:
            output = VideoOutput(item.video, source.fps, source.size)
            try:
                jsonl = JsonLinesWriter(item.jsonl) if item.jsonl is not None else None
                try:
                    result = Annotator(
                        source,
                        output,
                        lambda: PooledDetector(self._pool),
                        self._options,
                        file_stop,
                        jsonl=jsonl,
                        progress=self._progress.sink(item.name),
                        servers=self._pool,
                    ).run()
                finally:
                    if jsonl is not None:
                        jsonl.close()
            finally:
                output.close()
        except (LivecamError, OSError) as exc:
            return FileOutcome(item, error=f"cannot write its outputs: {exc}")
        finally:
            source.close()
            with self._lock:
                self._running.remove(file_stop)
        error = failure(result, self._max_failed)
        if error is None and self._manifest is not None:
            outputs = [p for p in (item.video, item.jsonl) if p is not None]
            self._manifest.record(item.name, identity, outputs, {"frames": result.frames_written})
        return FileOutcome(item, result, error)

    def _complete(self, item: BatchItem) -> bool:
        if self._manifest is None:
            return False
        try:
            identity = input_identity(item.source, self._settings)
        except OSError:
            return False
        entry = self._manifest.entry(item.name)
        wants_json = item.jsonl is not None
        has_json = entry is not None and any(name.endswith(".jsonl") for name in entry.get("outputs", {}))
        return self._manifest.complete(item.name, identity) and (has_json or not wants_json)

    def _say(self, outcome: FileOutcome, finished: int) -> None:
        item, result = outcome.item, outcome.result
        where = f"[{finished}/{self._total}] {item.source.name}"
        if result is None:
            self._progress.say(f"{where}: failed, {outcome.error}", error=True)
        elif outcome.error is None:
            self._progress.say(
                f"{where}: {result.frames_written} frames -> {item.video} in {result.elapsed_s:.1f} s "
                f"({result.fps:.1f} fps), {result.failed} failed requests"
            )
        else:
            self._progress.say(
                f"{where}: failed after {result.frames_written} frames ({outcome.error}); "
                f"{item.video} holds those frames",
                error=True,
            )


def summary(outcomes: Sequence[FileOutcome], elapsed_s: float) -> str:
    """One line over the whole batch."""
    done = [o for o in outcomes if o.result is not None and o.ok]
    frames = sum(o.result.frames_written for o in done if o.result is not None)
    failed = sum(1 for o in outcomes if not o.ok)
    skipped = sum(1 for o in outcomes if o.skipped)
    rate = frames / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{len(done)} of {len(outcomes)} files annotated ({frames} frames in {elapsed_s:.1f} s, {rate:.1f} fps)"
        f"{f', {skipped} already done' if skipped else ''}{f', {failed} failed' if failed else ''}"
    )
