"""The live window's keys: q/Esc quit, f fullscreen, h HUD, s snapshot; with several cameras 1-9 and 0."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

from livecam.display import Display, save_snapshot
from livecam.errors import LivecamError
from livecam.frames import Image
from livecam.live.grid import GridView

log = logging.getLogger(__name__)

ESC = 27
QUIT_KEYS = frozenset({ord("q"), ord("Q"), ESC})


class HasHud(Protocol):
    """What ``h`` toggles (a frame composer, or every camera's)."""

    hud: bool


class KeyBindings:
    """Acts on a key read by the display (a kiosk's display reports none, so nothing happens).

    Args:
        display: toggled fullscreen by ``f``.
        composer: its HUD is toggled by ``h``.
        stop: set by ``q``/Esc or by closing the window.
        snapshot_dir: where ``s`` saves the shown picture.
        view: with several cameras, ``1``-``9`` show one camera alone, ``0`` (or Esc from one
            camera) the grid again.
    """

    def __init__(
        self,
        display: Display,
        composer: HasHud,
        stop: threading.Event,
        snapshot_dir: Path,
        view: GridView | None = None,
    ) -> None:
        self._display = display
        self._composer = composer
        self._stop = stop
        self._snapshot_dir = snapshot_dir
        self._view = view

    def handle(self, key: int, shown: Image) -> None:
        """React to ``key`` (negative: none) read while ``shown`` was on screen."""
        if key < 0:
            if self._display.closed_by_user:
                self._stop.set()
            return
        key &= 0xFF
        view = self._view
        if view is not None and ord("0") <= key <= ord("9"):
            view.select(None if key == ord("0") else key - ord("1"))
        elif view is not None and key == ESC and view.selected is not None:
            view.select(None)
        elif key in QUIT_KEYS:
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
