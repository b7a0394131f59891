"""A clip and a display that step together, so "the display never waits for the network" is
proven by causality instead of by a share of frames shown (which a busy machine lowers):

    clip = SteppedClip(60)
    pipe = LivePipeline(clip, api, SteppedDisplay(clip), config)
    clip.follow(lambda: pipe.displayed_frames)
    stats = pipe.run()
    assert stats.displayed_frames == 60      # however slow the machine

The clip hands out frame N+1 only once the display has shown frame N. A display that waited for
an answer would stop the clip: after :data:`GIVE_UP_S` without progress the clip ends early,
and the test sees fewer frames shown than read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from livecam.display import HeadlessDisplay
from livecam.frames import Image
from livecam.sources import SyntheticSource

GIVE_UP_S = 30.0
"""How long the clip waits for the display to show its previous frame before it ends."""


class SteppedClip(SyntheticSource):
    """A synthetic clip of ``frames`` frames, each read only after the previous one was shown."""

    def __init__(self, frames: int, width: int = 160, height: int = 120) -> None:
        # At 500 fps (the most a source may claim) pacing costs little: the display sets the pace.
        super().__init__(width, height, 500.0, frames=frames, live=False)
        self.gave_up = False
        self._shown: Callable[[], int] = lambda: 0
        self._changed = threading.Condition()
        self._handed_out = 0

    def follow(self, shown: Callable[[], int]) -> None:
        """Count shown frames with ``shown`` (e.g. the pipeline's ``displayed_frames``)."""
        self._shown = shown

    def displayed(self) -> None:
        """The display showed something: check whether the next frame may go."""
        with self._changed:
            self._changed.notify_all()

    def read(self) -> Image | None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._shown() >= self._handed_out, GIVE_UP_S):
                self.gave_up = True
                return None
        image = super().read()
        if image is not None:
            self._handed_out += 1
        return image


class SteppedDisplay(HeadlessDisplay):
    """A headless display that tells ``clip`` about every picture shown; presses ``keys`` first."""

    def __init__(self, clip: SteppedClip, keys: str = "") -> None:
        super().__init__()
        self._clip = clip
        self._keys = [ord(key) for key in reversed(keys)]
        self.shown = 0
        self.on_show: Callable[[], None] | None = None

    def show(self, image: Image) -> int:
        self.shown += 1
        if self.on_show is not None:
            self.on_show()
        self._clip.displayed()
        return self._keys.pop() if self._keys else -1
