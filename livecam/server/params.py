"""Inference parameters from the legacy query string or the JSON routes, validated."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from livecam.server.errors import HttpError

Format = Literal["json", "image", "image_and_json"]
_FORMATS: tuple[Format, ...] = ("json", "image", "image_and_json")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
MAX_DETECTIONS_LIMIT = 10_000


@dataclass(frozen=True)
class InferenceParams:
    """What one inference request asks for (thresholds as 0..1 fractions)."""

    confidence: float = 0.40
    iou: float = 0.30
    max_detections: int = 300
    format: Format = "json"
    labels: bool = True
    stroke: int = 2
    classes: frozenset[str] | None = None


def legacy_params(query: Mapping[str, str]) -> InferenceParams:
    """Parameters of ``POST /{project}/{version}``: percent-or-fraction thresholds, ``format`` etc.

    Raises:
        HttpError: 400 naming the bad parameter.
    """
    fmt = query.get("format", "json").lower()
    classes = query.get("classes")
    return InferenceParams(
        confidence=max(0.01, _threshold(query, "confidence", 40.0)),
        iou=_threshold(query, "overlap", 30.0),
        max_detections=_int(query, "max_detections", 300, 0, MAX_DETECTIONS_LIMIT),
        format=_format(fmt),
        labels=_bool(query, "labels", True),
        stroke=_int(query, "stroke", 2, 1, 100),
        classes=frozenset(c.strip() for c in classes.split(",") if c.strip()) if classes else None,
    )


def json_params(body: Mapping[str, Any]) -> InferenceParams:
    """Parameters of ``POST /infer/object_detection`` (0..1 floats; ``class_filter`` list).

    Raises:
        HttpError: 400 naming the bad field.
    """
    values = {k: body[k] for k in ("confidence", "iou_threshold", "max_detections") if body.get(k) is not None}
    query = {k: str(v) for k, v in values.items()}
    class_filter = body.get("class_filter")
    if class_filter is not None and not (
        isinstance(class_filter, list) and all(isinstance(c, str) for c in class_filter)
    ):
        raise HttpError(400, "class_filter must be a list of class names")
    return InferenceParams(
        confidence=max(0.01, _threshold(query, "confidence", 0.4)),
        iou=_threshold(query, "iou_threshold", 0.5),
        max_detections=_int(query, "max_detections", 300, 0, MAX_DETECTIONS_LIMIT),
        classes=frozenset(class_filter) if class_filter else None,
    )


def _threshold(query: Mapping[str, str], name: str, default: float) -> float:
    """A 0..1 fraction from a value given as percent (>= 1) or fraction (< 1)."""
    text = query.get(name)
    value = default if text is None else _float(name, text)
    if not 0 <= value <= 100:
        raise HttpError(400, f"{name} must be between 0 and 100 (percent) or 0 and 1 (fraction), not {text}")
    return value / 100 if value >= 1 else value


def _float(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise HttpError(400, f"{name} must be a number, not {text[:40]!r}") from exc
    if not math.isfinite(value):
        raise HttpError(400, f"{name} must be a finite number")
    return value


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    value = _float(name, text)
    if value != int(value) or not low <= value <= high:
        raise HttpError(400, f"{name} must be a whole number from {low} to {high}, not {text[:40]!r}")
    return int(value)


def _bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    text = query.get(name)
    if text is None:
        return default
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise HttpError(400, f"{name} must be true or false, not {text[:40]!r}")


def _format(text: str) -> Format:
    for fmt in _FORMATS:
        if text == fmt:
            return fmt
    raise HttpError(400, f"format must be one of {', '.join(_FORMATS)}, not {text[:40]!r}")
