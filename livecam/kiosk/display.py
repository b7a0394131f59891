"""The kiosk's screen: one window for the life of the process, deaf to keys but the quit sequence.

A :class:`KioskDisplay` wraps the real display (a fullscreen :class:`~livecam.display.WindowDisplay`
that reopens itself if closed, or a headless one) and is handed to each pipeline the supervisor
starts. It:

- draws the caption, then gives the picture to the browser view and the screen;
- answers every key with "no key", so the pipeline's own shortcuts (q, f, h, s) do nothing, and
  sets the process stop event when the quit sequence is typed;
- ignores ``close()`` from a pipeline that ends, so restarts do not flash the desktop; the
  process calls :meth:`shutdown` at the very end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from livecam.display import NO_KEY, Display
from livecam.frames import Image
from livecam.kiosk.keys import QuitSequence, SequenceMatcher
from livecam.overlay import draw_hud

log = logging.getLogger(__name__)

Publisher = Callable[[Image], None]
"""Receives every picture shown (the browser view's :meth:`FrameHub.publish`)."""


class KioskDisplay:
    """A :class:`~livecam.display.Display` for unattended use.

    Args:
        inner: the real display.
        quit_sequence: keys that set ``stop`` when typed within 2 s.
        stop: the process's stop event.
        caption: text drawn in the top-left corner ("" for none).
        publish: also receives each picture shown (e.g. the browser view).
        clock: monotonic seconds, for the quit sequence's time window.
    """

    def __init__(
        self,
        inner: Display,
        quit_sequence: QuitSequence,
        stop: threading.Event,
        *,
        caption: str = "",
        publish: Publisher | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self._matcher = SequenceMatcher(quit_sequence)
        self._stop = stop
        self._caption = caption
        self._publish = publish
        self._clock = clock
        self._last: Image | None = None
        self.shown = 0
        """Pictures shown so far (new frames and redraws)."""

    @property
    def last_picture(self) -> Image | None:
        """The last picture given to :meth:`show` (before the caption), or None."""
        return self._last

    def show(self, image: Image) -> int:
        """Show ``image`` with the caption; always returns :data:`~livecam.display.NO_KEY`."""
        self._last = image
        picture = draw_hud(image.copy(), [self._caption], anchor="top-left") if self._caption else image
        if self._publish is not None:
            self._publish(picture)
        key = self.inner.show(picture)
        self.shown += 1
        if key >= 0 and self._matcher.feed(key, self._clock()):
            log.info("quit sequence typed; stopping")
            self._stop.set()
        return NO_KEY

    def set_fullscreen(self, on: bool) -> None:
        """Ignored: a kiosk stays as configured."""

    @property
    def fullscreen(self) -> bool:
        """Whether the real display is fullscreen."""
        return self.inner.fullscreen

    @property
    def closed_by_user(self) -> bool:
        """Always False: a closed kiosk window is opened again, it never ends the run."""
        return False

    def close(self) -> None:
        """Kept open: pipelines come and go under one window. See :meth:`shutdown`."""

    def shutdown(self) -> None:
        """Close the real display (at the end of the process)."""
        self.inner.close()
