"""Strategies that pick the answered frames worth labelling.

Each strategy sees every answer, in order (some remember the previous one), and says whether
it picks the frame. A frame is collected when any enabled strategy picks it::

    chooser = Chooser.from_config(config)
    names = chooser.pick(predictions)      # e.g. ("low-confidence",), or () to skip

Only boxes at or above the display threshold count as detections; boxes under it (asked for by
``low-confidence``) are seen by ``low-confidence`` alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from livecam.collect.config import CollectConfig
from livecam.predictions import Prediction, Predictions


class Strategy(Protocol):
    """Decides for one answer; called for every answer, oldest first."""

    name: str

    def picks(self, predictions: Predictions) -> bool: ...


def _count(items: Sequence[Prediction], classes: frozenset[str] | None) -> int:
    return sum(1 for p in items if classes is None or p.class_name in classes)


class LowConfidence:
    """Picks an answer with a box whose confidence lies in ``[low, high]``: the model is unsure."""

    name = "low-confidence"

    def __init__(self, low: float, high: float, classes: frozenset[str] | None = None) -> None:
        self._low, self._high, self._classes = low, high, classes

    def picks(self, predictions: Predictions) -> bool:
        return any(
            self._low <= p.confidence <= self._high and (self._classes is None or p.class_name in self._classes)
            for p in (*predictions.items, *predictions.below_threshold)
        )


class Empty:
    """Picks an answer without detections (of ``classes``, when given: classes expected in view)."""

    name = "empty"

    def __init__(self, classes: frozenset[str] | None = None) -> None:
        self._classes = classes

    def picks(self, predictions: Predictions) -> bool:
        return predictions.caption is None and _count(predictions.items, self._classes) == 0


class Vanished:
    """Picks an answer without detections (of ``classes``) when the previous answer had some."""

    name = "vanished"

    def __init__(self, classes: frozenset[str] | None = None) -> None:
        self._classes = classes
        self._previous = 0

    def picks(self, predictions: Predictions) -> bool:
        count = _count(predictions.items, self._classes)
        vanished = count == 0 and self._previous > 0
        self._previous = count
        return vanished


class CountChange:
    """Picks an answer whose detections (of ``classes``) number ``jump`` more or fewer than the last."""

    name = "count-change"

    def __init__(self, jump: int = 2, classes: frozenset[str] | None = None) -> None:
        self._jump, self._classes = jump, classes
        self._previous: int | None = None

    def picks(self, predictions: Predictions) -> bool:
        count = _count(predictions.items, self._classes)
        changed = self._previous is not None and abs(count - self._previous) >= self._jump
        self._previous = count
        return changed


class Classes:
    """Picks an answer with a detection of one of ``classes`` (e.g. a rare class worth more examples)."""

    name = "classes"

    def __init__(self, classes: frozenset[str]) -> None:
        self._classes = classes

    def picks(self, predictions: Predictions) -> bool:
        return _count(predictions.items, self._classes) > 0


class RandomShare:
    """Picks a fixed share of answers at random: an unbiased sample of what the camera sees."""

    name = "random"

    def __init__(self, share: float, rng: random.Random | None = None) -> None:
        self._share = share
        self._rng = rng or random.Random()

    def picks(self, predictions: Predictions) -> bool:
        return self._rng.random() < self._share


class Chooser:
    """The enabled strategies together. Not thread-safe: one caller at a time."""

    def __init__(self, strategies: Sequence[Strategy]) -> None:
        self.strategies = tuple(strategies)

    @classmethod
    def from_config(cls, config: CollectConfig, rng: random.Random | None = None) -> Chooser:
        """The strategies ``config`` names, with its settings."""
        classes = frozenset(config.classes) if config.classes else None
        made: dict[str, Strategy] = {
            "low-confidence": LowConfidence(config.band[0], config.band[1], classes),
            "empty": Empty(classes),
            "vanished": Vanished(classes),
            "count-change": CountChange(config.count_jump, classes),
            "classes": Classes(classes or frozenset()),
            "random": RandomShare(config.random_share, rng),
        }
        return cls([made[name] for name in config.strategies])

    def pick(self, predictions: Predictions) -> tuple[str, ...]:
        """The names of the strategies that pick this answer (every one is asked, so each keeps its state)."""
        return tuple(s.name for s in self.strategies if s.picks(predictions))
