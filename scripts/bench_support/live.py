"""Benchmark 1: the live display under API latency, livecam (in-flight 1 and 2) vs the baseline."""

from __future__ import annotations

import base64
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_support.common import PYTHON, SCRIPTS, Scale, Section, latency_server, ratio, read_json, run_child, table
from livecam.encode import fit_max_side, make_encoder
from livecam.sources import SyntheticSource

SOURCE = "synthetic:1280x720@30"
FPS = 30.0
MAX_SIDE, QUALITY = 640, 80
DISPLAY_TARGET = 0.98
AGE_SLACK_MS = 10.0
CLIENTS: tuple[tuple[str, int | str], ...] = (
    ("livecam K=1", 1),
    ("livecam K=2", 2),
    ("livecam auto", "auto"),
    ("sequential baseline", 0),
)
SLOTS = 32
"""Requests the latency server holds at once: it stands for network latency, not a busy model."""


def encode_ms(repeats: int = 30) -> float:
    """Median milliseconds to downsize, JPEG-encode and base64 one 1280x720 frame with the defaults."""
    frame = SyntheticSource(1280, 720).frame(10)
    encoder = make_encoder("auto")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        small, _ = fit_max_side(frame, MAX_SIDE)
        base64.b64encode(encoder.encode(small, QUALITY))
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _command(client: int | str, url: str, duration: float, stats: Path) -> list[str]:
    if client == 0:
        return [
            PYTHON,
            str(SCRIPTS / "sequential_baseline.py"),
            SOURCE,
            "--api-url",
            url,
            "--model",
            "bench/1",
            "--headless",
            "--duration",
            f"{duration:g}",
            "--stats-json",
            str(stats),
        ]
    return [
        PYTHON,
        "-m",
        "livecam",
        "run",
        SOURCE,
        "--headless",
        "-q",
        "--api-url",
        url,
        "--model",
        "bench/1",
        "--in-flight",
        str(client),
        "--duration",
        f"{duration:g}",
        "--stats-json",
        str(stats),
    ]


def run(scale: Scale) -> Section:
    """Each latency gets its own latency server; the three clients run one after another against it."""
    latencies = {"tiny": (50,), "quick": (0, 200), "full": (0, 50, 200, 1000)}[scale]
    duration = {"tiny": 1.5, "quick": 4.0, "full": 15.0}[scale]
    clients = CLIENTS[::3] if scale == "tiny" else CLIENTS
    encode = encode_ms()
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for latency in latencies:
            with latency_server(latency, slots=SLOTS) as url:
                for name, client in clients:
                    path = Path(tmp) / f"live-{latency}-{client}.json"
                    child = run_child(_command(client, url, duration, path), timeout_s=duration + 60)
                    stats = read_json(path)
                    results.append(_result(name, client, latency, encode, stats, child.cpu_s))
    for r in results:
        rows.append(
            [
                r["latency_ms"],
                r["client"],
                r["display_ratio"],
                r["display_fps"],
                r["prediction_rate"],
                r["age_p50"],
                r["age_p95"],
                r["latency_p50"],
                r["latency_p95"],
                r["age_bound_ms"],
                r["arrival_age_ms"],
                "yes" if r["display_met"] else "NO",
                "yes" if r["age_met"] else "NO",
                "yes" if r["arrival_met"] else "NO",
            ]
        )
    section = Section("1. Live display under API latency")
    section.tables.append(
        table(
            [
                "server latency ms",
                "client",
                "display/source",
                "display fps",
                "predictions/s",
                "age p50 ms",
                "age p95 ms",
                "request p50 ms",
                "request p95 ms",
                "age bound ms",
                "age at arrival ms (est.)",
                "display >= 98%",
                "age p50 <= bound",
                "arrival age <= bound",
            ],
            rows,
        )
    )
    section.notes += [
        f"Source {SOURCE}, {duration:g} s per run, `livecam run --headless` and "
        "`scripts/sequential_baseline.py --headless` against the model-free latency server "
        f"(`scripts/bench_support/latency_server.py`, {SLOTS} slots) in its own process.",
        f"Age bound = server latency + encode ({encode:.1f} ms: downsize to {MAX_SIDE}, JPEG q{QUALITY}, base64) "
        f"+ one frame interval ({1000 / FPS:.1f} ms) + {AGE_SLACK_MS:g} ms.",
        "Prediction age is measured when a frame is displayed (ARCHITECTURE.md), so between two answers the "
        "shown boxes keep ageing: its median is about the age at arrival plus half the interval between "
        "answers. 'Age at arrival (est.)' = age p50 - half the mean interval between answers "
        "(500 / predictions per second); the baseline shows each answer once, so its age p50 is its age at "
        "arrival. The bound is about the age at arrival.",
    ]
    section.data = {"encode_ms": encode, "duration_s": duration, "runs": results}
    return section


def _result(
    name: str, client: int | str, latency: float, encode: float, stats: dict[str, Any], cpu_s: float
) -> dict[str, Any]:
    display_ratio = ratio(stats["displayed_frames"], stats["source_frames"]) or 0.0
    bound = latency + encode + 1000 / FPS + AGE_SLACK_MS
    age50 = stats["prediction_age_ms"]["p50"]
    rate = stats["prediction_rate"]
    # Every frame the baseline shows carries its own, just-arrived answer.
    sawtooth = 0.0 if client == 0 or not rate else 500 / rate
    arrival = None if age50 is None else age50 - sawtooth
    return {
        "client": name,
        "in_flight": client or None,
        "latency_ms": latency,
        "display_ratio": round(display_ratio, 3),
        "display_fps": stats["display_fps"],
        "source_fps": stats["source_fps"],
        "prediction_rate": rate,
        "age_p50": age50,
        "age_p95": stats["prediction_age_ms"]["p95"],
        "latency_p50": stats["request_latency_ms"]["p50"],
        "latency_p95": stats["request_latency_ms"]["p95"],
        "age_bound_ms": round(bound, 1),
        "arrival_age_ms": None if arrival is None else round(arrival, 1),
        "display_met": display_ratio >= DISPLAY_TARGET,
        "age_met": age50 is not None and age50 <= bound,
        "arrival_met": arrival is not None and arrival <= bound,
        "cpu_s": round(cpu_s, 2),
        "stats": stats,
    }
