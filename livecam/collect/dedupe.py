"""Near-duplicate frames: a small area-averaged thumbnail compared against recent saves.

A static camera shows the same scene for hours; only frames that look different from what was
already saved are worth a labeller's time. A frame's fingerprint is its 16x16 grey thumbnail,
each cell the average of every pixel under it (``cv2.INTER_AREA``): sensor noise averages out
over the thousands of pixels of a cell, and JPEG re-encoding moves a cell by a fraction of a
grey level. Two fingerprints differ by the mean absolute difference of their cells after
each one's mean is taken away (so a brightness change barely counts), as a share of the grey
range.

A bit hash (dHash) was measured against this and set aside: each bit is the sign of a
difference between neighbouring cells, and where that difference is near zero (a plain wall, a
smooth gradient) noise flips bits at will. BENCHMARKS.md has the figures.

A frame is a near-duplicate only of a recent save the model saw the same way (the same number
of boxes of each class): a person walking into a parked scene barely changes the thumbnail, but
it is exactly the frame to keep.

    recent = RecentHashes(keep=64, min_difference=0.003)
    value, seen = fingerprint(frame.image), signature(class_names)
    if not recent.near(value, seen):
        save(frame)
        recent.add(value, seen)
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable

import cv2
import numpy as np
import numpy.typing as npt

from livecam.frames import Image

THUMB_SIDE = 16
"""The fingerprint is a 16x16 grey thumbnail: 256 cells, 256 bytes."""
FINGERPRINT_BYTES = THUMB_SIDE * THUMB_SIDE

Fingerprint = bytes
"""A frame's grey thumbnail, row by row, one byte a cell."""


def fingerprint(image: Image) -> Fingerprint:
    """The 16x16 area-averaged grey thumbnail of a BGR (or grey) image.

    The image is cut to whole cells first (at most 15 rows and columns go): OpenCV averages
    whole cells several times faster than fractional ones (1080p: 8 against 57 ms on a busy
    machine). It runs on the collector's writer thread, for frames already picked.
    """
    height, width = image.shape[:2]
    whole = image[: height - height % THUMB_SIDE or height, : width - width % THUMB_SIDE or width]
    gray = cv2.cvtColor(whole, cv2.COLOR_BGR2GRAY) if whole.ndim == 3 else whole
    thumb = cv2.resize(gray, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    return bytes(np.ascontiguousarray(thumb, np.uint8).tobytes())


def difference(a: Fingerprint, b: Fingerprint) -> float:
    """How different two fingerprints are, 0 (the same) to 1: the mean absolute difference of
    their mean-removed cells, as a share of the grey range."""
    x, y = _cells(a), _cells(b)
    return float(np.abs((x - x.mean()) - (y - y.mean())).mean() / 255.0)


def _cells(value: Fingerprint) -> npt.NDArray[np.float32]:
    return np.frombuffer(value, np.uint8).astype(np.float32)


def signature(class_names: Iterable[str]) -> str:
    """How the model saw a frame, for comparing saves: ``"car:1,person:2"`` (empty for no boxes)."""
    return ",".join(f"{name}:{count}" for name, count in sorted(Counter(class_names).items()))


class RecentHashes:
    """The fingerprints and signatures of the last ``keep`` saves. Thread-safe.

    Args:
        keep: how many recent saves to remember.
        min_difference: a fingerprint is near a remembered one when their :func:`difference`
            is below this.
    """

    def __init__(self, keep: int = 64, min_difference: float = 0.003) -> None:
        self._saves: deque[tuple[Fingerprint, str]] = deque(maxlen=keep)
        self._min_difference = min_difference
        self._lock = threading.Lock()

    def near(self, value: Fingerprint, seen: str = "") -> bool:
        """Whether ``value`` is a near-duplicate of a recent save with the same signature ``seen``."""
        with self._lock:
            return any(s == seen and difference(value, h) < self._min_difference for h, s in self._saves)

    def add(self, value: Fingerprint, seen: str = "") -> None:
        if len(value) != FINGERPRINT_BYTES:
            raise ValueError(f"a fingerprint has {FINGERPRINT_BYTES} bytes (got {len(value)})")
        with self._lock:
            self._saves.append((value, seen))
