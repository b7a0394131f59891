"""Benchmark 6: the bundled model per backend, precision and thread count; agreement with fp32; batching.

Speed is the whole ``detect()`` (resize, normalise, the graph, decoding, NMS) on decoded sample
frames. Agreement is the share of the fp32 model's detections (onnxruntime, confidence 0.40)
that a variant also finds: same class, IoU >= 0.5, each of its boxes matched at most once. It is
measured on the sample footage and on frames held out of the int8 model's calibration
(``scripts/quantize_model.py``, :data:`bench_support.calibration.CALIBRATION`).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cv2
import numpy as np

from bench_support.annotate import CONFIDENCE, IOU, MAX_DETECTIONS
from bench_support.calibration import CALIBRATION
from bench_support.common import SAMPLES, Scale, Section, percentile, table
from livecam.detector import DEFAULT_PRECISION, PRECISIONS, Detector, Precision, bundled_model, load_detector
from livecam.detector.nanodet import preprocess
from livecam.detector.runtime import Backend, OnnxRuntimeRunner, import_onnxruntime
from livecam.frames import Image
from livecam.predictions import Prediction, Predictions

AGREEMENT_TARGET = 0.95
MATCH_IOU = 0.5
BACKENDS: tuple[Backend, ...] = ("onnxruntime", "opencv")
THREADS = (1, 2)
BATCHES = (1, 2, 4)


def video_frames(name: str, indices: Iterator[int] | range) -> list[Image]:
    """The frames of ``sample_videos/name`` at ``indices`` (ascending)."""
    wanted = set(indices)
    capture = cv2.VideoCapture(str(SAMPLES / name))
    found: list[Image] = []
    try:
        index = 0
        while wanted and index <= max(wanted):
            ok, image = capture.read()
            if not ok:
                break
            if index in wanted:
                found.append(np.asarray(image, np.uint8))
            index += 1
    finally:
        capture.release()
    return found


def frame_sets(scale: Scale) -> dict[str, list[Image]]:
    """``footage``: frames spread over both whole videos; ``held out``: frames after the calibration range."""
    spread = {"tiny": 60, "quick": 12, "full": 4}[scale]
    sets: dict[str, list[Image]] = {"footage": [], "held out": []}
    lengths = {"bikes.mp4": 250, "vtest.avi": 795}
    for name, (_start, stop, _step) in CALIBRATION.items():
        sets["footage"] += video_frames(name, range(0, lengths[name], spread * (3 if name == "vtest.avi" else 1)))
        sets["held out"] += video_frames(name, range(stop, lengths[name], spread * (2 if name == "vtest.avi" else 1)))
    return sets


def iou(a: Prediction, b: Prediction) -> float:
    """Intersection over union of two corner boxes."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(0.0, w) * max(0.0, h)
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def matched(reference: Predictions, other: Predictions) -> int:
    """How many of ``reference``'s boxes ``other`` has too (same class, IoU >= 0.5, one-to-one, best first)."""
    free = list(other.items)
    count = 0
    for want in sorted(reference.items, key=lambda p: -p.confidence):
        scored = [(iou(want, got), i) for i, got in enumerate(free) if got.class_name == want.class_name]
        best = max(scored, default=(0.0, -1))
        if best[0] >= MATCH_IOU:
            count += 1
            free.pop(best[1])
    return count


def agreement(reference: Sequence[Predictions], other: Sequence[Predictions]) -> tuple[float | None, int]:
    """Share of the reference detections found by ``other`` over paired frames, and the reference count."""
    total = sum(len(r) for r in reference)
    if not total:
        return None, 0
    return sum(matched(r, o) for r, o in zip(reference, other, strict=True)) / total, total


def detect_all(detector: Detector, images: Sequence[Image]) -> list[Predictions]:
    """``detector``'s answer for every image at the benchmark's thresholds."""
    return [detector.detect(image, CONFIDENCE, IOU, MAX_DETECTIONS) for image in images]


def timed(step: Callable[[int], object], count: int, seconds: float) -> dict[str, Any]:
    """Call ``step(i)`` for ``seconds`` (cycling over ``count`` inputs, after two warm-up calls)."""
    for i in range(min(2, count)):
        step(i)
    times: list[float] = []
    started = time.perf_counter()
    for i in itertools.count():
        if time.perf_counter() - started >= seconds and len(times) >= 3:
            break
        t = time.perf_counter()
        step(i % count)
        times.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - started
    return {"per_s": len(times) / elapsed, "p50_ms": percentile(times, 50), "p95_ms": percentile(times, 95)}


def load(backend: Backend, precision: Precision, threads: int) -> Detector:
    """The bundled model on ``backend`` with ``threads`` (OpenCV's thread count is process-wide)."""
    if backend == "opencv":
        cv2.setNumThreads(threads)
    return load_detector(bundled_model(precision), backend=backend, threads=threads)


def batch_rows(images: Sequence[Image], seconds: float) -> list[dict[str, Any]]:
    """The graph alone (onnxruntime) on batches of 1, 2 and 4 images: ms per image."""
    ort = import_onnxruntime()
    blobs = [preprocess(image, (416, 416)) for image in images]
    rows = []
    batched: tuple[Precision, ...] = ("int8", "fp16")
    for precision, threads in itertools.product(batched, THREADS):
        runner = OnnxRuntimeRunner(bundled_model(precision), ort, threads)
        row: dict[str, Any] = {"precision": precision, "threads": threads}
        for batch in BATCHES:
            groups = [np.concatenate(list(itertools.islice(itertools.cycle(blobs), i, i + batch))) for i in range(4)]

            def step(i: int, g: list[Any] = groups, r: OnnxRuntimeRunner = runner) -> object:
                return r.run(g[i % len(g)])

            result = timed(step, len(groups), seconds)
            row[f"batch{batch}_ms_per_image"] = result["p50_ms"] / batch if result["p50_ms"] else None
        row["two_workers_ms_per_image"] = two_workers(ort, precision, threads, blobs, seconds)
        rows.append(row)
    return rows


