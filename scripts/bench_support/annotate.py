"""Benchmark 2: ``livecam annotate`` throughput vs the baseline and vs the model called directly."""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import cv2

from bench_support.common import (
    PYTHON,
    SAMPLES,
    SCRIPTS,
    Scale,
    Section,
    latency_server,
    livecam_serve,
    ratio,
    read_json,
    run_child,
    table,
)
from livecam.annotate.engine import DEFAULT_IN_FLIGHT
from livecam.detector import detector_factory
from livecam.frames import Image

_FPS_LINE = re.compile(r"(\d+) frames written to .* in ([\d.]+) s \(([\d.]+) fps\)")
LATENCY_MS, SLOTS = 200, 8
THROUGHPUT_TARGET, MODEL_TARGET = 3.0, 0.90
CONFIDENCE, IOU, MAX_DETECTIONS = 0.40, 0.30, 100


def clip(source: Path, frames: int | None, out_dir: Path) -> Path:
    """``source``, or its first ``frames`` frames re-encoded to a file in ``out_dir``."""
    if frames is None:
        return source
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    path = out_dir / f"{source.stem}-{frames}.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    for _ in range(frames):
        ok, image = capture.read()
        if not ok:
            break
        writer.write(image)
    writer.release()
    capture.release()
    return path


def decoded_frames(path: Path) -> list[Image]:
    """Every frame of a video."""
    capture = cv2.VideoCapture(str(path))
    frames: list[Image] = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(cast(Image, image))
    capture.release()
    return frames


def direct_model_fps(frames: list[Image]) -> float:
    """Frames per second of the bundled detector's ``detect()`` in this process, on decoded frames."""
    detector = detector_factory()()
    for image in frames[:3]:
        detector.detect(image, CONFIDENCE, IOU, MAX_DETECTIONS)
    started = time.perf_counter()
    for image in frames:
        detector.detect(image, CONFIDENCE, IOU, MAX_DETECTIONS)
    return len(frames) / (time.perf_counter() - started)


