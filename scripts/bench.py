#!/usr/bin/env python3
"""Benchmarks of livecam against Roboflow's sequential pattern; writes Markdown and JSON.

    python scripts/bench.py                       # every benchmark, full length (about 12 minutes)
    python scripts/bench.py --quick               # every benchmark, short runs (under 2 minutes)
    python scripts/bench.py live encoder -o out/  # chosen benchmarks

Benchmarks: live, annotate, encoder, server, client-cost, collect, model, servers, flood, motion, cost, cameras,
and ray (run only when named: it needs the ray extra); BENCHMARKS.md says what each measures and its
targets. Results go to OUT/bench.md and OUT/bench.json (default: bench-results/). The machine is
usually shared, so each benchmark reports ratios of runs made side by side.
"""

from __future__ import annotations

# isort: off
import checkout_venv  # noqa: F401  (first: it may start this script again under .venv/bin/python)

# isort: on
import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from bench_support import (
    annotate,
    cameras,
    client_cost,
    collect,
    cost,
    encoder,
    flood,
    live,
    model,
    motion,
    ray,
    server,
    servers,
    streams,
)
from bench_support.common import Scale, Section, machine, table

BENCHMARKS: dict[str, Callable[[Scale], Section]] = {
    "live": live.run,
    "annotate": annotate.run,
    "encoder": encoder.run,
    "server": server.run,
    "client-cost": client_cost.run,
    "collect": collect.run,
    "model": model.run,
    "servers": servers.run,
    "flood": flood.run,
    "motion": motion.run,
    "cost": cost.run,
    "ray": ray.run,
    "streams": streams.run,
    "cameras": cameras.run,
}
ON_REQUEST = frozenset({"ray"})
"""Run only when named (they need an extra installed)."""


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description="livecam benchmarks (see BENCHMARKS.md).")
    parser.add_argument(
        "benchmarks", nargs="*", metavar="NAME", help=f"which to run (default: all): {', '.join(BENCHMARKS)}"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--quick", action="store_true", help="short runs: the whole suite in under 2 minutes")
    length.add_argument(
        "--tiny",
        action="store_true",
        help="the smallest runs that exercise every path (a smoke test; the figures mean nothing)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("bench-results"),
        metavar="DIR",
        help="folder for bench.md and bench.json (default: bench-results)",
    )
    return parser


def machine_table(info: dict[str, object]) -> str:
    """The machine as a two-column Markdown table."""
    return table(["machine", ""], [[key, value] for key, value in info.items()])


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the Markdown, write OUT/bench.md and OUT/bench.json."""
    parser = build_parser()
    args = parser.parse_args(argv)
    names = args.benchmarks or [name for name in BENCHMARKS if name not in ON_REQUEST]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    if not args.output.is_dir():
        args.output.mkdir(parents=True)
    scale: Scale = "tiny" if args.tiny else "quick" if args.quick else "full"
    info = machine()
    started = time.perf_counter()
    header = (
        f"# livecam benchmarks ({scale}), "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC\n\n"
        f"Command: `python scripts/bench.py {' '.join(argv if argv is not None else sys.argv[1:])}`\n\n"
        f"{machine_table(info)}\n"
    )
    print(header, flush=True)
    parts = [header]
    results: dict[str, object] = {"machine": info, "scale": scale}
    for name in names:
        began = time.perf_counter()
        section = BENCHMARKS[name](scale)
        section.notes.append(f"This benchmark took {time.perf_counter() - began:.0f} s.")
        text = section.markdown()
        print(text, flush=True)
        parts.append(text)
        results[name] = section.data
    results["total_s"] = round(time.perf_counter() - started, 1)
    footer = f"Total: {results['total_s']} s.\n"
    print(footer)
    (args.output / "bench.md").write_text("\n".join([*parts, footer]), encoding="utf-8")
    (args.output / "bench.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
