"""How long FFmpeg probes a stream on open: short for protocols whose probing is pure waiting.

On open FFmpeg reads the stream until it knows its format (``avformat_find_stream_info``). For
MPEG-TS over TCP that is about 20 frames (0.8 s at 25 fps) and for RTMP the whole default
analysis time (5 s, waiting for an audio stream that may come): every connect and every
reconnect waits that long before the first frame. Measured on loopback with the sample footage:
MPEG-TS over TCP opens in 0.84 s with FFmpeg's defaults and 0.25 s with ``analyzeduration``
0.1 s; RTMP in 5.2 s and 0.30 s. The short probe costs nothing when the stream starts with its
parameters (an RTMP sequence header, a server that starts each client on a keyframe), but a
reader joining mid-GOP may find no picture size in 0.1 s: the capture then opens with a width
of 0 and is reopened with FFmpeg's defaults (:func:`needs_full_probe`).

FFmpeg takes these options only from the process-wide ``OPENCV_FFMPEG_CAPTURE_OPTIONS``, read on
each open, so :func:`capture_options` sets it for one open under a lock and puts it back. The
user's own options are kept; one that already sets ``analyzeduration`` or ``probesize`` wins.
Another stream opened at the same moment by another thread may see the short probe too; the
picture-size check after every stream open covers that case as well.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
"""The environment variable OpenCV passes to FFmpeg as ``key;value|key;value`` options."""
SHORT_PROBE_US = 100_000
"""FFmpeg's ``analyzeduration`` for the short probe, in microseconds."""
SHORT_PROBE_SCHEMES = frozenset({"tcp", "rtmp", "rtmps"})
"""URL schemes opened with the short probe (the others measured no gain or are fast already)."""
_PROBE_KEYS = ("analyzeduration", "probesize")

_lock = threading.Lock()


def short_probe_options(url: str, current: str | None) -> str | None:
    """The capture options to open ``url`` with a short probe, or None to keep ``current`` as is.

    Args:
        url: the stream URL (its scheme decides).
        current: the value of ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` now (None when unset).
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme not in SHORT_PROBE_SCHEMES:
        return None
    pairs = [pair for pair in (current or "").split("|") if pair]
    if any(pair.split(";", 1)[0].strip().lower() in _PROBE_KEYS for pair in pairs):
        return None  # the user chose how to probe
    return "|".join([*pairs, f"analyzeduration;{SHORT_PROBE_US}"])


def needs_full_probe(width: float, height: float) -> bool:
    """Whether an opened capture found no picture size (a short probe that ended before a keyframe)."""
    return not (width > 0 and height > 0)


@contextmanager
def capture_options(value: str | None) -> Iterator[None]:
    """Set ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` to ``value`` for the block (None: leave it), then restore it."""
    if value is None:
        yield
        return
    with _lock:
        before = os.environ.get(ENV)
        os.environ[ENV] = value
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = before