def annotate_fps(video: Path, out: Path, in_flight: int, url: str | None, extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run ``livecam annotate`` (embedded model when ``url`` is None) with ``extra`` flags; its own frames/s figure."""
    command = [PYTHON, "-m", "livecam", "annotate", str(video), "-o", str(out), "--in-flight", str(in_flight), *extra]
    if url is not None:
        command += ["--api-url", url, "--model", "bench/1"]
    return annotate_throughput(command)


def annotate_throughput(command: Sequence[str]) -> dict[str, Any]:
    """Run a ``livecam annotate`` command; the frames, time and frames/s it reports, and its CPU time."""
    child = run_child(command, timeout_s=600)
    match = _FPS_LINE.search(child.stderr)
    if match is None:
        raise RuntimeError(f"livecam annotate did not report its throughput:\n{child.stderr[-1000:]}")
    return {
        "frames": int(match[1]),
        "elapsed_s": float(match[2]),
        "fps": float(match[3]),
        "cpu_s": round(child.cpu_s, 2),
    }


def baseline_fps(video: Path, out: Path, url: str, model: str) -> dict[str, Any]:
    """Run the sequential baseline over every frame of ``video`` (``--annotate``)."""
    stats_path = out.with_suffix(".json")
    child = run_child(
        [
            PYTHON,
            str(SCRIPTS / "sequential_baseline.py"),
            str(video),
            "--api-url",
            url,
            "--model",
            model,
            "--headless",
            "--annotate",
            str(out),
            "--stats-json",
            str(stats_path),
        ],
        timeout_s=900,
    )
    stats = read_json(stats_path)
    return {
        "frames": stats["displayed_frames"],
        "elapsed_s": stats["duration_s"],
        "fps": stats["display_fps"],
        "cpu_s": round(child.cpu_s, 2),
    }


def run(scale: Scale) -> Section:
    """(b) a 200 ms, 8-slot latency server; (a) the embedded model; each against the baseline."""
    section = Section("2. Annotation throughput")
    ks_latency = {"tiny": (DEFAULT_IN_FLIGHT,), "quick": (2, DEFAULT_IN_FLIGHT), "full": (1, 2, 4, 8)}[scale]
    ks_model = {"tiny": (), "quick": (1, DEFAULT_IN_FLIGHT), "full": (1, 2, 4, 8)}[scale]
    results: dict[str, Any] = {"default_in_flight": DEFAULT_IN_FLIGHT, "latency": {}, "model": {}}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        videos = [clip(SAMPLES / "bikes.mp4", {"tiny": 6, "quick": 40, "full": None}[scale], tmp)]
        if scale == "full":
            videos.append(clip(SAMPLES / "vtest.avi", 100, tmp))
        rows_b: list[list[Any]] = []
        rows_a: list[list[Any]] = []
        for video in videos:
            name = video.name
            with latency_server(LATENCY_MS, SLOTS) as url:
                base = baseline_fps(video, tmp / "base.avi", url, "bench/1")
                runs = {k: annotate_fps(video, tmp / f"k{k}.mp4", k, url) for k in ks_latency}
            results["latency"][name] = {"baseline": base, "livecam": runs}
            rows_b.append([name, "sequential baseline", base["frames"], base["fps"], 1.0, base["cpu_s"], "-"])
            for k, r in runs.items():
                speedup = ratio(r["fps"], base["fps"])
                met = "-" if k != DEFAULT_IN_FLIGHT else ("yes" if (speedup or 0) >= THROUGHPUT_TARGET else "NO")
                label = f"livecam annotate K={k}" + (" (default)" if k == DEFAULT_IN_FLIGHT else "")
                rows_b.append([name, label, r["frames"], r["fps"], speedup, r["cpu_s"], met])
            if not ks_model:
                continue
            frames = decoded_frames(video)
            direct = direct_model_fps(frames)
            with livecam_serve() as url:
                base_model = baseline_fps(video, tmp / "base-model.avi", url, "coco/1")
            model_runs = {k: annotate_fps(video, tmp / f"m{k}.mp4", k, None) for k in ks_model}
            direct_after = direct_model_fps(frames)
            results["model"][name] = {
                "direct_fps": [direct, direct_after],
                "baseline": base_model,
                "livecam": model_runs,
            }
            reference = (direct + direct_after) / 2
            rows_a.append(
                [name, "model detect() in-process (mean of before/after)", len(frames), reference, 1.0, "-", "-"]
            )
            rows_a.append(
                [
                    name,
                    "sequential baseline vs `livecam serve`",
                    base_model["frames"],
                    base_model["fps"],
                    ratio(base_model["fps"], reference),
                    base_model["cpu_s"],
                    "-",
                ]
            )
            for k, r in model_runs.items():
                share = ratio(r["fps"], reference)
                met = "-" if k != DEFAULT_IN_FLIGHT else ("yes" if (share or 0) >= MODEL_TARGET else "NO")
                label = f"livecam annotate K={k}" + (" (default)" if k == DEFAULT_IN_FLIGHT else "")
                rows_a.append([name, label, r["frames"], r["fps"], share, r["cpu_s"], met])
    section.tables.append(
        "(b) loopback latency server, 200 ms, 8 slots\n\n"
        + table(["video", "client", "frames", "frames/s", "x baseline", "CPU s", "target >= 3x"], rows_b)
    )
    section.tables.append(
        "(a) embedded model (bundled NanoDet; `livecam annotate` with no --api-url)\n\n"
        + table(
            ["video", "client", "frames", "frames/s", "share of direct model fps", "CPU s", "target >= 90%"], rows_a
        )
    )
    section.notes += [
        "frames/s is each tool's own figure (frames written / time from first read to last write), "
        "so process start-up and model loading are excluded.",
        "In (a) `livecam annotate` runs the embedded server in its own process; the baseline talks to a "
        "separate `livecam serve` process (same model and defaults).",
    ]
    section.data = results
    return section
