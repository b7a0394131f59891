"""Benchmark: what ``--collect`` costs ``livecam run`` at 1080p30 with every strategy on.

The same run three times against the model-free latency server: without ``--collect``; with
every strategy and the default limits; and with every answer saved (no rate limits, no
near-duplicate filter: the writer's worst case, where the bounded queue is the only brake).
Then the collector's own steps, timed in this process on a 1080p frame.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_support.common import PYTHON, Scale, Section, latency_server, ratio, read_json, run_child, table
from livecam.collect import CollectConfig, Collector
from livecam.collect.dedupe import fingerprint
from livecam.frames import Frame
from livecam.predictions import Prediction, Predictions
from livecam.sources import SyntheticSource

SOURCE = "synthetic:1920x1080@30"
LATENCY_MS = 50.0
DISPLAY_TARGET = 0.98
EVERY_STRATEGY = ["--collect-strategy", "all", "--collect-classes", "person"]
CASES: tuple[tuple[str, list[str] | None], ...] = (
    ("no --collect", None),
    ("every strategy, default limits", EVERY_STRATEGY),
    (
        "every answer saved (no rate limits, no near-duplicate filter)",
        [
            *EVERY_STRATEGY,
            "--collect-max-per-minute",
            "0",
            "--collect-max-per-hour",
            "0",
            "--collect-min-difference",
            "0",
            "--collect-max-total",
            "0",
        ],
    ),
)


def _command(url: str, duration: float, stats: Path, collect: Path | None, extra: list[str]) -> list[str]:
    command = [PYTHON, "-m", "livecam", "run", SOURCE, "--headless", "-q", "--api-url", url, "--model", "bench/1"]
    command += ["--duration", f"{duration:g}", "--stats-json", str(stats)]
    if collect is not None:
        command += ["--collect", str(collect), *extra]
    return command


def _median_ms(step: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def steps(repeats: int) -> dict[str, float]:
    """Median milliseconds of the collector's steps on 1080p frames (and the mean of a save)."""
    source = SyntheticSource(1920, 1080)
    frames = [source.frame(i * 40) for i in range(repeats)]
    person = Predictions(items=(Prediction(100, 100, 400, 700, 0.9, "person"),))
    timings: dict[str, float] = {"fingerprint": _median_ms(lambda: fingerprint(frames[0]), repeats)}
    with tempfile.TemporaryDirectory() as tmp:
        skip = Collector(CollectConfig(Path(tmp) / "skip", strategies=("low-confidence",)), source="b", model_id="b/1")
        skip.start()
        frame = Frame(0, frames[0], 0.0)
        timings["offer, not picked"] = _median_ms(lambda: skip.offer(frame, person), repeats)
        skip.close()
        every = CollectConfig(
            Path(tmp) / "all",
            strategies=("random",),
            random_share=1.0,
            max_per_minute=0,
            max_per_hour=0,
            min_difference=0.0,
            queue=repeats,
        )
        saver = Collector(every, source="b", model_id="b/1", rng=random.Random(1))
        saver.start()
        offers = []
        started = time.perf_counter()
        for seq, image in enumerate(frames):
            began = time.perf_counter()
            saver.offer(Frame(seq, image, float(seq)), person)
            offers.append((time.perf_counter() - began) * 1000)
        saver.close(timeout=120)
        total_ms = (time.perf_counter() - started) * 1000
        timings["offer, picked and queued"] = statistics.median(offers)
        saved = saver.summary().collected
        # The writer's side: hash, JPEG q95 of the full frame, three fsync'd files per item.
        timings["one save on the writer thread (mean)"] = total_ms / max(1, saved)
    return timings


def run(scale: Scale) -> Section:
    """The three runs one after another against one latency server, then the step timings."""
    duration = {"tiny": 1.5, "quick": 3.0, "full": 20.0}[scale]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, latency_server(LATENCY_MS, slots=8) as url:
        for index, (name, extra) in enumerate(CASES):
            stats_path = Path(tmp) / f"stats-{index}.json"
            folder = None if extra is None else Path(tmp) / f"collect-{index}"
            child = run_child(_command(url, duration, stats_path, folder, extra or []), timeout_s=duration + 90)
            stats = read_json(stats_path)
            results.append(_result(name, stats, child.cpu_s))
    base = results[0]["cpu_ms_per_frame"]
    for r in results:
        r["extra_cpu_ms_per_frame"] = round(r["cpu_ms_per_frame"] - base, 3)
    timings = steps({"tiny": 3, "quick": 10, "full": 30}[scale])
    section = Section("Collecting frames for labelling")
    section.tables.append(
        table(
            [
                "run",
                "display/source",
                "display >= 98%",
                "answers",
                "collected",
                "near-duplicates skipped",
                "over limits",
                "dropped",
                "CPU ms per source frame",
                "extra CPU ms per frame",
            ],
            [
                [
                    r["run"],
                    r["display_ratio"],
                    "yes" if r["display_met"] else "NO",
                    r["answers"],
                    r["collected"],
                    r["duplicates"],
                    r["limited"],
                    r["dropped"],
                    round(r["cpu_ms_per_frame"], 2),
                    r["extra_cpu_ms_per_frame"],
                ]
                for r in results
            ],
        )
    )
    section.tables.append(
        table(["collector step (1080p frame)", "µs"], [[k, round(v * 1000, 1)] for k, v in timings.items()])
    )
    section.notes += [
        f"`livecam run {SOURCE} --headless` for {duration:g} s against the model-free latency server "
        f"({LATENCY_MS:g} ms, `scripts/bench_support/latency_server.py`), which answers a person and a car on "
        "every frame, so `classes` (with `--collect-classes person`) picks every answer and the moving "
        "synthetic picture is what near-duplicate filtering sees.",
        "CPU per source frame is the child's user + system time divided by the frames it read; the extra is "
        "against the run without `--collect` in the same benchmark run.",
        "Step timings are medians in this process (a save: the mean over a queue of saves): `offer` is what "
        "the sender thread pays per answer; a save (hash, JPEG q95 of the full frame, three fsync'd files) "
        "runs on the collector's own thread.",
    ]
    section.data = {"duration_s": duration, "latency_ms": LATENCY_MS, "runs": results, "steps_ms": timings}
    return section


def _result(name: str, stats: dict[str, Any], cpu_s: float) -> dict[str, Any]:
    display_ratio = ratio(stats["displayed_frames"], stats["source_frames"]) or 0.0
    skipped = stats.get("collect_skipped", {})
    return {
        "run": name,
        "display_ratio": round(display_ratio, 3),
        "display_met": display_ratio >= DISPLAY_TARGET,
        "source_frames": stats["source_frames"],
        "displayed": stats["displayed_frames"],
        "answers": stats["responses_ok"],
        "collected": stats.get("collected"),
        "duplicates": skipped.get("duplicate"),
        "limited": skipped.get("limit"),
        "dropped": stats.get("collect_dropped"),
        "by_strategy": stats.get("collected_by_strategy"),
        "cpu_s": round(cpu_s, 3),
        "cpu_ms_per_frame": cpu_s * 1000 / max(1, stats["source_frames"]),
        "stats": stats,
    }
