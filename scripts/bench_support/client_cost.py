"""Benchmark 5: CPU seconds per displayed frame of ``livecam run --headless``, with and without an API."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench_support.common import PYTHON, SCRIPTS, Scale, Section, latency_server, read_json, run_child, table

SOURCE = "synthetic:1280x720@30"


def _measure(command: list[str], stats_path: Path, duration: float) -> dict[str, Any]:
    child = run_child(command, timeout_s=duration + 60)
    stats = read_json(stats_path)
    shown = stats["displayed_frames"] or 1
    return {
        "cpu_s": round(child.cpu_s, 3),
        "wall_s": round(child.wall_s, 2),
        "displayed": stats["displayed_frames"],
        "source_frames": stats["source_frames"],
        "requests": stats.get("responses_ok", 0),
        "cpu_ms_per_frame": child.cpu_s * 1000 / shown,
        "stats": stats,
    }


def run(scale: Scale) -> Section:
    """No API; then the API answering after 200 ms (in-flight 1 and 2) and at once (in-flight 1)."""
    duration = {"tiny": 1.5, "quick": 5.0, "full": 15.0}[scale]
    cases: list[tuple[str, float | None, int]] = [
        ("no API (LivePipeline with api=None)", None, 0),
        ("API 200 ms, in-flight 1", 200.0, 1),
    ]
    if scale != "tiny":
        cases.append(("API 0 ms, in-flight 1", 0.0, 1))
    if scale == "full":
        cases.insert(2, ("API 200 ms, in-flight 2", 200.0, 2))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, latency, in_flight in cases:
            path = Path(tmp) / "stats.json"
            if latency is None:
                command = [
                    PYTHON,
                    str(SCRIPTS / "bench_support" / "no_api_run.py"),
                    SOURCE,
                    "--duration",
                    f"{duration:g}",
                    "--stats-json",
                    str(path),
                ]
                results.append({"case": name, **_measure(command, path, duration)})
                continue
            with latency_server(latency, slots=8) as url:
                command = [
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
                    str(in_flight),
                    "--duration",
                    f"{duration:g}",
                    "--stats-json",
                    str(path),
                ]
                results.append({"case": name, **_measure(command, path, duration)})
    base = results[0]
    rows = []
    for r in results:
        extra = r["cpu_s"] - base["cpu_s"]
        per_request = extra * 1000 / r["requests"] if r["requests"] else None
        r["extra_cpu_ms_per_request"] = per_request
        rows.append(
            [
                r["case"],
                r["displayed"],
                r["source_frames"],
                r["requests"],
                r["cpu_s"],
                r["cpu_ms_per_frame"],
                r["cpu_ms_per_frame"] / base["cpu_ms_per_frame"],
                per_request,
            ]
        )
    section = Section("5. Client cost")
    section.tables.append(
        table(
            [
                "run",
                "frames shown",
                "source frames",
                "answers",
                "CPU s (process)",
                "CPU ms / shown frame",
                "x no API",
                "extra CPU ms / answer",
            ],
            rows,
        )
    )
    section.notes += [
        f"{SOURCE}, {duration:g} s of display per run; CPU = user + system seconds of the whole child process "
        "(RUSAGE_CHILDREN), so interpreter start-up and imports (the same in every row) are included.",
        "The API is the model-free latency server in its own process; its CPU is not counted.",
        "'extra CPU ms / answer' = (CPU of the run - CPU of the no-API run) / answers: the cost of "
        "downsizing, encoding, sending and parsing one request, plus drawing its boxes.",
    ]
    section.data = {"duration_s": duration, "runs": results}
    return section
