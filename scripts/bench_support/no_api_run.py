"""``livecam run --headless`` without any API: the live pipeline showing the source alone.

    python scripts/bench_support/no_api_run.py synthetic:1280x720@30 --duration 10 --stats-json out.json

It is the baseline of the client-cost benchmark: the same capture, drawing and display loop
as ``livecam run --headless``, with no frame encoded or sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from livecam.display import HeadlessDisplay
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.live.stats import write_json
from livecam.sources import open_source


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline with no API for ``--duration`` seconds and write its statistics."""
    parser = argparse.ArgumentParser(description="The live pipeline with no detection API.")
    parser.add_argument("source", metavar="SOURCE")
    parser.add_argument("--duration", type=float, required=True, metavar="S")
    parser.add_argument("--stats-json", type=Path, required=True, metavar="PATH")
    args = parser.parse_args(argv)
    with LivePipeline(open_source(args.source), None, HeadlessDisplay(), LiveConfig(duration=args.duration)) as pipe:
        stats = pipe.run().to_json()
    write_json(args.stats_json, stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
