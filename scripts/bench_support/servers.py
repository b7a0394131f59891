"""Benchmark: several detection servers. ``livecam annotate`` against 1, 2 and 4 loopback servers
of fixed capacity, and the live pipeline's prediction age with 1 vs 3 servers."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench_support.annotate import annotate_throughput
from bench_support.common import PYTHON, Scale, Section, latency_server, read_json, run_child, table

ANNOTATE_LATENCY_MS = 200
SHARE_TARGET = 0.8
LIVE_LATENCY_MS, LIVE_SLOTS = 500, 2
LIVE_SOURCE = "synthetic:1280x720@30"
SIZE = (640, 360)
SETUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("1 server", (2,)),
    ("2 equal", (2, 2)),
    ("4 equal", (2, 2, 2, 2)),
    ("3 unequal", (4, 2, 1)),
)
"""Each server's slots (requests it works on at once, each for 200 ms)."""


@contextlib.contextmanager
def servers(latency_ms: float, slots: Sequence[int]) -> Iterator[list[str]]:
    """One model-free latency server process per entry of ``slots``."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(latency_server(latency_ms, n)) for n in slots]


def write_clip(path: Path, frames: int) -> Path:
    """A 640x360 MJPEG clip of moving noise (cheap to decode and encode)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, SIZE)
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (SIZE[1], SIZE[0] * 2, 3), np.uint8)
    for i in range(frames):
        offset = (i * 7) % SIZE[0]
        writer.write(np.ascontiguousarray(base[:, offset : offset + SIZE[0]]))
    writer.release()
    return path


def url_flags(urls: Sequence[str]) -> list[str]:
    """``--api-url`` once per server."""
    return [flag for url in urls for flag in ("--api-url", url)]


def annotate_run(video: Path, out: Path, urls: Sequence[str]) -> dict[str, Any]:
    """``livecam annotate`` with default settings against ``urls``; its own frames/s figure."""
    command = [PYTHON, "-m", "livecam", "annotate", str(video), "-o", str(out), *url_flags(urls)]
    return annotate_throughput([*command, "--model", "bench/1"])


def live_run(urls: Sequence[str], in_flight: str, duration: float, stats: Path) -> dict[str, Any]:
    """``livecam run --headless`` against ``urls``; its ``--stats-json``."""
    command = [PYTHON, "-m", "livecam", "run", LIVE_SOURCE, "--headless", "-q", *url_flags(urls)]
    command += ["--model", "bench/1", "--in-flight", in_flight, "--duration", f"{duration:g}"]
    run_child([*command, "--stats-json", str(stats)], timeout_s=duration + 60)
    return read_json(stats)


def run(scale: Scale) -> Section:
    """Throughput share of the servers' combined capacity, then live prediction age."""
    seconds = {"tiny": 0.5, "quick": 3.0, "full": 10.0}[scale]
    live_s = {"tiny": 1.5, "quick": 4.0, "full": 15.0}[scale]
    setups = SETUPS[:2] if scale == "tiny" else SETUPS
    live_modes = {"tiny": ("auto",), "quick": ("auto",), "full": ("1", "auto")}[scale]
    section = Section("Servers")
    rows: list[list[Any]] = []
    live_rows: list[list[Any]] = []
    data: dict[str, Any] = {"annotate": [], "live": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, slots in setups:
            capacity = sum(slots) * 1000 / ANNOTATE_LATENCY_MS
            video = write_clip(tmp / f"{name.replace(' ', '-')}.avi", max(6, round(capacity * seconds)))
            with servers(ANNOTATE_LATENCY_MS, slots) as urls:
                result = annotate_run(video, tmp / "out.avi", urls)
            share = result["fps"] / capacity
            data["annotate"].append({"setup": name, "slots": list(slots), "capacity_fps": capacity, **result})
            rows.append(
                [
                    name,
                    " + ".join(str(n) for n in slots),
                    capacity,
                    result["frames"],
                    result["fps"],
                    share,
                    result["cpu_s"],
                    "yes" if share >= SHARE_TARGET else "NO",
                ]
            )
        for count in (1, 3):
            with servers(LIVE_LATENCY_MS, (LIVE_SLOTS,) * count) as urls:
                for mode in live_modes:
                    stats = live_run(urls, mode, live_s, tmp / f"live-{count}-{mode}.json")
                    age = stats["prediction_age_ms"]
                    data["live"].append({"servers": count, "in_flight": mode, "stats": stats})
                    live_rows.append(
                        [
                            count,
                            mode,
                            stats["prediction_rate"],
                            age["p50"],
                            age["p95"],
                            stats["request_latency_ms"]["p50"],
                            f"{stats['displayed_frames']}/{stats['source_frames']}",
                        ]
                    )
    section.tables.append(
        f"(a) `livecam annotate` with default settings, servers of {ANNOTATE_LATENCY_MS} ms per request\n\n"
        + table(
            [
                "servers",
                "slots",
                "combined capacity frames/s",
                "frames",
                "frames/s",
                "share of capacity",
                "CPU s",
                f"target >= {SHARE_TARGET:g}",
            ],
            rows,
        )
    )
    section.tables.append(
        f"(b) `livecam run --headless`, {LIVE_SOURCE}, {live_s:g} s, servers of {LIVE_LATENCY_MS} ms and "
        f"{LIVE_SLOTS} slots each\n\n"
        + table(
            ["servers", "--in-flight", "predictions/s", "age p50 ms", "age p95 ms", "request p50 ms", "shown/source"],
            live_rows,
        )
    )
    section.notes += [
        "Each server is `scripts/bench_support/latency_server.py` in its own process (model-free: N slots, "
        "a fixed time per request; more requests wait for a slot), so the servers do not share livecam's GIL.",
        "Combined capacity = sum of slots x 1000 / 200 ms. frames/s is livecam's own figure (frames written / "
        "time from first read to last write), so it includes the windows' learning from their first round trips.",
        "In-flight per server is learnt from its round trips (the default); a server with more slots gets more work.",
    ]
    section.data = data
    return section
