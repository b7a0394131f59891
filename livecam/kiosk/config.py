"""The kiosk's settings: frozen, typed and checked, one dataclass per table of its TOML file.

The command line (:mod:`livecam.cli.kiosk`) builds a :class:`KioskConfig` from the file and the
flags, both generated from the one declaration of every option in :mod:`livecam.public.options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from livecam.connection import ApiSettings
from livecam.kiosk.keys import QuitSequence
from livecam.kiosk.orientation import Orientation
from livecam.overlay import MAX_AGE_S, Color


@dataclass(frozen=True)
class SourceSettings:
    """``[source]``: what to show (the ``run`` command's SOURCE and camera options)."""

    input: str = "0"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None
    stall_timeout: float = 3.0
    name: str | None = None
    """With several sources: what logs and ``/stats`` call this camera (default: its input)."""
    rotation: int | None = None
    """With several sources: this camera's turn, instead of ``[display]``'s."""
    mirror: bool | None = None
    """With several sources: whether this camera is mirrored, instead of ``[display]``'s."""


@dataclass(frozen=True)
class OverlaySettings:
    """``[overlay]``: what is drawn over the picture."""

    classes: tuple[str, ...] | None = None
    confidence: float = ApiSettings.confidence
    motion: bool = True
    labels: bool | tuple[str, ...] = True
    """True (class and confidence), False (no labels) or the parts to show: class, confidence, id."""
    show_confidence: bool = True
    colors: Mapping[str, Color] = field(default_factory=dict)
    hud: bool = False
    title: str = "livecam"
    caption: str = ""
    max_age: float = MAX_AGE_S


@dataclass(frozen=True)
class DisplaySettings:
    """``[display]``: the screen."""

    size: tuple[int, int] | None = None
    rotation: int = 0
    mirror: bool = False
    headless: bool = False

    @property
    def orientation(self) -> Orientation:
        """The rotation and mirroring as an :class:`Orientation`."""
        return Orientation(self.rotation, self.mirror)

    def orientation_of(self, source: SourceSettings) -> Orientation:
        """How ``source`` is turned: its own rotation and mirroring where given, else the screen's."""
        rotation = self.rotation if source.rotation is None else source.rotation
        return Orientation(rotation, self.mirror if source.mirror is None else source.mirror)


@dataclass(frozen=True)
class KioskSettings:
    """``[kiosk]``: unattended behaviour and the browser view."""

    watchdog: float = 10.0
    quit: QuitSequence = field(default_factory=lambda: QuitSequence.parse("qqq"))
    web: tuple[str, int] | None = None
    allowed_hosts: tuple[str, ...] = ()
    web_fps: float = 10.0
    web_viewers: int = 8


@dataclass(frozen=True)
class CollectSettings:
    """``[collect]``: frames saved for labelling (the ``--collect`` options); None takes the default."""

    dir: str | None = None
    strategy: tuple[str, ...] | None = None
    band: tuple[float, float] | None = None
    classes: tuple[str, ...] | None = None
    count_jump: int | None = None
    random: float | None = None
    max_per_minute: int | None = None
    max_per_hour: int | None = None
    max_total: int | None = None
    min_free_mb: float | None = None
    min_difference: float | None = None


@dataclass(frozen=True)
class KioskConfig:
    """Everything the kiosk needs, checked."""

    source: SourceSettings = field(default_factory=SourceSettings)
    sources: tuple[SourceSettings, ...] = ()
    """``[[source]]`` tables (or ``source.input = [...]``): several cameras shown in a grid; empty for one."""
    api: ApiSettings = field(default_factory=ApiSettings)
    """``[api]``: the detection API, with the same names as the ``run`` command's API flags."""
    overlay: OverlaySettings = field(default_factory=OverlaySettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    kiosk: KioskSettings = field(default_factory=KioskSettings)
    collect: CollectSettings = field(default_factory=CollectSettings)
