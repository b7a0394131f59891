"""Reading a stats document in a test: indexed and compared freely, as :func:`json.loads`'s result is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from livecam.stats import Json


def loose(doc: Mapping[str, Json]) -> dict[str, Any]:
    """``doc`` itself, typed for a test to index its nested values without narrowing each one."""
    return dict(doc)
