"""Which camera the next request is for, when several share the detection servers.

Usage::

    turns = CameraTurns(3)                       # or CameraTurns(3, weights=[2, 1, 1])
    camera = turns.take({0: t0, 2: t2})          # cameras with an unsent frame -> its capture time
    # ... send camera's newest frame

Without weights the camera that has waited longest is served: the one whose last frame sent was
captured earliest (a camera not served yet goes first, then by its newest frame's age). With every
camera busy this is a round robin, so each gets an equal share of the answers whatever its frame
rate; a camera with nothing new (failed, stalled, ended, slower than its share) is skipped, and
its share goes to the others. With weights it is a weighted round robin (stride scheduling): a
camera of weight 2 is served twice as often as one of weight 1, and a camera that was idle comes
back at the others' pace instead of catching up on the turns it missed.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence


class CameraTurns:
    """Picks the camera served next; thread-safe.

    Args:
        cameras: how many cameras share the servers.
        weights: one positive weight per camera for a weighted round robin; None: longest wait first.
    """

    def __init__(self, cameras: int, weights: Sequence[float] | None = None) -> None:
        if cameras < 1:
            raise ValueError("at least one camera")
        if weights is not None:
            if len(weights) != cameras:
                raise ValueError(f"{len(weights)} weights for {cameras} cameras")
            if any(not (w > 0 and math.isfinite(w)) for w in weights):
                raise ValueError("weights must be positive numbers")
        self._weights = None if weights is None else tuple(float(w) for w in weights)
        self._lock = threading.Lock()
        self._last_sent_at = [-math.inf] * cameras
        self._pass = [0.0] * cameras
        self._now = 0.0
        self.served = [0] * cameras
        """Frames sent per camera."""

    def take(self, waiting: Mapping[int, float]) -> int | None:
        """The camera to serve now among ``waiting`` (camera -> capture time of its newest unsent frame).

        The choice is recorded as served. Returns None when nothing is waiting.
        """
        if not waiting:
            return None
        with self._lock:
            if self._weights is None:
                camera = min(waiting, key=lambda c: (self._last_sent_at[c], waiting[c], c))
                self._last_sent_at[camera] = waiting[camera]
            else:
                # A camera back from idle starts at the current turn, not with a backlog of turns.
                start = {c: max(self._pass[c], self._now) for c in waiting}
                camera = min(waiting, key=lambda c: (start[c], c))
                self._now = start[camera]
                self._pass[camera] = start[camera] + 1.0 / self._weights[camera]
            self.served[camera] += 1
            return camera
