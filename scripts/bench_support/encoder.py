"""Benchmark 3: PyTurboJPEG vs ``cv2.imencode`` on real footage, with and without downsizing."""

from __future__ import annotations

import statistics
import time
from typing import Any, cast

import cv2

from bench_support.common import SAMPLES, Scale, Section, table
from livecam.encode import DEFAULT_ENCODER, Encoder, OpenCVEncoder, TurboJPEGEncoder, fit_max_side
from livecam.errors import ConfigError
from livecam.frames import Image

SIZES = ((640, 480), (1280, 720), (1920, 1080))
QUALITIES = (70, 80, 90)
MAX_SIDE = 640


def footage(count: int) -> list[Image]:
    """``count`` frames spread over vtest.avi (a real street scene)."""
    capture = cv2.VideoCapture(str(SAMPLES / "vtest.avi"))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 795
    frames: list[Image] = []
    for index in range(count):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index * total // count)
        ok, image = capture.read()
        if ok:
            frames.append(cast(Image, image))
    capture.release()
    if not frames:
        raise RuntimeError("could not read sample_videos/vtest.avi")
    return frames


def measure(
    encoders: list[Encoder], frames: list[Image], quality: int, max_side: int | None, repeats: int
) -> dict[str, tuple[float, float]]:
    """Per encoder: (median ms per frame over ``repeats`` passes, mean JPEG bytes).

    The encoders take turns pass by pass (order alternating) after one warm-up pass, so a burst
    of load from elsewhere on the machine hits both alike. Downsizing is included in the time.
    """
    per_pass: dict[str, list[float]] = {e.name: [] for e in encoders}
    sizes: dict[str, list[int]] = {e.name: [] for e in encoders}
    for round_ in range(repeats + 1):
        for encoder in encoders if round_ % 2 else encoders[::-1]:
            started = time.perf_counter()
            for image in frames:
                small, _ = fit_max_side(image, max_side)
                sizes[encoder.name].append(len(encoder.encode(small, quality)))
            if round_:
                per_pass[encoder.name].append((time.perf_counter() - started) * 1000 / len(frames))
    return {name: (statistics.median(times), statistics.fmean(sizes[name])) for name, times in per_pass.items()}


def run(scale: Scale) -> Section:
    """Every encoder x size x quality x (full size, max side 640)."""
    section = Section("3. JPEG encoder")
    encoders: list[Encoder] = [OpenCVEncoder()]
    try:
        encoders.append(TurboJPEGEncoder())
    except ConfigError as exc:
        section.notes.append(f"PyTurboJPEG could not load ({exc}); only OpenCV measured")
    source = footage({"tiny": 1, "quick": 4, "full": 8}[scale])
    repeats = {"tiny": 1, "quick": 5, "full": 15}[scale]
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    for width, height in SIZES:
        frames = [cast(Image, cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA)) for f in source]
        for quality in QUALITIES:
            for max_side in (None, MAX_SIDE):
                figures = measure(encoders, frames, quality, max_side, repeats)
                row: list[Any] = [f"{width}x{height}", quality, "full" if max_side is None else f"max {max_side}"]
                for name in ("opencv", "turbojpeg"):
                    ms, nbytes = figures.get(name, (None, None))
                    row += [ms, None if nbytes is None else round(nbytes / 1024, 1)]
                cv_ms, tj_ms = figures["opencv"][0], figures.get("turbojpeg", (None, None))[0]
                row.append(None if tj_ms is None else cv_ms / tj_ms)
                rows.append(row)
                results.append(
                    {
                        "size": [width, height],
                        "quality": quality,
                        "max_side": max_side,
                        **{n: {"ms": ms, "bytes": b} for n, (ms, b) in figures.items()},
                    }
                )
    section.tables.append(
        table(
            [
                "frame",
                "quality",
                "sent as",
                "opencv ms",
                "opencv KiB",
                "turbojpeg ms",
                "turbojpeg KiB",
                "opencv ms / turbojpeg ms",
            ],
            rows,
        )
    )
    section.notes += [
        f"Frames: {len(source)} frames of vtest.avi resized to each size (real footage, not noise); "
        f"median of {repeats} passes. 'max {MAX_SIDE}' includes the INTER_AREA downsizing to "
        f"{MAX_SIDE} px on the long side (what the client does before encoding).",
        f"The encoder `auto` picks today: {DEFAULT_ENCODER}.",
    ]
    section.data = {"runs": results, "default_encoder": DEFAULT_ENCODER}
    return section
