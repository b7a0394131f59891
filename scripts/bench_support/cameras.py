"""Benchmark: several cameras in one ``livecam run``. N = 1, 2, 4 (and 9) sources against a
fixed-capacity loopback server and against the embedded model: per-camera frames shown, answers
per camera (fairness: min/max), CPU per frame per camera, peak memory; and ``annotate`` of 1 vs 4 files."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench_support import camera_outage
from bench_support.common import PYTHON, REPO, SAMPLES, Scale, Section, latency_server, read_json, table
from bench_support.peak import measured, peak_mb
from bench_support.ray import files_at_once

FOOTAGE = str(SAMPLES / "bikes.mp4")
"""640x272 at 25 fps, 10 s: every run is shorter, so no camera ends early."""
SYNTHETIC = "synthetic:320x240@15"
SERVER_LATENCY_MS, SERVER_SLOTS = 100, 2
"""The loopback server: 2 requests at once, 100 ms each, so 20 answers/s for all cameras together."""
SHOWN_TARGET = 0.98
FAIRNESS_TARGET = 0.2
"""Every camera's answers within this share of the mean answers per camera while the server is the bottleneck."""


def measured_run(command: Sequence[str], timeout_s: float) -> tuple[float, float]:
    """Run ``command``; (CPU seconds of it and the children it waited for, its peak RSS in MB)."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(measured(command), stdout=subprocess.DEVNULL, stderr=errors, cwd=REPO)
        timer = threading.Timer(timeout_s, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN
        finally:
            timer.cancel()
        process.returncode = code = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        text, peak = peak_mb(errors.read().decode(errors="replace"))
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited {code}:\n{text[-2000:]}")
    return usage.ru_utime + usage.ru_stime, peak if peak != float("inf") else float("nan")


def camera_run(sources: Sequence[str], api: Sequence[str], seconds: float, stats: Path) -> dict[str, Any]:
    """``livecam run --headless`` of ``sources``; its statistics with the CPU and memory it took."""
    command = [PYTHON, "-m", "livecam", "run", *sources, "--headless", "-q", *api, "--duration", f"{seconds:g}"]
    cpu_s, rss_mb = measured_run([*command, "--stats-json", str(stats)], timeout_s=seconds + 120)
    data = read_json(stats)
    data["cpu_s"], data["rss_mb"] = cpu_s, rss_mb
    return data


def row(label: str, count: int, stats: dict[str, Any]) -> list[Any]:
    """One table row: how much of each camera's video was shown, answers per camera, costs."""
    cameras = stats.get("cameras") or [stats]
    shown = [c["displayed_frames"] / c["source_frames"] for c in cameras if c["source_frames"]]
    answers = [c["responses_ok"] for c in cameras]
    frames = sum(c["source_frames"] for c in cameras)
    mean = sum(answers) / len(answers)
    spread = max(abs(a - mean) for a in answers) / mean if mean else None
    return [
        label,
        count,
        round(min(shown), 3) if shown else None,
        f"{min(answers)} / {max(answers)}",
        round(min(answers) / max(answers), 2) if max(answers) else None,
        None if spread is None else f"{spread:.0%}",
        round(stats["prediction_rate"], 1),
        round(stats["cpu_s"] * 1000 / frames, 1) if frames else None,
        round(stats["rss_mb"]),
        "yes" if shown and min(shown) >= SHOWN_TARGET else "NO",
    ]


def run(scale: Scale) -> Section:
    """N cameras against the loopback server, then against the embedded model."""
    seconds = {"tiny": 1.5, "quick": 4.0, "full": 9.0}[scale]
    counts = {"tiny": (2,), "quick": (1, 2, 4), "full": (1, 2, 4, 9)}[scale]
    kinds = (("footage", FOOTAGE),) if scale == "tiny" else (("footage", FOOTAGE), ("synthetic", SYNTHETIC))
    embedded_counts = {"tiny": (2,), "quick": (1, 2), "full": (1, 2, 4)}[scale]
    section = Section("Cameras")
    rows: list[list[Any]] = []
    data: dict[str, Any] = {"server": [], "embedded": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with latency_server(SERVER_LATENCY_MS, SERVER_SLOTS) as url:
            api = ["--api-url", url, "--model", "bench/1", "--in-flight", str(SERVER_SLOTS)]
            for kind, source in kinds:
                for count in counts:
                    stats = camera_run([source] * count, api, seconds, tmp / f"server-{kind}-{count}.json")
                    data["server"].append({"sources": kind, "count": count, "stats": stats})
                    rows.append(row(f"server, {kind}", count, stats))
        for count in embedded_counts:
            stats = camera_run([FOOTAGE] * count, [], seconds, tmp / f"embedded-{count}.json")
            data["embedded"].append({"count": count, "stats": stats})
            rows.append(row("embedded model, footage", count, stats))
    section.tables.append(
        f"`livecam run SRC x N --headless --duration {seconds:g}`; footage = {Path(FOOTAGE).name} (640x272 at "
        f"25 fps), synthetic = {SYNTHETIC}; server = a loopback server of {SERVER_SLOTS} slots x "
        f"{SERVER_LATENCY_MS} ms (20 answers/s in all) with --in-flight {SERVER_SLOTS}; embedded = the bundled "
        "model in its own process\n\n"
        + table(
            [
                "servers",
                "cameras",
                "least shown/source",
                "answers per camera min / max",
                "min/max",
                "farthest from the mean",
                "answers/s (all)",
                "CPU ms per frame",
                "peak RSS MB",
                f"shown >= {SHOWN_TARGET:g}",
            ],
            rows,
        )
    )
    section.notes.append(
        "CPU is the run's process and the children it waited for (the embedded server's process included), "
        "per source frame of all cameras; peak RSS is the largest of those processes."
    )
    section.notes.append(
        f"Fairness target: every camera's answers within {FAIRNESS_TARGET:.0%} of the mean while the server is the "
        "bottleneck (the server rows; the embedded model is shared with the cameras' own work on the same 2 cores)."
    )
    if scale != "tiny":
        outage_table, data["outage"] = outage(seconds)
        section.tables.append(outage_table)
    files_table, data["annotate_files"] = files_at_once(scale)
    section.tables.append(files_table)
    section.data = data
    return section


def outage(seconds: float) -> tuple[str, dict[str, Any]]:
    """Four RTSP cameras, one killed and brought back: the table and its figures."""
    missing = camera_outage.missing_tools()
    if missing:
        return f"(camera outage not measured: missing {', '.join(missing)})", {}
    result = camera_outage.measure(seconds)
    killed = camera_outage.KILLED + 1
    back, gone = (_seconds(result.get(key)) for key in ("back_s", "banner_gone_s"))
    return (
        f"Four RTSP cameras of {Path(FOOTAGE).name} on loopback, the same server ({SERVER_SLOTS} slots x "
        f"{SERVER_LATENCY_MS} ms); camera {killed}'s RTSP server killed, then started again; windows of "
        f"{seconds:g} s after one second of play. Camera {killed} came back {back} s after its server's restart "
        f"(target <= {camera_outage.RETURN_TARGET_S:g} s); its banner went {gone} s after that.\n\n"
        + table(camera_outage.HEADERS, camera_outage.rows(result))
    ), result


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
