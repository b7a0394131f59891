"""Collecting the frames a model gets wrong, for labelling and retraining (``--collect DIR``)."""

from livecam.collect.collector import Collector
from livecam.collect.config import DEFAULT_STRATEGIES, STRATEGY_NAMES, CollectConfig, parse_band, parse_strategies
from livecam.collect.store import Item, items

__all__ = [
    "DEFAULT_STRATEGIES",
    "STRATEGY_NAMES",
    "CollectConfig",
    "Collector",
    "Item",
    "items",
    "parse_band",
    "parse_strategies",
]
