"""Which frames are sent, as settings: ``--send``, ``--refresh``, ``--max-requests-per-minute``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from livecam.cost.credits import is_hosted

SendMode = Literal["every", "changes"]
SEND_MODES: tuple[SendMode, ...] = ("every", "changes")

DEFAULT_REFRESH_S = 5.0
"""``--refresh``: a still scene is asked again after this long."""


@dataclass(frozen=True)
class SendPolicy:
    """How frames are chosen for calls.

    Attributes:
        mode: ``every`` sends whenever a server has room; ``changes`` only frames that may change
            what is drawn.
        refresh_s: with ``changes``, the longest time between two calls.
        max_per_minute: the request budget over all servers (None: no budget).
    """

    mode: SendMode = "every"
    refresh_s: float = DEFAULT_REFRESH_S
    max_per_minute: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in SEND_MODES:
            raise ValueError(f"send mode must be one of {', '.join(SEND_MODES)}, not {self.mode!r}")
        if not self.refresh_s > 0:
            raise ValueError("the refresh period must be more than 0 seconds")
        if self.max_per_minute is not None and self.max_per_minute < 1:
            raise ValueError("the request budget must be at least 1 per minute")

    @property
    def gated(self) -> bool:
        """Whether any frame may be held back (else every frame a server has room for is sent)."""
        return self.mode == "changes" or self.max_per_minute is not None

    def describe(self) -> str:
        """One line on which frames are sent, for the log."""
        text = (
            "every frame a server has room for"
            if self.mode == "every"
            else f"only frames that change the picture (and every {self.refresh_s:g} s)"
        )
        if self.max_per_minute is not None:
            text += f", at most {self.max_per_minute} calls a minute"
        return text


def default_send_mode(urls: Sequence[str]) -> SendMode:
    """``changes`` for Roboflow's hosted API, which bills every call; ``every`` for other servers.

    A local server costs nothing per call, and sending every frame it can take keeps the boxes
    freshest.
    """
    return "changes" if any(is_hosted(url) for url in urls) else "every"


def send_policy(mode: str | None, refresh_s: float, max_per_minute: int | None, urls: Sequence[str]) -> SendPolicy:
    """The policy of the settings given (``mode`` None: the default for the servers at ``urls``)."""
    chosen: SendMode = default_send_mode(urls) if mode is None else ("changes" if mode == "changes" else "every")
    if mode is not None and mode not in SEND_MODES:
        raise ValueError(f"send mode must be one of {', '.join(SEND_MODES)} (got {mode!r})")
    return SendPolicy(chosen, refresh_s, max_per_minute)
