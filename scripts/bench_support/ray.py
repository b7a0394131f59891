"""Benchmark: ``livecam annotate`` of several files, here and on a local Ray cluster.

(a) one file vs four files at once vs the same four with ``--ray`` (a local cluster), against the
same model-free servers; (b) the fixed cost of one task, with and without Ray; (c) the scaling
table those figures give for a library of H hours. Needs the ray extra (``pip install -e '.[ray]'``).
"""

from __future__ import annotations

import math
import os
import re
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from bench_support.annotate import clip
from bench_support.common import PYTHON, SAMPLES, Scale, Section, ratio, run_child, table
from bench_support.servers import servers, url_flags
from livecam.frames import Image

LATENCY_MS, SLOTS, SERVERS = 200, 4, 2
CAPACITY_FPS = SERVERS * SLOTS * 1000 / LATENCY_MS
OVERHEAD_TARGET, SHARE_TARGET = 0.9, 0.85
FRAMES: dict[Scale, int] = {"tiny": 10, "quick": 80, "full": 250}
"""Frames of each clip of the library, by scale."""
SERVER_FPS = 81.0
"""Frames/s ``livecam serve`` (int8, 2 workers) answers on a 2-core machine: BENCHMARKS.md, "Real-model rows"."""
NODE_CORES, DEADLINE_H, VIDEO_FPS = 8, 8.0, 25.0
_SUMMARY = re.compile(
    r"(\d+) of (\d+) files annotated(?: on the cluster)? \((\d+) frames in ([\d.]+) s, ([\d.]+) fps\)"
)
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def library(tmp: Path, frames: int) -> list[Path]:
    """Four clips of the sample footage (two of each file), ``frames`` frames each."""
    sources = [SAMPLES / "bikes.mp4", SAMPLES / "vtest.avi"]
    made: list[Path] = []
    for n in range(4):
        folder = tmp / f"in{n}"
        folder.mkdir()
        made.append(clip(sources[n % 2], frames, folder).rename(folder / f"clip{n}.avi"))
    return made


def annotate_many(inputs: Sequence[Path], out: Path, urls: Sequence[str], extra: Sequence[str] = ()) -> dict[str, Any]:
    """``livecam annotate INPUTS -o OUT/`` (with ``extra`` flags); its own summary, wall and CPU time."""
    command = [PYTHON, "-m", "livecam", "annotate", *map(str, inputs), "-o", f"{out}/", *url_flags(urls)]
    env_before = os.environ.get(_LOOPBACK_ENV)
    os.environ[_LOOPBACK_ENV] = "0"  # a local cluster on 127.0.0.1 only
    try:
        child = run_child([*command, "--model", "bench/1", *extra], timeout_s=900)
    finally:
        if env_before is None:
            os.environ.pop(_LOOPBACK_ENV, None)
        else:
            os.environ[_LOOPBACK_ENV] = env_before
    match = _SUMMARY.search(child.stderr)
    if match is None:
        raise RuntimeError(f"livecam annotate did not report its throughput:\n{child.stderr[-1500:]}")
    return {
        "files": int(match[1]),
        "frames": int(match[3]),
        "elapsed_s": float(match[4]),
        "fps": float(match[5]),
        "wall_s": round(child.wall_s, 2),
        "cpu_s": round(child.cpu_s, 2),
    }


