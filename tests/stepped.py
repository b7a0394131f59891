"""A source and a display that step together, so "the display never waits for the network" is
proven by causality instead of by a share of frames shown (which a busy machine lowers):

    pipe, stats = run_every_frame(SyntheticSource(160, 120, 30, frames=60, live=False), api)
    # asserts that all 60 frames were shown, however slow the machine

The source hands out frame N+1 only once the display has shown frame N (and is not paced: the
display sets the pace). A display that waited for an answer would hold the source back: after
:data:`GIVE_UP_S` without progress the source ends early, and the test sees fewer frames shown.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any

from livecam.client import ApiConfig
from livecam.display import Display, HeadlessDisplay
from livecam.frames import Image
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import SourceInfo, VideoSource

GIVE_UP_S = 30.0
"""How long the source waits for the display to show its previous frame before it ends."""


class Stepped:
    """Wraps a finite source so each frame is read only after the previous one was shown."""

    def __init__(self, inner: VideoSource) -> None:
        self.inner = inner
        self.gave_up = False
        self._shown: Callable[[], int] = lambda: 0
        self._may_go: Callable[[int], bool] = lambda index: True
        self._changed = threading.Condition()
        self._handed_out = 0
        self._info: SourceInfo | None = None

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        self._info = dataclasses.replace(self.inner.open(), paced=False)
        return self._info

    def close(self) -> None:
        self.inner.close()

    def follow(self, shown: Callable[[], int], may_go: Callable[[int], bool] | None = None) -> None:
        """Count shown frames with ``shown`` (e.g. the pipeline's ``displayed_frames``); frame N is
        also held until ``may_go(N)`` (checked each time the display shows something)."""
        self._shown = shown
        if may_go is not None:
            self._may_go = may_go

    def displayed(self) -> None:
        """The display showed something: check whether the next frame may go."""
        with self._changed:
            self._changed.notify_all()

    def read(self) -> Image | None:
        with self._changed:
            index = self._handed_out
            if not self._changed.wait_for(lambda: self._shown() >= index and self._may_go(index), GIVE_UP_S):
                self.gave_up = True
                return None
        image = self.inner.read()
        if image is not None:
            self._handed_out += 1
        return image


class SteppedDisplay(HeadlessDisplay):
    """A headless display that tells ``source`` about every picture shown; presses ``keys`` first.

    ``on_show``, when set, is called on every picture shown, before the source is told.
    """

    def __init__(self, source: Stepped, keys: str = "") -> None:
        super().__init__()
        self._source = source
        self._keys = [ord(key) for key in reversed(keys)]
        self.on_show: Callable[[], None] | None = None

    def show(self, image: Image) -> int:
        if self.on_show is not None:
            self.on_show()
        self._source.displayed()
        return self._keys.pop() if self._keys else -1


def run_every_frame(
    source: VideoSource,
    api: ApiConfig | None,
    config: LiveConfig | None = None,
    *,
    keys: str = "",
    display: Callable[[SteppedDisplay], Display] = lambda stepped: stepped,
    on_frame: Sequence[Callable[[Image], None]] = (),
    on_shown: Callable[[int], None] | None = None,
    before: Callable[[LivePipeline], None] | None = None,
    may_go: Callable[[LivePipeline, int], bool] | None = None,
) -> tuple[LivePipeline, dict[str, Any]]:
    """Run the finite ``source``, stepped, to its end; asserts that every frame read was shown.

    Args:
        display: wraps the stepped display (e.g. in a kiosk display).
        on_shown: called with the count of frames shown each time a picture is shown.
        before: called with the pipeline before it runs.
        may_go: frame N is read only once ``may_go(pipeline, N)`` holds too (e.g. "after the first
            answer"): the source waits for the network, never the display.

    Returns:
        The pipeline (closed) and its stats as JSON.
    """
    stepped = Stepped(source)
    shown_display = SteppedDisplay(stepped, keys)
    with LivePipeline(stepped, api, display(shown_display), config, on_frame=on_frame) as pipe:
        stepped.follow(lambda: pipe.displayed_frames, None if may_go is None else lambda n: may_go(pipe, n))
        if on_shown is not None:
            shown_display.on_show = lambda: on_shown(pipe.displayed_frames)
        if before is not None:
            before(pipe)
        stats = pipe.run().to_json()
    assert not stepped.gave_up, f"the display stopped showing frames after {stats['displayed_frames']}"
    assert stats["displayed_frames"] == stats["source_frames"], stats
    return pipe, stats
