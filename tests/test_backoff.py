"""Backoff delays never exceed the documented maximum, jitter included."""

from __future__ import annotations

import random

from livecam.backoff import Backoff


def test_jitter_never_takes_a_delay_past_the_maximum() -> None:
    backoff = Backoff(initial=0.25, maximum=2.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert max(delays) <= 2.0
    assert delays[0] < 0.5  # it still starts small and doubles


def test_at_least_still_wins_over_the_maximum() -> None:
    assert Backoff(initial=1.0, maximum=2.0).next_delay(at_least=30.0) == 30.0
