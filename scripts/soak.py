#!/usr/bin/env python3
"""Soak test: ``livecam run`` against a flaky loopback API, watched from outside through /proc.

    .venv/bin/python scripts/soak.py --minutes 10 --json soak.json

It starts a seeded flaky Roboflow-format server in this process (random latency, 500s, 503s with
Retry-After, HTML 502s, resets, closed connections, not-JSON bodies and answers dripped past the
read timeout), runs ``python -m livecam run synthetic:WxH@FPS --headless`` against it as a child
process, and samples the child's resident memory, thread count and open descriptors every few
seconds. It prints a table and a verdict, writes everything as JSON, and exits 1 when, after the
warm-up, resident memory grew by more than ``--max-growth-mb`` or the thread count changed or the
descriptor count rose above its warm-up maximum.
"""

from __future__ import annotations

# isort: off
import checkout_venv  # noqa: F401  (first: it may start this script again under .venv/bin/python)

# isort: on
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from faults.probes import open_fds, os_threads, rss_kb  # noqa: E402
from faults.servers import FaultServer, Flaky  # noqa: E402

KEY = "soak-key-never-printed"


@dataclass(frozen=True)
class Sample:
    """One look at the child process."""

    t_s: float
    rss_mb: float
    threads: int
    fds: int
    requests: int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--source", default="synthetic:1280x720@60", help="livecam SOURCE (default 720p at 60 fps)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds before the baseline is taken (default 60, at most a fifth of the run)",
    )
    parser.add_argument("--in-flight", type=int, default=2, help="livecam --in-flight (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the flaky server (default 1)")
    parser.add_argument("--error-rate", type=float, default=0.2, help="fraction of faulty answers (default 0.2)")
    parser.add_argument("--max-growth-mb", type=float, default=10.0, help="allowed RSS growth (default 10)")
    parser.add_argument("--json", type=Path, default=Path("soak.json"), help="where to write the results")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable in livecam's environment, e.g. MALLOC_ARENA_MAX=2 (repeatable)",
    )
    return parser.parse_args(argv)


def sample(pid: int, started: float, server: FaultServer) -> Sample:
    return Sample(
        round(time.monotonic() - started, 1),
        round(rss_kb(pid) / 1024, 1),
        os_threads(pid),
        open_fds(pid),
        server.requests,
    )


def verdict(samples: list[Sample], warmup_s: float, max_growth_mb: float) -> list[str]:
    """Why the run failed; empty when it passed."""
    base = [s for s in samples if s.t_s <= warmup_s]
    rest = [s for s in samples if s.t_s > warmup_s]
    if not base or not rest:
        return ["too few samples: run longer or sample more often"]
    problems = []
    growth = max(s.rss_mb for s in rest) - base[-1].rss_mb
    if growth > max_growth_mb:
        problems.append(f"RSS grew {growth:.1f} MB after the warm-up (limit {max_growth_mb:g} MB)")
    threads = sorted({s.threads for s in rest})
    if len(threads) > 1:
        problems.append(f"thread count changed after the warm-up: {threads}")
    if max(s.fds for s in rest) > max(s.fds for s in base):
        problems.append(f"descriptors rose from at most {max(s.fds for s in base)} to {max(s.fds for s in rest)}")
    return problems


def child_env(assignments: list[str]) -> dict[str, str]:
    """This process's environment plus ``NAME=VALUE`` assignments."""
    env = dict(os.environ)
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--env {item!r}: write it as NAME=VALUE")
        env[name] = value
    return env


def run(args: argparse.Namespace) -> dict[str, Any]:
    duration = args.minutes * 60
    warmup = min(args.warmup, duration / 5)
    flaky = Flaky(seed=args.seed, error_rate=args.error_rate)
    samples: list[Sample] = []
    with FaultServer(flaky) as server, tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        command = [
            sys.executable,
            "-m",
            "livecam",
            "run",
            args.source,
            "--headless",
            "--duration",
            f"{duration:g}",
            "--api-url",
            server.url,
            "--model",
            "soak/1",
            "--api-key",
            KEY,
            "--timeout",
            "2",
            "--in-flight",
            str(args.in_flight),
            "--stats-json",
            str(stats_path),
            "-q",
        ]
        started = time.monotonic()
        child = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(args.env)
        )
        output: dict[str, str] = {}

        def collect() -> None:
            output.update(zip(("stdout", "stderr"), child.communicate(), strict=True))

        reader = threading.Thread(target=collect, name="soak-output", daemon=True)
        reader.start()
        print(f"{'t_s':>7} {'rss_mb':>8} {'threads':>7} {'fds':>5} {'requests':>9}", flush=True)
        while reader.is_alive():
            try:
                now = sample(child.pid, started, server)
            except (FileNotFoundError, ProcessLookupError, KeyError):
                break  # the child exited between samples
            samples.append(now)
            print(f"{now.t_s:7.1f} {now.rss_mb:8.1f} {now.threads:7d} {now.fds:5d} {now.requests:9d}", flush=True)
            reader.join(args.interval)
        reader.join(duration + 60)
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    problems = verdict(samples, warmup, args.max_growth_mb)
    if child.returncode != 0:
        problems.append(f"livecam exited {child.returncode}: {output.get('stderr', '')[-2000:]}")
    if KEY in output.get("stdout", "") + output.get("stderr", "") + json.dumps(stats):
        problems.append("the API key appeared in livecam's output")
    return {
        "command": " ".join(command).replace(KEY, "***"),
        "env": args.env,
        "minutes": args.minutes,
        "warmup_s": warmup,
        "server_answers": flaky.counts,
        "livecam_stats": stats,
        "samples": [asdict(s) for s in samples],
        "problems": problems,
        "passed": not problems,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    stats = result["livecam_stats"]
    if stats:
        print(
            f"\nlivecam: {stats['displayed_frames']} of {stats['source_frames']} frames shown "
            f"({stats['display_fps']} fps), {stats['requests_sent']} requests, {stats['responses_ok']} ok, "
            f"{stats['responses_failed']} failed {stats.get('errors')}"
        )
    print(f"server answers: {result['server_answers']}")
    print("PASS" if result["passed"] else "FAIL:\n  " + "\n  ".join(result["problems"]))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
