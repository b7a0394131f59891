"""``--collect DIR`` as a run uses it: the settings from option values, the API asking for
near-misses, and a started collector for the run's length.

    config = collect_config(values)                    # None without --collect
    api = asking_low_confidence(api, config)           # near-misses come back for low-confidence
    with collecting(config, source="cam", model_id=api.model_id) as collector:
        ...                                            # collector.offer(frame, predictions)
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from livecam.client import ApiConfig
from livecam.collect.collector import Collector
from livecam.collect.config import CollectConfig
from livecam.errors import ConfigError
from livecam.public.options import COLLECT_OPTIONS

log = logging.getLogger("livecam")

_FIELDS = {
    "dir": "directory",
    "strategy": "strategies",
    "band": "band",
    "classes": "classes",
    "count_jump": "count_jump",
    "random": "random_share",
    "max_per_minute": "max_per_minute",
    "max_per_hour": "max_per_hour",
    "max_total": "max_total",
    "min_free_mb": "min_free_mb",
    "min_difference": "min_difference",
}
"""Option dests to :class:`CollectConfig` fields."""


def collect_config(values: Mapping[str, Any]) -> CollectConfig | None:
    """The collect settings from option values by dest (absent or None ones take the defaults).

    Raises:
        ConfigError: collect options without ``--collect DIR``, or a combination that cannot work.
    """
    present = {dest: value for dest, value in values.items() if value is not None}
    if "dir" not in present:
        if present:
            flags = ", ".join(o.flag for o in COLLECT_OPTIONS if o.dest in present)
            raise ConfigError(f"{flags}: only with --collect DIR, the folder to save frames in")
        return None
    fields = {_FIELDS[dest]: value for dest, value in present.items()}
    fields["directory"] = Path(fields["directory"]).expanduser()
    return CollectConfig(**fields)


def asking_low_confidence(api: ApiConfig, config: CollectConfig | None) -> ApiConfig:
    """``api`` asking the server for boxes down to the ``low-confidence`` band (shown only above ``--confidence``)."""
    lowest = None if config is None else config.lowest_confidence
    if lowest is None or lowest * 100 >= api.confidence:
        return api
    return dataclasses.replace(api, lowest_confidence=lowest * 100)


@contextlib.contextmanager
def collecting(config: CollectConfig | None, *, source: str, model_id: str | None) -> Iterator[Collector | None]:
    """A started collector for as long as the context lasts (None without ``--collect``).

    A folder that cannot be used is logged once and the run goes on without collecting.
    """
    if config is None:
        yield None
        return
    collector = Collector(config, source=source, model_id=model_id)
    collector.start()
    try:
        yield collector
    finally:
        collector.close()
        summary(collector)


def summary(collector: Collector) -> None:
    """One log line: how much was collected, and what was skipped or dropped."""
    stats = collector.summary()
    by = ", ".join(f"{name} {count}" for name, count in stats.collected_by_strategy.items())
    skipped = stats.collect_skipped
    count = stats.collected
    log.info(
        "collected %d frame%s to %s%s; %d near-duplicates and %d over the limits skipped, %d dropped",
        count,
        "" if count == 1 else "s",
        collector.config.directory,
        f" ({by})" if by else "",
        skipped["duplicate"],
        skipped["limit"],
        stats.collect_dropped,
    )
