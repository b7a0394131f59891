"""Benchmark: ``--max-requests-per-minute``: are the calls within the budget in every minute, and even?

``livecam run`` of a moving synthetic source against a loopback server (200 ms an answer) that
notes when each request arrives, on the machine's monotonic clock. Every window of 60 s that
starts at a call is counted, and the gaps between calls are summarised.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_support.common import PYTHON, Scale, read_json, run_child, table
from bench_support.latency_server import LatencyServer, Reply, two_boxes

PER_MINUTE = 30
LATENCY_MS = 200
SOURCE = "synthetic:320x240@25"
WINDOW_S = 60.0


def most_in_a_window(times: list[float], window_s: float = WINDOW_S) -> int:
    """The most calls in any ``window_s`` window (the busiest starts at a call)."""
    times = sorted(times)
    most, end = 0, 0
    for start, at in enumerate(times):
        while end < len(times) and times[end] < at + window_s:
            end += 1
        most = max(most, end - start)
    return most


def measure(seconds: float) -> dict[str, Any]:
    """One run of ``seconds`` with a budget of :data:`PER_MINUTE`; when its calls arrived, and its stats."""
    arrivals: list[float] = []

    def respond(body: bytes, latency_s: float) -> Reply:
        arrivals.append(time.monotonic())
        return two_boxes(body, latency_s)

    stop = threading.Event()
    server = LatencyServer(0, LATENCY_MS / 1000, 4, stop, respond)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        command = [PYTHON, "-m", "livecam", "run", SOURCE, "--headless", "-q", "--model", "bench/1"]
        command += ["--api-url", f"http://127.0.0.1:{server.server_address[1]}", "--duration", f"{seconds:g}"]
        command += ["--max-requests-per-minute", str(PER_MINUTE), "--stats-json", str(stats_path)]
        try:
            run_child(command, timeout_s=seconds + 120)
        finally:
            stop.set()
            server.shutdown()
            server.server_close()
            thread.join(5)
        stats = read_json(stats_path)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return {
        "seconds": seconds,
        "calls": len(arrivals),
        "most_in_60_s": most_in_a_window(arrivals),
        "gap_s": {
            "min": min(gaps, default=None),
            "p50": statistics.median(gaps) if gaps else None,
            "max": max(gaps, default=None),
        },
        "skipped": stats.get("requests_skipped"),
        "requests_per_minute": stats.get("requests_per_minute"),
    }


def run(scale: Scale) -> tuple[str, dict[str, Any]]:
    """The table for a run of 75 s (quick) or 150 s (full)."""
    seconds = 150.0 if scale == "full" else 75.0
    result = measure(seconds)
    gap = result["gap_s"]
    skipped = result["skipped"] or {}
    return (
        f"(d) `livecam run {SOURCE} --headless --max-requests-per-minute {PER_MINUTE} --duration {seconds:g}` "
        f"against a loopback server of {LATENCY_MS} ms; every 60 s window starting at a call counted, "
        "call times taken at the server\n\n"
        + table(
            ["calls", "most in any 60 s", "budget", "gap min s", "gap median s", "gap max s", "frames held back"],
            [
                [
                    result["calls"],
                    result["most_in_60_s"],
                    PER_MINUTE,
                    gap["min"],
                    gap["p50"],
                    gap["max"],
                    skipped.get("budget"),
                ]
            ],
        )
    ), result
