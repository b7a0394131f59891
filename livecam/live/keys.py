"""The live window's keys: q/Esc quit, f fullscreen, h HUD, s snapshot."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from livecam.display import Display, save_snapshot
from livecam.errors import LivecamError
from livecam.frames import Image
from livecam.live.compose import FrameComposer

log = logging.getLogger(__name__)

QUIT_KEYS = frozenset({ord("q"), ord("Q"), 27})


class KeyBindings:
    """Acts on a key read by the display (a kiosk's display reports none, so nothing happens).

    Args:
        display: toggled fullscreen by ``f``.
        composer: its HUD is toggled by ``h``.
        stop: set by ``q``/Esc or by closing the window.
        snapshot_dir: where ``s`` saves the shown picture.
    """

    def __init__(self, display: Display, composer: FrameComposer, stop: threading.Event, snapshot_dir: Path) -> None:
        self._display = display
        self._composer = composer
        self._stop = stop
        self._snapshot_dir = snapshot_dir

    def handle(self, key: int, shown: Image) -> None:
        """React to ``key`` (negative: none) read while ``shown`` was on screen."""
        if key < 0:
            if self._display.closed_by_user:
                self._stop.set()
            return
        key &= 0xFF
        if key in QUIT_KEYS:
            self._stop.set()
        elif key in (ord("f"), ord("F")):
            self._display.set_fullscreen(not self._display.fullscreen)
        elif key in (ord("h"), ord("H")):
            self._composer.hud = not self._composer.hud
        elif key in (ord("s"), ord("S")):
            try:
                path = save_snapshot(shown, self._snapshot_dir)
            except LivecamError as exc:
                log.warning("snapshot not saved: %s", exc)
                return
            log.info("snapshot saved to %s", path)
