"""Nearest-rank percentiles of latency and age samples."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentiles(samples: Iterable[float], *points: float) -> list[float | None]:
    """Nearest-rank percentiles of ``samples`` (None for each when there are none)."""
    ordered = sorted(samples)
    if not ordered:
        return [None for _ in points]
    last = len(ordered) - 1
    return [ordered[min(last, max(0, math.ceil(p / 100 * len(ordered)) - 1))] for p in points]