def two_workers(ort: Any, precision: Precision, threads: int, blobs: Sequence[Any], seconds: float) -> float:
    """What the server does today: two sessions, each running single images, in two threads at once."""
    runners = [OnnxRuntimeRunner(bundled_model(precision), ort, threads) for _ in range(2)]
    for runner in runners:
        runner.run(blobs[0])
    counts = [0, 0]
    deadline = time.perf_counter() + seconds

    def work(n: int) -> None:
        while time.perf_counter() < deadline or counts[n] < 2:
            runners[n].run(blobs[counts[n] % len(blobs)])
            counts[n] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=seconds + 60)
    return (time.perf_counter() - started) * 1000 / sum(counts)


def run(scale: Scale) -> Section:
    """Speed of every backend x precision x threads, agreement with fp32, and batching."""
    seconds = {"tiny": 0.2, "quick": 1.0, "full": 4.0}[scale]
    rounds = 2 if scale == "full" else 1
    sets = frame_sets(scale)
    speed_frames = sets["footage"]
    combos = list(itertools.product(BACKENDS, PRECISIONS, THREADS))
    samples: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    answers: dict[tuple[str, str], dict[str, list[Predictions]]] = {}
    default_threads = cv2.getNumThreads()
    try:
        for _ in range(rounds):
            for backend, precision, threads in combos:
                detector = load(backend, precision, threads)

                def detect(i: int, d: Detector = detector) -> object:
                    return detect_all(d, [speed_frames[i]])

                result = timed(detect, len(speed_frames), seconds)
                samples.setdefault((backend, precision, threads), []).append(result)
                if (backend, precision) not in answers:
                    answers[(backend, precision)] = {
                        name: detect_all(detector, images) for name, images in sets.items()
                    }
    finally:
        cv2.setNumThreads(default_threads)
    reference = answers[("onnxruntime", "fp32")]
    rows: list[list[Any]] = []
    results: dict[str, Any] = {"runs": [], "frames": {name: len(images) for name, images in sets.items()}}
    base = statistics.median(r["per_s"] for r in samples[("onnxruntime", "fp32", 2)])
    for backend, precision, threads in combos:
        runs = samples[(backend, precision, threads)]
        rates = [r["per_s"] for r in runs]
        best = runs[rates.index(statistics.median_low(rates))]
        footage, footage_n = agreement(reference["footage"], answers[(backend, precision)]["footage"])
        held, held_n = agreement(reference["held out"], answers[(backend, precision)]["held out"])
        results["runs"].append(
            {
                "backend": backend,
                "precision": precision,
                "threads": threads,
                **best,
                "agreement_footage": footage,
                "agreement_held_out": held,
                "reference_detections": {"footage": footage_n, "held out": held_n},
            }
        )
        default = backend == "onnxruntime" and precision == DEFAULT_PRECISION
        met = "-" if not default else ("yes" if min(footage or 0, held or 0) >= AGREEMENT_TARGET else "NO")
        label = f"{precision} (default)" if precision == DEFAULT_PRECISION else precision
        rows.append(
            [
                backend,
                label,
                threads,
                best["per_s"],
                best["p50_ms"],
                best["p95_ms"],
                best["per_s"] / base,
                footage,
                held,
                met,
            ]
        )
    section = Section("6. Bundled model: backend, precision, threads")
    section.tables.append(
        table(
            [
                "backend",
                "precision",
                "threads",
                "frames/s",
                "p50 ms",
                "p95 ms",
                "x onnxruntime fp32 2 threads",
                "agreement footage",
                "agreement held out",
                f"target >= {AGREEMENT_TARGET:.2f}",
            ],
            rows,
        )
    )
    batches = batch_rows(speed_frames[:4], seconds)
    results["batching"] = batches
    section.tables.append(
        table(
            [
                "graph alone (onnxruntime)",
                "threads",
                *(f"batch {b}: ms per image" for b in BATCHES),
                "two workers, batch 1 each: ms per image",
            ],
            [
                [
                    b["precision"],
                    b["threads"],
                    *(b[f"batch{n}_ms_per_image"] for n in BATCHES),
                    b["two_workers_ms_per_image"],
                ]
                for b in batches
            ],
        )
    )
    ref_counts = results["runs"][0]["reference_detections"]
    section.notes += [
        f"Speed: the whole detect() on {len(speed_frames)} decoded frames of both sample videos (768x576 and "
        f"640x272), {seconds:g} s per row, {rounds} round(s) (median round shown); one detector, nothing else running "
        "in the process. OpenCV's thread count is set with cv2.setNumThreads.",
        f"Agreement: share of the fp32 onnxruntime model's {ref_counts['footage']} detections on the footage frames "
        f"and {ref_counts['held out']} on the held-out frames (after the calibration range of each video) that "
        f"the row also finds: same class, IoU >= {MATCH_IOU}, confidence >= {CONFIDENCE:.2f}.",
        "Batching: the graph alone (preprocessing excluded, it is per image either way) on batches of 1, 2 and 4 "
        "images (p50 per batch / batch size; the int8 and fp16 files have a symbolic batch dimension), against what "
        "the server does today: two workers each running one image at a time, in parallel (wall time / images).",
    ]
    section.data = results
    return section
