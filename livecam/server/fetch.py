"""Fetch an image by URL for ``image=<url>``, only when the operator allowed it."""

from __future__ import annotations

import urllib.error
import urllib.request

from livecam.server.errors import HttpError

FETCH_TIMEOUT_S = 10.0


def fetch_image(url: str, max_bytes: int, allowed: bool) -> bytes:
    """The bytes at an http(s) ``url``, at most ``max_bytes``.

    Raises:
        HttpError: 403 when URL fetching is off, 400 for a bad URL or a failed fetch, 413 when too big.
    """
    if not allowed:
        raise HttpError(
            403,
            "this server does not fetch image URLs; send the image in the body "
            "(the operator can enable it with --allow-image-urls)",
        )
    if not url.lower().startswith(("http://", "https://")):
        raise HttpError(400, "image URLs must start with http:// or https://")
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310 - scheme checked
            data: bytes = response.read(max_bytes + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HttpError(400, f"could not fetch the image URL: {exc}") from exc
    if len(data) > max_bytes:
        raise HttpError(413, f"the image at the URL is larger than {max_bytes} bytes")
    return data
