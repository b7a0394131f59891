"""``--send``, ``--refresh`` and ``--max-requests-per-minute`` as a :class:`SendPolicy`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from livecam.cli.options import MAX_REQUESTS, REFRESH, SEND, SEND_OPTIONS, Option, given_values
from livecam.cost.credits import is_hosted
from livecam.cost.gate import DEFAULT_REFRESH_S, SEND_MODES, SendMode, SendPolicy


def default_send_mode(urls: Sequence[str]) -> SendMode:
    """``changes`` for Roboflow's hosted API, which bills every call; ``every`` for local servers.

    A local server costs nothing per call, and sending every frame it can take keeps the boxes
    freshest (BENCHMARKS.md, "Cost", measures both).
    """
    return "changes" if any(is_hosted(url) for url in urls) else "every"


def send_mode(given: str | None, urls: Sequence[str]) -> SendMode:
    """The mode given, else the default for the servers at ``urls``."""
    if given is None:
        return default_send_mode(urls)
    if given not in SEND_MODES:
        raise ValueError(f"send mode must be one of {', '.join(SEND_MODES)} (got {given!r})")
    return "every" if given == "every" else "changes"


def send_policy(values: Mapping[Option, Any], urls: Sequence[str]) -> SendPolicy:
    """The policy of the options given (``values``), for the servers at ``urls``."""
    return SendPolicy(
        mode=send_mode(values.get(SEND), urls),
        refresh_s=values.get(REFRESH, DEFAULT_REFRESH_S),
        max_per_minute=values.get(MAX_REQUESTS),
    )


def given(args: argparse.Namespace) -> dict[Option, Any]:
    """The sending options given as flags."""
    return given_values(args, SEND_OPTIONS)
