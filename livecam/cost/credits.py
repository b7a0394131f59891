"""What calls cost on Roboflow's hosted API, by its published formula.

Roboflow bills serverless inference by compute time with a minimum per call:
``credits = max(processing time, 100 ms) / 500 000 ms`` (roboflow.com/pricing, "Serverless
Hosted API"). The processing time is the ``x-processing-time`` header of each answer (seconds),
which hosted Roboflow and the self-hosted ``inference`` server send; where it is missing the
100 ms minimum is counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

MIN_BILLED_S = 0.1
"""Every call is billed at least this much compute."""
SECONDS_PER_CREDIT = 500.0
"""Compute seconds per credit."""
PROCESSING_TIME_HEADER = "x-processing-time"


def credits_for(processing_s: float | None) -> float:
    """Credits one call costs: ``max(processing time, 100 ms) / 500 s``."""
    billed = MIN_BILLED_S if processing_s is None else max(processing_s, MIN_BILLED_S)
    return billed / SECONDS_PER_CREDIT


def processing_time(headers: Mapping[str, str]) -> float | None:
    """The ``x-processing-time`` of an answer in seconds, if present and sane."""
    raw = headers.get(PROCESSING_TIME_HEADER)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if 0.0 <= value < 3600.0 else None


def is_hosted(url: str) -> bool:
    """Whether ``url`` is Roboflow's hosted API (which bills per call)."""
    host = (urlsplit(url).hostname or "").lower()
    return host == "roboflow.com" or host.endswith(".roboflow.com")
