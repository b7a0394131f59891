"""Benchmark: the display under heavy answers, livecam now vs the package at the branch point.

Loopback servers (each in its own process) answer every request at once with (a) 12 000 boxes,
(b) 300 boxes with 500-point polygons, (c) 300 plain boxes; ``livecam run --headless`` shows a
720p30 source against each with ``--in-flight 1``, ``4`` and ``auto``. The same rows then run
against the embedded server with the bundled model at 1080p60. "before" is the package as it was
at commit ``BASELINE_COMMIT``, taken with ``git archive`` into a temporary folder and run from
there in the same benchmark run, side by side with "after" (this tree).

    python scripts/bench_support/flood.py --serve boxes-12000   # the server alone: prints "PORT n"
"""

from __future__ import annotations

import argparse
import io
import json
import math
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

BASELINE_COMMIT = "b276037"
DISPLAY_TARGET = 0.98
SIZE = (640, 360)
"""The image the client sends for a 720p frame (downsized to --max-side 640)."""
ANSWERS = {
    "boxes-12000": "(a) 12 000 boxes",
    "polygons-300x500": "(b) 300 boxes, 500-point polygons",
    "boxes-300": "(c) 300 boxes",
}
IN_FLIGHT = ("1", "4", "auto")


def answer_body(kind: str, width: int = SIZE[0], height: int = SIZE[1]) -> bytes:
    """The JSON answer a flood server sends for ``kind``."""
    count = 12_000 if kind == "boxes-12000" else 300
    vertices = 500 if kind == "polygons-300x500" else 0
    predictions = []
    for i in range(count):
        x, y = 12 + (i * 37) % (width - 24), 12 + (i * 53) % (height - 24)
        entry: dict[str, Any] = {
            "x": x,
            "y": y,
            "width": 20,
            "height": 20,
            "confidence": round(0.5 + (i % 50) / 100, 4),
            "class": f"class{i % 7}",
            "class_id": i % 7,
            "detection_id": f"{i:08x}-0000-4000-8000-000000000000",
        }
        if vertices:
            entry["points"] = [
                {
                    "x": round(x + 10 * math.cos(2 * math.pi * j / vertices), 1),
                    "y": round(y + 10 * math.sin(2 * math.pi * j / vertices), 1),
                }
                for j in range(vertices)
            ]
        predictions.append(entry)
    return json.dumps({"time": 0.01, "image": {"width": width, "height": height}, "predictions": predictions}).encode()


class FloodServer(ThreadingHTTPServer):
    """Answers every POST at once with the same prepared body."""

    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        self.body = body
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FloodServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)


def serve(kind: str) -> int:
    """Serve ``kind`` until SIGTERM/SIGINT, printing ``PORT n`` first."""
    stop = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    server = FloodServer(answer_body(kind))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"PORT {server.server_address[1]}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    return 0


# -- the benchmark (bench_support.common is imported only when run as a benchmark) ------------


@contextmanager
def baseline_tree(commit: str = BASELINE_COMMIT) -> Iterator[Path]:
    """The package at ``commit``, unpacked into a temporary folder (``git archive``)."""
    from bench_support.common import REPO

    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "livecam"], cwd=REPO, capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="livecam-before-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp)


def _command(
    version: Path | None, source: str, url: str | None, in_flight: str, duration: float, stats: Path
) -> list[str]:
    from bench_support.common import PYTHON

    # Run from the unpacked folder: from this tree, `python -m` would find this tree's package first.
    env = [] if version is None else ["env", "-C", str(version), f"PYTHONPATH={version}"]
    api = [] if url is None else ["--api-url", url, "--model", "bench/1"]
    return [
        *env,
        PYTHON,
        "-m",
        "livecam",
        "run",
        source,
        "--headless",
        "-q",
        *api,
        "--in-flight",
        in_flight,
        "--duration",
        f"{duration:g}",
        "--stats-json",
        str(stats),
    ]


def _row(answer: str, in_flight: str, version: str, stats: dict[str, Any], cpu_s: float) -> dict[str, Any]:
    answers = stats["responses_ok"]
    duration = stats["duration_s"] or 1.0
    shown = stats["displayed_frames"] / stats["source_frames"] if stats["source_frames"] else 0.0
    return {
        "answer": answer,
        "in_flight": in_flight,
        "version": version,
        "display_ratio": round(shown, 3),
        "display_fps": stats["display_fps"],
        "answers_per_s": round(answers / duration, 1),
        "cpu_ms_per_answer": round(cpu_s * 1000 / answers, 1) if answers else None,
        "cpu_percent": round(100 * cpu_s / duration),
        "latency_p50_ms": stats["request_latency_ms"]["p50"],
        "errors": stats["errors"],
        "met": shown >= DISPLAY_TARGET,
    }


