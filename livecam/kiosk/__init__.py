"""Unattended fullscreen operation from a config file, with a browser view.

``livecam kiosk --config kiosk.toml`` gives a :class:`KioskConfig` (:mod:`.config`); the kiosk runs the
live pipeline under a :class:`Supervisor` that restarts it when frames stop (:mod:`.app`),
shows it on a fullscreen :class:`KioskDisplay` that ignores keys but a quit sequence
(:mod:`.display`), and optionally serves the annotated stream to browsers (:mod:`.web`).
"""

from livecam.kiosk.app import Supervisor
from livecam.kiosk.config import KioskConfig
from livecam.kiosk.display import KioskDisplay
from livecam.kiosk.orientation import Orientation, OrientedSource
from livecam.kiosk.web import FrameHub, WebView

__all__ = [
    "FrameHub",
    "KioskConfig",
    "KioskDisplay",
    "Orientation",
    "OrientedSource",
    "Supervisor",
    "WebView",
]
