"""Benchmark 4: ``livecam serve`` through HTTP vs the same model called in-process."""

from __future__ import annotations

import base64
import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import cv2
import numpy as np
import requests

from bench_support.annotate import CONFIDENCE, IOU, MAX_DETECTIONS, decoded_frames
from bench_support.common import SAMPLES, Scale, Section, livecam_serve, percentile, ratio, table
from livecam.detector import detector_factory
from livecam.frames import Image

QUALITY = 80
HTTP_TARGET = 0.90
QUERY = {"confidence": "40", "overlap": "30", "format": "json"}


def bodies(frames: Sequence[Image]) -> list[bytes]:
    """The frames as the client sends them: JPEG q80, base64."""
    return [base64.b64encode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])[1].tobytes()) for f in frames]


def in_process(step: Callable[[int], object], count: int, seconds: float) -> dict[str, Any]:
    """Call ``step(i)`` for ``seconds`` (cycling over ``count`` inputs); rate and latency percentiles."""
    for i in range(min(3, count)):
        step(i)
    times: list[float] = []
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        step(i % count)
        times.append((time.perf_counter() - t) * 1000)
        i += 1
    elapsed = time.perf_counter() - started
    return {
        "per_s": len(times) / elapsed,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "calls": len(times),
    }


def over_http(url: str, payloads: Sequence[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads, each on its own keep-alive session, posting for ``seconds``."""
    endpoint = f"{url}/coco/1"
    stop = threading.Event()
    lock = threading.Lock()
    times: list[float] = []
    failures: list[int] = []
    warmed = threading.Barrier(clients + 1)

    def client(offset: int) -> None:
        with requests.Session() as session:
            session.post(endpoint, params=QUERY, data=payloads[offset % len(payloads)], timeout=30)
            warmed.wait(timeout=60)
            i = offset
            while not stop.is_set():
                t = time.perf_counter()
                response = session.post(
                    endpoint,
                    params=QUERY,
                    data=payloads[i % len(payloads)],
                    timeout=30,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                took = (time.perf_counter() - t) * 1000
                with lock:
                    if response.status_code == 200:
                        times.append(took)
                    else:
                        failures.append(response.status_code)
                i += clients

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    warmed.wait(timeout=60)
    started = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    with lock:
        done, elapsed = len(times), time.perf_counter() - started
        snapshot = list(times)
    for thread in threads:
        thread.join(timeout=30)
    return {
        "per_s": done / elapsed,
        "p50_ms": percentile(snapshot, 50),
        "p95_ms": percentile(snapshot, 95),
        "calls": done,
        "failed": len(failures),
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["per_s"] for r in runs]
    median = statistics.median_low(rates)
    return dict(runs[rates.index(median)])


def run(scale: Scale) -> Section:
    """Direct detect(), decode + detect, and HTTP (workers 1 and 2, 1 and 4 clients), in rounds."""
    seconds = {"tiny": 0.5, "quick": 3.0, "full": 8.0}[scale]
    frames = decoded_frames(SAMPLES / "bikes.mp4")[: {"tiny": 10, "quick": 60, "full": 250}[scale]]
    all_workers, all_clients = ((2,), (1,)) if scale == "tiny" else ((1, 2), (1, 4))
    payloads = bodies(frames)
    jpegs = [base64.b64decode(p) for p in payloads]
    detector = detector_factory()()

    def detect(i: int) -> object:
        return detector.detect(frames[i], CONFIDENCE, IOU, MAX_DETECTIONS)

    def decode_detect(i: int) -> object:
        image = cv2.imdecode(np.frombuffer(base64.b64decode(payloads[i]), np.uint8), cv2.IMREAD_COLOR)
        return detector.detect(cast(Image, image), CONFIDENCE, IOU, MAX_DETECTIONS)

    def decode_only(i: int) -> object:
        return cv2.imdecode(np.frombuffer(jpegs[i], np.uint8), cv2.IMREAD_COLOR)

    rounds = 3 if scale == "full" else 1
    samples: dict[str, list[dict[str, Any]]] = {}

    def record(key: str, result: dict[str, Any]) -> None:
        samples.setdefault(key, []).append(result)

    with contextlib.ExitStack() as servers:
        urls = {w: servers.enter_context(livecam_serve("--workers", str(w))) for w in all_workers}
        for _ in range(rounds):
            record("direct", in_process(detect, len(frames), seconds))
            record("decode_detect", in_process(decode_detect, len(frames), seconds))
            record("decode_only", in_process(decode_only, len(frames), min(seconds, 1.0)))
            for workers, url in urls.items():
                for clients in all_clients:
                    record(f"http_w{workers}_{clients}", over_http(url, payloads, clients, seconds))
    results: dict[str, Any] = {key: _median_run(runs) for key, runs in samples.items()}
    results["rounds"] = samples
    reference = results["direct"]["per_s"]
    rows: list[list[Any]] = []
    labels = [
        ("direct", "detect() in-process"),
        ("decode_detect", "base64 + JPEG decode + detect() in-process"),
        ("decode_only", "JPEG decode alone"),
        ("http_w1_1", "livecam serve --workers 1 over HTTP, 1 client"),
        ("http_w1_4", "livecam serve --workers 1 over HTTP, 4 clients"),
        ("http_w2_1", "livecam serve --workers 2 (default) over HTTP, 1 client"),
        ("http_w2_4", "livecam serve --workers 2 (default) over HTTP, 4 clients"),
    ]
    for key, label in labels:
        if key not in results:
            continue
        r = results[key]
        share = ratio(r["per_s"], reference) if key != "decode_only" else None
        met = "-" if not key.startswith("http") else ("yes" if (share or 0) >= HTTP_TARGET else "NO")
        rows.append([label, r["per_s"], r["p50_ms"], r["p95_ms"], share, met])
    section = Section("4. Server overhead")
    section.tables.append(table(["path", "per s", "p50 ms", "p95 ms", "share of direct", "target >= 90%"], rows))
    section.notes += [
        f"bikes.mp4 frames (640x272, what a client sends at --max-side 640), JPEG q{QUALITY}, base64; "
        f"{seconds:g} s per row. `livecam serve` runs as a separate process; the HTTP "
        "clients are threads of the benchmark process (requests, keep-alive), so on this 2-core machine "
        "they share the CPU with the server as a real local client would.",
        f"{rounds} round(s); each round measures every row in turn, and the table shows each row's median "
        "round (by rate), so load from elsewhere on the machine hits all rows alike. Both servers run for the "
        "whole benchmark (idle ones use no CPU: onnxruntime's threads do not spin).",
    ]
    results["reference_per_s"] = reference
    section.data = results
    return section
