"""``annotate --ray``: every video, and every segment of a long one, a Ray task running the engine.

    code = run_on_ray(job, address=None, stop=stop, progress_stream=sys.stderr)

The driver (this process) cuts each input into frame ranges (:mod:`livecam.annotate.segments`),
submits one task per range not yet in the manifest, counts frames over all tasks, and joins each
input's parts once they are all in. A task reads the input and writes its parts on the worker, so
inputs and OUTDIR must be on a filesystem every node mounts. A task writes ``*.partial`` files and
renames them when it succeeds, so a retried task (Ray's ``max_retries`` after a worker died)
replaces what its first attempt left. With no API named, each node runs one embedded server in a
Ray actor (started by the first task on the node); that node's tasks send to it.

Ray is imported only here, and only when ``--ray`` is given (``pip install 'livecam[ray]'``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from livecam.annotate.batch import BatchItem, frames_of, settings_of
from livecam.annotate.engine import AnnotateOptions, Annotator, PooledDetector, server_pool
from livecam.annotate.jsonl import JsonLinesWriter
from livecam.annotate.manifest import Manifest, input_identity
from livecam.annotate.media import VideoInput, VideoOutput
from livecam.annotate.segments import PARTS_FOLDER, Segment, frame_spans, join_lines, join_videos
from livecam.client import ApiConfig
from livecam.detector.bundled import Precision
from livecam.errors import ConfigError, LivecamError
from livecam.progress import Progress
from livecam.redaction import redact

log = logging.getLogger(__name__)

MAX_RETRIES = 3
"""Times Ray runs a task again after its worker process or node died."""
PROGRESS_EVERY_S = 0.5
"""How often a task reports its frames, and the driver redraws the bar."""
_NAMESPACE = "livecam"


@dataclass(frozen=True)
class ClusterJob:
    """What ``annotate --ray`` does.

    Attributes:
        items: the inputs and their outputs in OUTDIR.
        api: the servers to send to; with ``embedded``, a template whose URL each node's own
            embedded server replaces.
        embedded: no API was named: each node runs the bundled model.
        precision: the embedded model's precision (None: its default).
        options: the engine's options for every task.
        per_server, adaptive: each task's requests in flight per server, fixed or learnt.
        segment_s: seconds of video per task at most.
        max_failed_fraction: tolerated share of failed requests per input.
        skip_done: leave out inputs finished by an earlier run.
    """

    items: tuple[BatchItem, ...]
    api: ApiConfig = field(repr=False)
    embedded: bool
    options: AnnotateOptions
    per_server: int
    adaptive: bool
    segment_s: float
    max_failed_fraction: float = 0.0
    skip_done: bool = False
    precision: Precision | None = None


@dataclass(frozen=True)
class SegmentTask:
    """One task's work, shipped to a worker."""

    source: str
    segment: Segment
    video: str
    jsonl: str
    api: ApiConfig = field(repr=False)
    embedded: bool
    precision: Precision | None
    options: AnnotateOptions
    per_server: int
    adaptive: bool
    run_id: str
    counter: Any


@dataclass(frozen=True)
class SegmentDone:
    """What a task reports back.

    Attributes:
        key: the segment's manifest key.
        frames, sent, failed: frames written, requests sent, requests failed for good.
        error: why the segment is not complete (input unreadable, ended early, bad key), or None.
        fatal: the error fails every input (bad key, unknown model).
        node: the host that ran it.
    """

    key: str
    frames: int
    sent: int
    failed: int
    error: str | None
    fatal: bool
    node: str


LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to 0 before Ray is imported, Ray takes 127.0.0.1 as this node's address and its servers
listen there only (by default it swaps 127.0.0.1 for the machine's routable address)."""


@dataclass(frozen=True)
class ClusterOutcome:
    """How an ``annotate --ray`` run went.

    Attributes:
        files: inputs given.
        complete: inputs whose outputs are complete now (skipped ones included).
        skipped: inputs left out as complete from an earlier run (``--skip-done``).
        failed: inputs that could not be read or whose tasks failed.
        frames: frames written in this run.
        interrupted: the stop event (Ctrl-C) ended the run early; OUTDIR is resumable.
    """

    files: int
    complete: int
    skipped: int
    failed: int
    frames: int
    interrupted: bool


def import_ray(local: bool) -> Any:
    """The ``ray`` module; for a ``local`` cluster, one that will listen on loopback only.

    Raises:
        ConfigError: Ray is not installed.
    """
    if local:
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--ray needs Ray on this machine and every node: pip install 'livecam[ray]'") from exc
    return ray


def connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address``, or start one on this machine listening on loopback only.

    Returns whether this call connected (so the caller disconnects at the end).

    Raises:
        ConfigError: a local cluster would listen on other addresses than loopback.
    """
    if ray.is_initialized():
        return False
    if address:
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, namespace=_NAMESPACE, log_to_driver=False)
        return True
    log.info("no --ray ADDRESS nor RAY_ADDRESS: starting a Ray cluster on this machine (127.0.0.1 only)")
    ray.init(
        address="local",  # a new cluster even when `ray start` runs one here (that one is `--ray auto`)
        _node_ip_address="127.0.0.1",
        include_dashboard=False,
        namespace=_NAMESPACE,
        log_to_driver=False,
    )
    if ray.util.get_node_ip_address() != "127.0.0.1":
        ray.shutdown()
        raise ConfigError(
            "the local Ray cluster would listen on this machine's network address: Ray was imported "
            f"before livecam could set {LOOPBACK_ONLY_ENV}=0; set it, or start one with ray start --head"
        )
    return True


class _FrameCounter:
    """A Ray actor: the frames each task has written so far (a retried task starts its count again)."""

    def __init__(self) -> None:
        self._done: dict[str, int] = {}

    def set(self, key: str, done: int) -> None:
        self._done[key] = done

    def total(self) -> int:
        return sum(self._done.values())


class _ModelServer:
    """A Ray actor on one node holding the embedded server that node's tasks send to."""

    def __init__(self, precision: Precision | None) -> None:
        from livecam.server.process import ServerProcess

        self._server = ServerProcess(precision)
        self._server.__enter__()

    def address(self) -> tuple[str, str]:
        return self._server.url, self._server.model_id

    def close(self) -> None:
        self._server.close()


class _CounterSink:
    """Reports a task's frames to the counter actor, at most every :data:`PROGRESS_EVERY_S`."""

    def __init__(self, counter: Any, key: str) -> None:
        self._counter = counter
        self._key = key
        self._last = 0.0

    def update(self, done: int, failed: int = 0) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self._counter.set.remote(self._key, done)


def _model_server_name(run_id: str, node_id: str) -> str:
    return f"livecam-model-{run_id}-{node_id}"


def _node_api(task: SegmentTask) -> ApiConfig:
    """The API this task sends to: the one given, or its node's embedded server (started if need be)."""
    if not task.embedded:
        return task.api
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    node_id = ray.get_runtime_context().get_node_id()
    server: Any = (
        ray.remote(_ModelServer)
        .options(
            name=_model_server_name(task.run_id, node_id),
            namespace=_NAMESPACE,
            get_if_exists=True,
            lifetime="detached",
            num_cpus=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
        )
        .remote(task.precision)
    )
    url, model_id = ray.get(server.address.remote())
    return replace(task.api, api_url=url, api_urls=(), model_id=model_id)


def annotate_segment(task: SegmentTask) -> SegmentDone:
    """Run the engine over one segment on this worker; its parts are renamed into place on success."""
    segment, node = task.segment, socket.gethostname()
    source_path = Path(task.source)
    if not source_path.is_file():
        return SegmentDone(
            segment.key, 0, 0, 0,
            f"the worker on {node} cannot read {source_path}: inputs and OUTDIR must be on a filesystem "
            "every node mounts at the same path (NFS, a mounted bucket)",
            False, node,
        )  # fmt: skip
    video, jsonl = Path(task.video), Path(task.jsonl)
    partial_video = video.with_name(f"{video.stem}.partial{video.suffix}")
    partial_jsonl = jsonl.with_name(f"{jsonl.stem}.partial{jsonl.suffix}")
    try:
        video.parent.mkdir(parents=True, exist_ok=True)
        source = VideoInput(source_path, segment.start, segment.end)
    except (OSError, ConfigError) as exc:
        return SegmentDone(segment.key, 0, 0, 0, f"on {node}: {exc}", False, node)
    stop = threading.Event()
    try:
        api = _node_api(task)
        pool = server_pool(api, task.per_server, task.adaptive)
        output = VideoOutput(partial_video, source.fps, source.size)
        try:
            with JsonLinesWriter(partial_jsonl) as lines:
                result = Annotator(
                    source,
                    output,
                    lambda: PooledDetector(pool),
                    task.options,
                    stop,
                    jsonl=lines,
                    progress=_CounterSink(task.counter, segment.key),
                    servers=pool,
                    first_frame=segment.start,
                ).run()
        finally:
            output.close()
            pool.close()
    except (LivecamError, OSError) as exc:
        return SegmentDone(segment.key, 0, 0, 0, f"on {node}: {exc}", False, node)
    finally:
        source.close()
    task.counter.set.remote(segment.key, result.frames_written)
    error = result.input_error or result.broken or (str(result.fatal) if result.fatal else None)
    if error is None and result.frames_written == 0:
        error = f"frames {segment.start}- of {source_path}: no frame could be read"
    if error is None:
        os.replace(partial_video, video)
        os.replace(partial_jsonl, jsonl)
    fatal = result.fatal is not None
    return SegmentDone(segment.key, result.frames_written, result.sent, result.failed, error, fatal, node)


@dataclass
class _Input:
    """The driver's view of one input while its segments run."""

    item: BatchItem
    identity: dict[str, Any]
    fps: float
    size: tuple[int, int]
    segments: list[Segment]
    done: dict[str, SegmentDone] = field(default_factory=dict)
    error: str | None = None


class ClusterRun:
    """The driver: plans segments, submits the missing ones, joins, records, reports."""

    def __init__(self, job: ClusterJob, ray: Any, stop: threading.Event, progress_stream: TextIO | None) -> None:
        self._job = job
        self._ray = ray
        self._stop = stop
        self._stream = progress_stream
        self._run_id = uuid.uuid4().hex[:8]
        self._outdir = job.items[0].video.parent
        self._manifest = Manifest(self._outdir)
        self._settings = settings_of(job.api, job.options)
        self.interrupted = False
        self._skipped = 0

    def run(self) -> ClusterOutcome:
        """Annotate every input."""
        started = time.monotonic()
        inputs, failed = self._plan()
        ray = self._ray
        counter = ray.remote(_FrameCounter).options(num_cpus=0).remote()
        remote = ray.remote(annotate_segment).options(num_cpus=1, max_retries=MAX_RETRIES)
        pending: dict[Any, tuple[_Input, Segment]] = {}
        total = 0
        for entry in inputs:
            for segment in entry.segments:
                if self._manifest.complete(segment.key, entry.identity):
                    entry.done[segment.key] = self._recorded(segment)
                    continue
                video, jsonl = segment.parts(self._outdir)
                task = SegmentTask(
                    str(entry.item.source.resolve()), segment, str(video.resolve()), str(jsonl.resolve()),
                    self._job.api, self._job.embedded, self._job.precision, self._job.options,
                    self._job.per_server, self._job.adaptive, self._run_id, counter,
                )  # fmt: skip
                pending[remote.remote(task)] = (entry, segment)
                total += self._frames(entry, segment)
        log.info("%d tasks for %d inputs on %s", len(pending), len(inputs), self._describe_cluster())
        progress = Progress(total or None, self._stream) if self._stream is not None and pending else None
        try:
            for entry in inputs:
                self._finish_if_complete(entry)
            self._wait(pending, counter, progress)
        finally:
            if pending:
                for ref in pending:
                    ray.cancel(ref, force=True)
            if progress is not None:
                progress.finish()
            self._stop_model_servers()
        return self._report(inputs, failed, time.monotonic() - started)

    def _plan(self) -> tuple[list[_Input], list[tuple[BatchItem, str]]]:
        inputs: list[_Input] = []
        failed: list[tuple[BatchItem, str]] = []
        for item in self._job.items:
            try:
                identity = input_identity(item.source, self._settings)
                probe = VideoInput(item.source)
            except (OSError, ConfigError) as exc:
                failed.append((item, str(exc)))
                continue
            probe.close()
            if self._job.skip_done and self._manifest.complete(item.name, identity):
                log.info("%s: already done in %s; skipped", item.source.name, item.video)
                self._skipped += 1
                continue
            spans = frame_spans(probe.total, probe.fps, self._job.segment_s, self._job.options.every)
            segments = [Segment(item.name, i, start, end) for i, (start, end) in enumerate(spans)]
            inputs.append(_Input(item, identity, probe.fps, probe.size, segments))
        return inputs, failed

    def _wait(self, pending: dict[Any, tuple[_Input, Segment]], counter: Any, progress: Progress | None) -> None:
        ray = self._ray
        from ray.exceptions import RayError

        while pending:
            if self._stop.is_set():
                self.interrupted = True
                return
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=PROGRESS_EVERY_S)
            for ref in ready:
                entry, segment = pending.pop(ref)
                try:
                    done: SegmentDone = ray.get(ref)
                except RayError as exc:
                    # A worker's traceback: whatever it quotes, the key stays out of the log.
                    failed = redact(str(exc), self._job.api.api_key)
                    entry.error = entry.error or (
                        f"a task failed on the cluster ({failed}); a worker that died was tried {MAX_RETRIES} "
                        "more times. Is livecam[ray] installed on every node?"
                    )
                    continue
                if done.error is not None:
                    entry.error = entry.error or redact(done.error, self._job.api.api_key)
                    if done.fatal:
                        self._stop.set()
                    continue
                video, jsonl = segment.parts(self._outdir)
                self._manifest.record(segment.key, entry.identity, [video, jsonl], _counts(done))
                entry.done[segment.key] = done
                self._finish_if_complete(entry)
            if progress is not None:
                progress.update(ray.get(counter.total.remote()))

    def _finish_if_complete(self, entry: _Input) -> None:
        if entry.error is not None or len(entry.done) < len(entry.segments):
            return
        item = entry.item
        parts = [s.parts(self._outdir) for s in entry.segments]
        try:
            join_videos([video for video, _ in parts], item.video, entry.fps, entry.size)
            if item.jsonl is not None:
                join_lines([jsonl for _, jsonl in parts], item.jsonl)
        except LivecamError as exc:
            entry.error = str(exc)
            return
        outputs = [p for p in (item.video, item.jsonl) if p is not None]
        frames = sum(d.frames for d in entry.done.values())
        sent, failed = sum(d.sent for d in entry.done.values()), sum(d.failed for d in entry.done.values())
        if failed and failed / max(1, sent) > self._job.max_failed_fraction:
            # Written, but not complete: a rerun does the whole input again.
            entry.error = f"{failed} of {sent} requests failed (more than --max-failed-fraction)"
        else:
            self._manifest.record(item.name, entry.identity, outputs, {"frames": frames})
        self._manifest.forget([s.key for s in entry.segments])
        shutil.rmtree(self._outdir / PARTS_FOLDER / item.name, ignore_errors=True)
        with contextlib.suppress(OSError):
            (self._outdir / PARTS_FOLDER).rmdir()  # only once empty: other inputs' parts may still be there
        nodes = sorted({d.node for d in entry.done.values()})
        log.info("%s: %d frames -> %s (%d segments on %s)", item.source.name, frames, item.video,
                 len(entry.segments), ", ".join(nodes))  # fmt: skip

    def _recorded(self, segment: Segment) -> SegmentDone:
        entry = self._manifest.entry(segment.key) or {}
        return SegmentDone(segment.key, int(entry.get("frames", 0)), int(entry.get("sent", 0)),
                           int(entry.get("failed", 0)), None, False, "an earlier run")  # fmt: skip

    def _frames(self, entry: _Input, segment: Segment) -> int:
        if segment.end is not None:
            return segment.end - segment.start
        total = frames_of(entry.item.source)
        return max(0, (total or 0) - segment.start)

    def _describe_cluster(self) -> str:
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        cpus = sum(int(n.get("Resources", {}).get("CPU", 0)) for n in nodes)
        return f"{len(nodes)} Ray node(s) with {cpus} CPUs"

    def _stop_model_servers(self) -> None:
        if not self._job.embedded:
            return
        ray = self._ray
        from ray.exceptions import RayError

        prefix = _model_server_name(self._run_id, "")
        try:
            names = ray.util.list_named_actors(all_namespaces=True)
            for found in names:
                if found.get("name", "").startswith(prefix):
                    actor = ray.get_actor(found["name"], namespace=found.get("namespace", _NAMESPACE))
                    ray.get(actor.close.remote(), timeout=10)
                    ray.kill(actor)
        except RayError as exc:
            log.warning("could not stop the embedded servers on the nodes (%s); they end with the cluster", exc)

    def _report(self, inputs: list[_Input], failed: list[tuple[BatchItem, str]], elapsed_s: float) -> ClusterOutcome:
        errors = [*failed, *((e.item, e.error) for e in inputs if e.error is not None)]
        for item, error in errors:
            log.error("%s: failed, %s", item.source.name, error)
        complete = [e for e in inputs if e.error is None and len(e.done) == len(e.segments)]
        frames = sum(sum(d.frames for d in e.done.values()) for e in complete)
        skipped = f", {self._skipped} already done" if self._skipped else ""
        log.info("%d of %d files annotated on the cluster (%d frames in %.1f s, %.1f fps)%s", len(complete),
                 len(self._job.items), frames, elapsed_s, frames / elapsed_s if elapsed_s > 0 else 0.0,
                 skipped)  # fmt: skip
        if self.interrupted:
            log.warning("interrupted: OUTDIR keeps every finished segment; run the same command to finish the rest")
        return ClusterOutcome(
            files=len(self._job.items),
            complete=len(complete) + self._skipped,
            skipped=self._skipped,
            failed=len(errors),
            frames=frames,
            interrupted=self.interrupted,
        )


def _counts(done: SegmentDone) -> dict[str, int]:
    return {"frames": done.frames, "sent": done.sent, "failed": done.failed}


def run_on_ray(
    job: ClusterJob, address: str | None, stop: threading.Event, progress_stream: TextIO | None
) -> ClusterOutcome:
    """Run ``job`` on the Ray cluster at ``address`` (None: a new local one).

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray(local=not address)
    if not job.items:
        return ClusterOutcome(0, 0, 0, 0, 0, False)
    try:
        connected = connect(ray, address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Ray cluster at {address or 'this machine'}: {exc}") from exc
    try:
        return ClusterRun(job, ray, stop, progress_stream).run()
    finally:
        if connected:
            ray.shutdown()