def parse_costs(repeats: int) -> list[list[Any]]:
    """Per answer kind: median ms to decode with json and orjson, to parse in-process, and the worker's
    round trip with the calling thread's CPU during it (what the display's process still pays)."""
    import statistics
    import time

    import orjson

    from livecam.parsing import AnswerParser, parse_body

    rows: list[list[Any]] = []
    with AnswerParser() as parser:
        for kind, name in ANSWERS.items():
            body = answer_body(kind)
            parser.parse(body, SIZE)  # starts the worker
            timings: dict[str, list[float]] = {"json": [], "orjson": [], "inline": [], "worker": [], "cpu": []}
            for _ in range(repeats):
                for label, call in (
                    ("json", lambda b=body: json.loads(b)),
                    ("orjson", lambda b=body: orjson.loads(b)),
                    ("inline", lambda b=body: parse_body(b, SIZE)),
                ):
                    started = time.perf_counter()
                    call()
                    timings[label].append((time.perf_counter() - started) * 1000)
                started, cpu = time.perf_counter(), time.thread_time()
                parser.parse(body, SIZE)
                timings["worker"].append((time.perf_counter() - started) * 1000)
                timings["cpu"].append((time.thread_time() - cpu) * 1000)
            medians = [statistics.median(timings[k]) for k in ("json", "orjson", "inline", "worker", "cpu")]
            rows.append([name, round(len(body) / 1024), *medians])
    return rows


_DRAW_SCRIPT = """
import json, statistics, sys, time
sys.path.insert(0, {support!r})
import numpy as np
from flood import ANSWERS, answer_body
from livecam.overlay import draw_predictions
from livecam.predictions import Predictions
try:
    from livecam.overlay import PredictionPainter
except ImportError:  # before: every frame drawn afresh
    PredictionPainter = None


def median_ms(draw, predictions, image):
    draw(image.copy(), predictions)
    times = []
    for _ in range({repeats}):
        canvas = image.copy()
        started = time.perf_counter()
        draw(canvas, predictions)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


out = {{}}
for kind in ANSWERS:
    predictions = Predictions.from_roboflow(json.loads(answer_body(kind)), (640, 360)).scaled(2, 2)
    image = np.zeros((720, 1280, 3), np.uint8)
    first = median_ms(lambda canvas, p: draw_predictions(canvas, p), predictions, image)
    again = first if PredictionPainter is None else median_ms(PredictionPainter().draw, predictions, image)
    out[kind] = {{"first": first, "again": again}}
print(json.dumps(out))
"""