def task_overhead(video: Path, out: Path, url: str, repeats: int) -> dict[str, float]:
    """Median wall time of a one-frame segment: the engine alone in this process, and as a Ray task."""
    os.environ.setdefault(_LOOPBACK_ENV, "0")
    import ray

    from livecam.annotate.cluster import SegmentTask, annotate_segment
    from livecam.annotate.engine import AnnotateOptions
    from livecam.annotate.segments import Segment
    from livecam.client import ApiConfig

    def task(counter: Any, n: int) -> SegmentTask:
        segment = Segment("overhead", n, 0, 1)
        return SegmentTask(
            str(video), segment, str(out / f"{n}.mp4"), str(out / f"{n}.jsonl"), ApiConfig(url, "bench/1"),
            False, None, AnnotateOptions(in_flight=1), 1, False, "bench", counter,
        )  # fmt: skip

    local_s: list[float] = []
    for n in range(repeats + 1):
        started = time.perf_counter()
        done = annotate_segment(task(_RemoteShim(), n))
        if done.error:
            raise RuntimeError(done.error)
        local_s.append(time.perf_counter() - started)
    ray.init(address="local", num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    try:
        counter = ray.remote(_NullCounter).options(num_cpus=0).remote()
        remote = ray.remote(annotate_segment).options(num_cpus=1)
        ray_s: list[float] = []
        for n in range(repeats + 1):
            started = time.perf_counter()
            done = ray.get(remote.remote(task(counter, n)))
            if done.error:
                raise RuntimeError(done.error)
            ray_s.append(time.perf_counter() - started)
    finally:
        ray.shutdown()
    # The first of each warms up (imports, codec probing, a worker process for Ray).
    return {
        "engine_s": statistics.median(local_s[1:]),
        "ray_task_s": statistics.median(ray_s[1:]),
        "ray_first_task_s": ray_s[0],
    }


def join_cost(video: Path, out: Path) -> float:
    """Milliseconds per frame to join two segments of ``video`` into one file (copied with PyAV when installed)."""
    import cv2

    from livecam.annotate.segments import join_videos
    from livecam.display import VideoRecorder

    capture = cv2.VideoCapture(str(video))
    fps, size = capture.get(cv2.CAP_PROP_FPS), (int(capture.get(3)), int(capture.get(4)))
    frames: list[Image] = []
    while (read := capture.read())[0]:
        frames.append(cast(Image, read[1]))
    capture.release()
    out.mkdir(exist_ok=True)
    parts = [out / "part0.mp4", out / "part1.mp4"]
    half = len(frames) // 2
    for part, chunk in zip(parts, (frames[:half], frames[half:]), strict=True):
        recorder = VideoRecorder(part, fps, size)
        for image in chunk:
            recorder.write(image)
        recorder.close()
    started = time.perf_counter()
    join_videos(parts, out / "joined.mp4", fps, size)
    return (time.perf_counter() - started) * 1000 / max(1, len(frames))


class _NullCounter:
    """Counts nothing (a stand-in for the driver's frame counter)."""

    def set(self, key: str, done: int) -> None:
        return None


class _RemoteShim:
    """Lets the task's ``counter.set.remote(...)`` calls work without Ray."""

    class _Method:
        def remote(self, *args: Any) -> None:
            return None

    set = _Method()


def scaling(client_cpu_per_frame: float, task_s: float, segment_s: float) -> list[list[Any]]:
    """Nodes of :data:`NODE_CORES` cores (client and its own model) to annotate H hours within :data:`DEADLINE_H`."""
    server_cpu_per_frame = 2 / SERVER_FPS  # two cores answer SERVER_FPS frames a second
    rows: list[list[Any]] = []
    for hours in (1, 10, 100, 1000):
        frames = hours * 3600 * VIDEO_FPS
        tasks = math.ceil(hours * 3600 / segment_s)
        core_s = frames * (client_cpu_per_frame + server_cpu_per_frame) + tasks * task_s
        nodes = max(1, math.ceil(core_s / (NODE_CORES * DEADLINE_H * 3600)))
        server_cores = frames * server_cpu_per_frame / (DEADLINE_H * 3600)
        rows.append([hours, f"{frames:,.0f}", tasks, round(core_s / 3600, 1), nodes, math.ceil(server_cores / 2)])
    return rows


def one_and_four(inputs: Sequence[Path], tmp: Path, urls: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``annotate`` of the first input alone, then of all of them at once, against ``urls``."""
    return annotate_many(inputs[:1], tmp / "one", urls), annotate_many(inputs, tmp / "four", urls)


def files_at_once(scale: Scale) -> tuple[str, dict[str, Any]]:
    """``annotate`` of 1 file vs 4 files at once against the same servers: frames/s vs their capacity.

    Returns the Markdown table and the figures (for ``scripts/bench.py cameras``).
    """
    frames = FRAMES[scale]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        inputs = library(tmp, frames)
        with servers(LATENCY_MS, (SLOTS,) * SERVERS) as urls:
            one, four = one_and_four(inputs, tmp, urls)
    rows = [
        [label, result["frames"], result["fps"], result["fps"] / CAPACITY_FPS, result["cpu_s"]]
        for label, result in (("1 file", one), ("4 files at once", four))
    ]
    text = (
        f"`livecam annotate` of 1 vs 4 clips of the sample footage ({frames} frames each) into OUTDIR/, against "
        f"{SERVERS} model-free servers of {SLOTS} slots x {LATENCY_MS} ms (combined capacity {CAPACITY_FPS:g} "
        "frames/s)\n\n"
        + table(["annotate", "frames", "frames/s", f"share of capacity (target >= {SHARE_TARGET:g})", "CPU s"], rows)
    )
    return text, {"capacity_fps": CAPACITY_FPS, "one_file": one, "four_files": four}


def run(scale: Scale) -> Section:
    """1 vs 4 files, plain vs ``--ray``; per-task overhead; the scaling table."""
    frames = FRAMES[scale]
    repeats = {"tiny": 2, "quick": 3, "full": 5}[scale]
    from livecam.annotate.segments import DEFAULT_SEGMENT_S

    section = Section("Ray")
    data: dict[str, Any] = {"capacity_fps": CAPACITY_FPS}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        inputs = library(tmp, frames)
        with servers(LATENCY_MS, (SLOTS,) * SERVERS) as urls:
            one, four = one_and_four(inputs, tmp, urls)
            spread = annotate_many(inputs, tmp / "ray", urls, ["--ray"])
            overhead = task_overhead(inputs[0], tmp / "overhead", urls[0], repeats)
        join_ms = join_cost(inputs[0], tmp / "join")
    data.update({"one_file": one, "four_files": four, "ray_four_files": spread, "task": overhead, "join_ms": join_ms})
    rows = [
        ["plain, 1 file", one["frames"], one["fps"], one["fps"] / CAPACITY_FPS, "-", one["wall_s"], one["cpu_s"]],
        ["plain, 4 files", four["frames"], four["fps"], four["fps"] / CAPACITY_FPS, 1.0, four["wall_s"], four["cpu_s"]],
        [
            "--ray (local cluster), 4 files",
            spread["frames"],
            spread["fps"],
            spread["fps"] / CAPACITY_FPS,
            ratio(spread["fps"], four["fps"]),
            spread["wall_s"],
            "-",
        ],
    ]
    section.tables.append(
        f"(a) {len(inputs)} clips of the sample footage, {frames} frames each, against {SERVERS} model-free servers of "
        f"{SLOTS} slots x {LATENCY_MS} ms (combined capacity {CAPACITY_FPS:g} frames/s)\n\n"
        + table(
            [
                "run",
                "frames",
                "frames/s",
                f"share of capacity (4 files: target >= {SHARE_TARGET:g})",
                f"x plain 4 files (target >= {OVERHEAD_TARGET:g})",
                "wall s (incl. start-up)",
                "CPU s",
            ],
            rows,
        )
    )
    per_frame = four["cpu_s"] / max(1, four["frames"])
    ray_cost = overhead["ray_task_s"] - overhead["engine_s"]
    section.tables.append(
        f"(b) one task over a one-frame segment (one {LATENCY_MS} ms request included; median of {repeats} "
        "after a first one), the client's CPU per frame (plain, 4 files), and joining two segments\n\n"
        + table(
            [
                "engine alone s",
                "as a Ray task s",
                "Ray's own share s",
                "first task of a new worker s",
                "client CPU ms per frame",
                "join ms per frame",
            ],
            [
                [
                    overhead["engine_s"],
                    overhead["ray_task_s"],
                    ray_cost,
                    overhead["ray_first_task_s"],
                    per_frame * 1000,
                    join_ms,
                ]
            ],
        )
    )
    section.tables.append(
        f"(c) nodes of {NODE_CORES} cores, each running livecam and its own `livecam serve` ({SERVER_FPS:g} "
        f"frames/s per 2 cores), to annotate H hours of {VIDEO_FPS:g} fps video within {DEADLINE_H:g} h, "
        f"--segment-s {DEFAULT_SEGMENT_S:g}\n\n"
        + table(
            ["hours of video", "frames", "tasks", "core-hours", "nodes", "2-core model servers"],
            scaling(per_frame, overhead["ray_task_s"], DEFAULT_SEGMENT_S),
        )
    )
    data["client_cpu_ms_per_frame"] = per_frame * 1000
    section.data = data
    return section
