"""What to collect and how much: the frozen settings behind ``--collect DIR`` and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livecam.errors import ConfigError

STRATEGY_NAMES = ("low-confidence", "empty", "vanished", "count-change", "classes", "random")
"""Every strategy, in the order the docs describe them."""
DEFAULT_STRATEGIES = ("low-confidence", "vanished")
"""The model's own doubt and an object it lost: the two strongest signs of a mistake."""


@dataclass(frozen=True)
class CollectConfig:
    """Which answered frames are saved for labelling, where, and how many at most.

    Attributes:
        directory: where items are saved (created if missing).
        strategies: names from :data:`STRATEGY_NAMES`; a frame is saved when any of them picks it.
        band: ``low-confidence`` picks a box whose confidence (0-1) lies in ``[low, high]``.
        classes: the classes ``empty``, ``vanished``, ``count-change``, ``classes`` and
            ``low-confidence`` look at; None means every class (``classes`` then needs a list).
        count_jump: ``count-change`` picks an answer whose box count differs from the previous
            answer's by at least this much.
        random_share: ``random`` picks this fraction (0-1) of answered frames.
        max_per_minute, max_per_hour: saves allowed per sliding minute / hour (0: no limit).
        max_total: items the folder may hold, counting earlier runs (0: no limit).
        min_free_mb: collection stops, with one warning, when the disk has less free space.
        min_difference: a frame whose 16x16 thumbnail differs from a recent save's by less than
            this share of the grey range on average (0-1) is a near-duplicate and skipped
            (:func:`~livecam.collect.dedupe.difference`).
        recent: how many recent saves near-duplicates are compared against.
        jpeg_quality: quality of the saved full-resolution JPEG.
        queue: frames waiting for the background writer at most; more are dropped and counted.
    """

    directory: Path
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    band: tuple[float, float] = (0.25, 0.55)
    classes: tuple[str, ...] | None = None
    count_jump: int = 2
    random_share: float = 0.01
    max_per_minute: int = 10
    max_per_hour: int = 100
    max_total: int = 1000
    min_free_mb: float = 500.0
    min_difference: float = 0.003
    recent: int = 64
    jpeg_quality: int = 95
    queue: int = 4

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGY_NAMES]
        if unknown or not self.strategies:
            raise ConfigError(
                f"--collect-strategy: unknown {', '.join(map(repr, unknown)) or 'empty list'}; "
                f"choose from {', '.join(STRATEGY_NAMES)} (or all)"
            )
        low, high = self.band
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigError(f"--collect-band must be LOW-HIGH with 0 <= LOW <= HIGH <= 1 (got {low:g}-{high:g})")
        if "classes" in self.strategies and not self.classes:
            raise ConfigError("the 'classes' collect strategy needs --collect-classes A,B")
        if self.count_jump < 1:
            raise ConfigError(f"--collect-count-jump must be at least 1 (got {self.count_jump})")
        if not 0.0 <= self.random_share <= 1.0:
            raise ConfigError(f"--collect-random must be between 0 and 1 (got {self.random_share:g})")
        for flag, value in (
            ("--collect-max-per-minute", self.max_per_minute),
            ("--collect-max-per-hour", self.max_per_hour),
            ("--collect-max-total", self.max_total),
        ):
            if value < 0:
                raise ConfigError(f"{flag} must be 0 (no limit) or more (got {value})")
        if self.min_free_mb < 0:
            raise ConfigError(f"--collect-min-free-mb must be 0 or more (got {self.min_free_mb:g})")
        if not 0.0 <= self.min_difference <= 1.0:
            raise ConfigError(f"--collect-min-difference must be between 0 and 1 (got {self.min_difference:g})")
        if self.recent < 1 or self.queue < 1:
            raise ConfigError("the collector needs at least one recent hash and one queue slot")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"the collect JPEG quality must be 1-100 (got {self.jpeg_quality})")

    @property
    def lowest_confidence(self) -> float | None:
        """The lowest confidence (0-1) a strategy wants to see, when ``low-confidence`` is on."""
        return self.band[0] if "low-confidence" in self.strategies else None


def parse_strategies(text: str) -> tuple[str, ...]:
    """``"low-confidence,empty"`` or ``"all"`` as strategy names (checked by :class:`CollectConfig`)."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    return STRATEGY_NAMES if names == ("all",) else names


def parse_band(text: str) -> tuple[float, float]:
    """``"0.25-0.55"`` as ``(0.25, 0.55)``; percentages (``"25-55"``) are accepted too.

    Raises:
        ValueError: not two numbers joined by ``-``.
    """
    low_text, sep, high_text = text.strip().partition("-")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise ValueError(f"expected LOW-HIGH such as 0.25-0.55 (got {text!r})") from None
    if not sep:
        raise ValueError(f"expected LOW-HIGH such as 0.25-0.55 (got {text!r})")
    if high > 1.0:  # given in percent, like --confidence
        low, high = low / 100, high / 100
    return low, high