def draw_costs(before: Path, repeats: int) -> dict[str, dict[str, dict[str, float]]]:
    """Median ms to draw each answer (scaled to 1280x720) on one frame, per version, each in its own process."""
    from bench_support.common import PYTHON, REPO

    script = _DRAW_SCRIPT.format(support=str(Path(__file__).resolve().parent), repeats=repeats)
    found: dict[str, dict[str, dict[str, float]]] = {}
    for version, where in (("before", before), ("after", REPO)):
        done = subprocess.run(
            ["env", "-C", str(where), f"PYTHONPATH={where}", PYTHON, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        found[version] = json.loads(done.stdout)
    return found


def plan(scale: str) -> tuple[float, list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(seconds per run, flood rows as (answer, in-flight, version), embedded rows as (in-flight, version))."""
    both = ("before", "after")
    if scale == "tiny":
        return 1.5, [("boxes-300", "1", "after")], [("1", "after")]
    if scale == "quick":
        rows = [("boxes-12000", "auto", v) for v in both]
        rows += [("polygons-300x500", "auto", "after"), ("boxes-300", "auto", "after")]
        return 4.0, rows, [("auto", "after")]
    rows = [(a, k, v) for a in ANSWERS for k in IN_FLIGHT for v in both]
    return 15.0, rows, [(k, v) for k in IN_FLIGHT for v in both]


def run(scale: Any) -> Any:
    """Every row of :func:`plan`; each server in its own process, one client at a time."""
    from bench_support.common import PYTHON, Section, read_json, run_child, serving, table

    duration, rows, embedded = plan(scale)
    costs = parse_costs({"tiny": 1, "quick": 3, "full": 9}[scale])
    results: list[dict[str, Any]] = []
    with baseline_tree() as before, tempfile.TemporaryDirectory() as tmp:
        drawing = draw_costs(before, {"tiny": 1, "quick": 3, "full": 9}[scale])
        versions: dict[str, Path | None] = {"before": before, "after": None}
        for kind in dict.fromkeys(a for a, _, _ in rows):
            with serving([PYTHON, str(Path(__file__).resolve()), "--serve", kind]) as url:
                for answer, in_flight, version in rows:
                    if answer != kind:
                        continue
                    path = Path(tmp) / f"{kind}-{in_flight}-{version}.json"
                    command = _command(versions[version], "synthetic:1280x720@30", url, in_flight, duration, path)
                    child = run_child(command, timeout_s=duration + 90)
                    results.append(_row(ANSWERS[kind], in_flight, version, read_json(path), child.cpu_s))
        for in_flight, version in embedded:
            path = Path(tmp) / f"embedded-{in_flight}-{version}.json"
            command = _command(versions[version], "synthetic:1920x1080@60", None, in_flight, duration, path)
            child = run_child(command, timeout_s=duration + 120)
            results.append(_row("embedded server, 1080p60", in_flight, version, read_json(path), child.cpu_s))
    section = Section("Flood")
    section.tables.append(
        table(
            [
                "answer",
                "in-flight",
                "version",
                "display/source",
                "display fps",
                "answers/s",
                "client CPU ms/answer",
                "client CPU %",
                "request p50 ms",
                "display >= 98%",
            ],
            [
                [
                    r["answer"],
                    r["in_flight"],
                    r["version"],
                    r["display_ratio"],
                    r["display_fps"],
                    r["answers_per_s"],
                    r["cpu_ms_per_answer"],
                    r["cpu_percent"],
                    r["latency_p50_ms"],
                    "yes" if r["met"] else "NO",
                ]
                for r in results
            ],
        )
    )
    section.tables.append(
        table(
            [
                "answer",
                "KB",
                "json.loads ms",
                "orjson.loads ms",
                "parse in-process ms",
                "parse in the worker ms (round trip)",
                "calling thread CPU ms",
            ],
            costs,
        )
    )
    section.tables.append(
        table(
            [
                "answer (drawn on a 1280x720 frame)",
                "draw ms before",
                "draw ms after, each frame",
                "draw ms after, an answer's first frame",
            ],
            [
                [ANSWERS[k], drawing["before"][k]["again"], drawing["after"][k]["again"], drawing["after"][k]["first"]]
                for k in ANSWERS
            ],
        )
    )
    section.notes += [
        f"`livecam run --headless` for {duration:g} s per row against loopback servers in their own process "
        "(`scripts/bench_support/flood.py --serve KIND`) answering at once; the embedded-server rows run "
        "`livecam run synthetic:1920x1080@60` with no API, so the bundled model answers.",
        f"'before' is the package at commit {BASELINE_COMMIT} (`git archive` into a temporary folder, run with "
        "PYTHONPATH pointing there) in the same run as 'after' (this tree).",
        "Client CPU is user + system time of the `livecam` process and its children (the parse worker; in the "
        "embedded rows also the model), per answer received.",
    ]
    section.notes.append(
        "Second table: medians in the benchmark's own process; 'parse in-process' is decode + validation "
        "(`livecam.parsing.parse_body`), the worker's round trip includes the pipes and rebuilding the result."
    )
    section.notes.append(
        "Third table: median time to draw each answer scaled to the 720p frame, each version in its own "
        "process. 'Each frame' is what the display loop pays while an answer stays the newest (after: a "
        "`PredictionPainter` reusing the answer's layout); 'first frame' lays the answer out too "
        "(`draw_predictions`)."
    )
    section.data = {"duration_s": duration, "rows": results, "parse_costs": costs, "draw_ms": drawing}
    return section


def main(argv: Sequence[str] | None = None) -> int:
    """``--serve KIND``: run one flood server (the benchmark itself runs from ``scripts/bench.py flood``)."""
    parser = argparse.ArgumentParser(description="A loopback server answering at once with a heavy answer.")
    parser.add_argument("--serve", choices=list(ANSWERS), required=True)
    return serve(parser.parse_args(argv).serve)


if __name__ == "__main__":
    sys.exit(main())
