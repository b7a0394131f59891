"""Decoding and validating one answer body: the one function both the caller and the worker run."""

from __future__ import annotations

import json
from typing import Any

import orjson

from livecam.predictions import Predictions


class NotJson(ValueError):
    """The body is not JSON (the client turns this into a ``ResponseError`` naming the server)."""


def decode(body: bytes) -> Any:
    """The JSON value of ``body``.

    orjson decodes three times as fast as the standard library; what it refuses and the standard
    library accepts (``NaN`` and ``Infinity``, integers past 64 bits, UTF-16 text, deep nesting)
    gets a second try there, so every body decodes exactly as before.

    Raises:
        NotJson: neither decoder can read it.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise NotJson(f"not JSON ({type(exc).__name__})") from None


def parse_body(body: bytes, image_size: tuple[int, int] | None) -> Predictions:
    """Decode and validate an answer (see :meth:`Predictions.from_roboflow`).

    Raises:
        NotJson: the body is not JSON.
        ResponseError: it is JSON but not a prediction answer.
    """
    return Predictions.from_roboflow(decode(body), image_size=image_size)
