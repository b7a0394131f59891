"""The benchmark suite still runs: ``scripts/bench.py --tiny`` end to end, and the baseline's fields.

The figures of a tiny run mean nothing; only that every benchmark and the sequential baseline
complete and report what BENCHMARKS.md shows is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STATS_FIELDS = {
    "source_frames",
    "displayed_frames",
    "source_fps",
    "display_fps",
    "requests_sent",
    "responses_ok",
    "responses_failed",
    "prediction_rate",
    "request_latency_ms",
    "prediction_age_ms",
    "bytes_sent",
    "duration_s",
}


@pytest.mark.slow
def test_tiny_suite_runs_every_benchmark_and_the_baseline(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench.py"), "--tiny", "-o", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=480,  # a bound for a hung child, not a speed target: loaded CI machines take 4 min
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())
    markdown = (tmp_path / "bench.md").read_text()
    for title in (
        "1. Live display",
        "2. Annotation throughput",
        "3. JPEG encoder",
        "4. Server overhead",
        "5. Client cost",
        "Collecting frames for labelling",
        "6. Bundled model: backend, precision, threads",
        "Servers",
    ):
        assert f"## {title}" in markdown
    live_runs = {run["client"]: run for run in results["live"]["runs"]}
    baseline = live_runs["sequential baseline"]["stats"]
    assert baseline.keys() >= STATS_FIELDS
    assert baseline["responses_ok"] > 0 and baseline["displayed_frames"] > 0
    assert live_runs["livecam K=1"]["stats"]["displayed_frames"] > 0
    annotated = results["annotate"]["latency"]["bikes-6.avi"]
    assert annotated["baseline"]["frames"] == 6
    assert all(run["frames"] == 6 for run in annotated["livecam"].values())
    assert {"opencv", "turbojpeg"} & results["encoder"]["runs"][0].keys()
    assert results["server"]["http_w2_1"]["calls"] > 0 and results["server"]["http_w2_1"]["failed"] == 0
    assert [run["displayed"] > 0 for run in results["client-cost"]["runs"]] == [True, True]
    collect_runs = results["collect"]["runs"]
    assert [run["displayed"] > 0 for run in collect_runs] == [True, True, True]
    assert collect_runs[0]["collected"] is None and collect_runs[2]["collected"] >= 1
    overhead = results["server"]["overhead"]
    assert overhead["http_4"]["calls"] > 0 and overhead["http_4"]["failed"] == 0
    assert all(run["frames"] == 6 for run in results["server"]["annotate"].values())
    model_runs = results["model"]["runs"]
    assert {(r["backend"], r["precision"]) for r in model_runs} >= {("onnxruntime", "int8"), ("opencv", "fp32")}
    assert all(r["per_s"] > 0 and r["agreement_held_out"] is not None for r in model_runs)
    assert len(results["model"]["batching"]) == 4
    servers = results["servers"]
    assert [run["frames"] for run in servers["annotate"]] == [6, 10]
    assert [run["servers"] for run in servers["live"]] == [1, 3]
    assert all(
        run["stats"]["responses_ok"] > 0 and len(run["stats"]["servers"]) == run["servers"] for run in servers["live"]
    )
