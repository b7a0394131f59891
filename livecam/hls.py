"""What an HLS playlist says about its pace: the target segment duration.

An HLS stream arrives a segment at a time; :func:`target_duration` reads the playlist's
``#EXT-X-TARGETDURATION`` so the stream clock can wait that long from the first frame instead of
learning it from a freeze.
"""

from __future__ import annotations

import base64
import http.client
import re
from urllib.parse import unquote, urlsplit, urlunsplit

_TARGET = re.compile(rb"^#EXT-X-TARGETDURATION:\s*(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_MAX_PLAYLIST = 256 * 1024


def is_hls(url: str) -> bool:
    """True for an ``http(s)://`` URL whose path ends in ``.m3u8``."""
    parts = urlsplit(url)
    return parts.scheme.lower() in ("http", "https") and parts.path.lower().endswith(".m3u8")


def target_duration(url: str, timeout_s: float = 2.0) -> float | None:
    """The playlist's target segment duration in seconds; None if it cannot be read or has none."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    cls = http.client.HTTPSConnection if parts.scheme.lower() == "https" else http.client.HTTPConnection
    headers = {"User-Agent": "livecam"}
    if parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
    conn = cls(host, parts.port, timeout=timeout_s)
    try:
        conn.request("GET", urlunsplit(("", "", parts.path, parts.query, "")), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            return None
        body = response.read(_MAX_PLAYLIST)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
    match = _TARGET.search(body)
    return float(match.group(1)) if match else None
