"""The kiosk's configuration: one TOML file, every option also a command-line flag.

Usage::

    file_values = read_toml(Path("kiosk.toml"))        # ConfigError names the key and line
    config = build_config(file_values, flag_values)    # flags override the file

Each option lives in a table and has a flag of (nearly) the same name; :data:`OPTIONS` is the
single list both the file reader and the argument parser are built from. Values are checked
the same way whether they come from the file or a flag.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livecam.encode import ENCODER_NAMES
from livecam.errors import ConfigError
from livecam.kiosk.keys import QuitSequence
from livecam.kiosk.orientation import ROTATIONS, Orientation
from livecam.overlay import Color

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Validator = Callable[[Any], Any]
"""Checks a value from the file or a flag and returns it typed; raises ValueError saying what is wrong."""


@dataclass(frozen=True)
class SourceSettings:
    """``[source]``: what to show (the ``run`` command's SOURCE and camera options)."""

    input: str = "0"
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None


@dataclass(frozen=True)
class ApiSettings:
    """``[api]``: the detection API, with the same names as the ``run`` command's API flags."""

    api_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    overlap: float = 30.0
    max_side: int = 640
    jpeg_quality: int = 80
    in_flight: int = 1
    timeout: float = 10.0
    encoder: str = "auto"


@dataclass(frozen=True)
class OverlaySettings:
    """``[overlay]``: what is drawn over the picture."""

    classes: tuple[str, ...] | None = None
    confidence: float = 40.0
    labels: bool = True
    show_confidence: bool = True
    colors: Mapping[str, Color] = field(default_factory=dict)
    hud: bool = False
    title: str = "livecam"
    caption: str = ""
    max_age: float = 3.0


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


@dataclass(frozen=True)
class KioskSettings:
    """``[kiosk]``: unattended behaviour and the browser view."""

    watchdog: float = 10.0
    quit: QuitSequence = field(default_factory=lambda: QuitSequence.parse("qqq"))
    web: tuple[str, int] | None = None
    web_fps: float = 10.0
    web_viewers: int = 8


@dataclass(frozen=True)
class KioskConfig:
    """Everything the kiosk needs, checked."""

    source: SourceSettings = field(default_factory=SourceSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    overlay: OverlaySettings = field(default_factory=OverlaySettings)
    display: DisplaySettings = field(default_factory=DisplaySettings)
    kiosk: KioskSettings = field(default_factory=KioskSettings)


# --- validators -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string (got {_show(value)})")
    return value


def _integer(lo: int, hi: int) -> Validator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number (got {_show(value)})")
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi} (got {value})")
        return value

    return check


def _number(lo: float, hi: float, *, above: bool = False) -> Validator:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number (got {_show(value)})")
        if (value <= lo if above else value < lo) or value > hi:
            bound = f"above {lo:g}" if above else f"at least {lo:g}"
            raise ValueError(f"must be {bound} and at most {hi:g} (got {value})")
        return float(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false (got {_show(value)})")
    return value


def _choice(*allowed: Any) -> Validator:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or value not in allowed:
            raise ValueError(f"must be one of {', '.join(str(a) for a in allowed)} (got {_show(value)})")
        return value

    return check


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f'must be a list of class names, e.g. ["person", "car"] (got {_show(value)})')
    return tuple(v.strip() for v in value)


_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


def parse_color(value: Any) -> Color:
    """``"#RRGGBB"`` or ``[R, G, B]`` as a BGR colour.

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, str) and (match := _HEX.fullmatch(value.strip())):
        rgb = bytes.fromhex(match.group(1))
        return rgb[2], rgb[1], rgb[0]
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)
    ):
        return int(value[2]), int(value[1]), int(value[0])
    raise ValueError(f'must be a colour "#RRGGBB" or [R, G, B] (got {_show(value)})')


def _colors(value: Any) -> dict[str, Color]:
    if not isinstance(value, Mapping):
        raise ValueError(f'must be a table of class = "#RRGGBB" (got {_show(value)})')
    colors: dict[str, Color] = {}
    for name, color in value.items():
        try:
            colors[str(name)] = parse_color(color)
        except ValueError as exc:
            raise _NestedError(str(name), str(exc)) from exc
    return colors


def _split_names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _size(value: Any) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", value.strip().lower()) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'must be WIDTHxHEIGHT, e.g. "1920x1080" (got {_show(value)})')
    return int(match.group(1)), int(match.group(2))


def _host_port(value: Any) -> tuple[str, int] | None:
    if isinstance(value, str) and value.strip().lower() in ("", "off", "none"):
        return None
    match = re.fullmatch(r"(?:\[?([^\s\]]*)\]?:)?(\d{1,5})", value.strip()) if isinstance(value, str) else None
    if match is None or not 0 <= int(match.group(2)) <= 65535:
        raise ValueError(f'must be HOST:PORT or PORT, e.g. "127.0.0.1:8080" (got {_show(value)})')
    return match.group(1) or "127.0.0.1", int(match.group(2))


def _quit(value: Any) -> QuitSequence:
    try:
        return QuitSequence.parse(_text(value))
    except ConfigError as exc:
        raise ValueError(str(exc)) from exc


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return str(value)


class _NestedError(ValueError):
    """A bad value inside a table-valued option (e.g. one colour of ``colors``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# --- the option list --------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One setting: where it lives in the file, its flag, and how it is checked.

    Attributes:
        table: the TOML table, e.g. ``display``.
        key: the key in that table, e.g. ``rotation``.
        flag: the command-line flag, e.g. ``--rotation``.
        check: validates a value from either place.
        help: one line for ``--help``.
        metavar: how ``--help`` shows the value; None for on/off flags.
        from_text: turns the flag's text into the value ``check`` expects.
    """

    table: str
    key: str
    flag: str
    check: Validator
    help: str
    metavar: str | None = "VALUE"
    from_text: Callable[[str], Any] = str

    @property
    def dest(self) -> str:
        """The attribute name in both the settings dataclass and argparse's namespace."""
        return self.key.replace("-", "_")

    @property
    def name(self) -> str:
        """``table.key``, as error messages show it."""
        return f"{self.table}.{self.key}"


OPTIONS: tuple[Option, ...] = (
    Option(
        "source",
        "input",
        "--source",
        _text,
        "camera index, video file, stream URL or synthetic:WxH@FPS (default: 0)",
        "SOURCE",
    ),
    Option(
        "source", "width", "--width", _integer(16, 16384), "ask the camera for this frame width", "PX", from_text=int
    ),
    Option(
        "source", "height", "--height", _integer(16, 16384), "ask the camera for this frame height", "PX", from_text=int
    ),
    Option(
        "source",
        "fps",
        "--fps",
        _number(0, 500, above=True),
        "ask the camera for this frame rate",
        "FPS",
        from_text=float,
    ),
    Option("source", "fourcc", "--fourcc", _text, "camera pixel format, e.g. MJPG", "CODE"),
    Option("api", "api-url", "--api-url", _text, "detection API base URL (default: the embedded server)", "URL"),
    Option("api", "model", "--model", _text, "model id, e.g. my-project/3", "PROJECT/VERSION"),
    Option(
        "api", "api-key", "--api-key", _text, "Roboflow API key (or the ROBOFLOW_API_KEY environment variable)", "KEY"
    ),
    Option(
        "api",
        "overlap",
        "--overlap",
        _number(0, 100),
        "NMS overlap threshold in percent (default: 30)",
        "0-100",
        from_text=float,
    ),
    Option(
        "api",
        "max-side",
        "--max-side",
        _integer(0, 8192),
        "downsize frames to this longest side before sending; 0 sends full size (default: 640)",
        "PX",
        from_text=int,
    ),
    Option(
        "api",
        "jpeg-quality",
        "--jpeg-quality",
        _integer(1, 100),
        "JPEG quality of sent frames (default: 80)",
        "Q",
        from_text=int,
    ),
    Option("api", "in-flight", "--in-flight", _integer(1, 16), "concurrent requests (default: 1)", "K", from_text=int),
    Option(
        "api",
        "timeout",
        "--timeout",
        _number(0, 300, above=True),
        "seconds to wait for an answer (default: 10)",
        "S",
        from_text=float,
    ),
    Option("api", "encoder", "--encoder", _choice(*ENCODER_NAMES), "JPEG encoder (default: auto)", "NAME"),
    Option(
        "overlay",
        "classes",
        "--classes",
        _names,
        "only show these classes (comma separated on the command line)",
        "A,B",
        from_text=_split_names,
    ),
    Option(
        "overlay",
        "confidence",
        "--confidence",
        _number(0, 100),
        "minimum confidence in percent (default: 40)",
        "0-100",
        from_text=float,
    ),
    Option("overlay", "labels", "--labels", _boolean, "draw class labels (default: on)", None),
    Option(
        "overlay",
        "show-confidence",
        "--show-confidence",
        _boolean,
        "append the confidence to labels (default: on)",
        None,
    ),
    Option(
        "overlay", "colors", "--color", _colors, "colour of a class, e.g. person=#ff8800 (repeatable)", "CLASS=#RRGGBB"
    ),
    Option("overlay", "hud", "--hud", _boolean, "show the fps/latency panel (default: off)", None),
    Option("overlay", "title", "--title", _text, "window and web page title (default: livecam)", "TEXT"),
    Option("overlay", "caption", "--caption", _text, "text shown in the top-left corner of the picture", "TEXT"),
    Option(
        "overlay",
        "max-age",
        "--max-age",
        _number(0, 3600, above=True),
        "hide detections older than this (default: 3 s)",
        "S",
        from_text=float,
    ),
    Option(
        "display",
        "size",
        "--screen-size",
        _size,
        "monitor size; fullscreen then also places the window at 0,0 with this size (needed without a window manager)",
        "WxH",
    ),
    Option(
        "display",
        "rotation",
        "--rotation",
        _choice(*ROTATIONS),
        "turn the picture clockwise (0, 90, 180, 270)",
        "DEG",
        from_text=int,
    ),
    Option("display", "mirror", "--mirror", _boolean, "flip the picture left to right (default: off)", None),
    Option("display", "headless", "--headless", _boolean, "no window, only the web view (default: off)", None),
    Option(
        "kiosk",
        "watchdog",
        "--watchdog",
        _number(1, 3600),
        "restart the pipeline when no frame was shown for this many seconds (default: 10)",
        "S",
        from_text=float,
    ),
    Option(
        "kiosk",
        "quit",
        "--quit",
        _quit,
        "keys that quit when typed within 2 s, e.g. qqq or 'esc esc q'; none disables (default: qqq)",
        "KEYS",
    ),
    Option(
        "kiosk",
        "web",
        "--web",
        _host_port,
        "serve the browser view on HOST:PORT (default: off; host defaults to 127.0.0.1)",
        "HOST:PORT",
    ),
    Option(
        "kiosk",
        "web-fps",
        "--web-fps",
        _number(0.5, 60),
        "frame rate of the browser view (default: 10)",
        "FPS",
        from_text=float,
    ),
    Option(
        "kiosk",
        "web-viewers",
        "--web-viewers",
        _integer(1, 64),
        "most browser viewers at once (default: 8)",
        "N",
        from_text=int,
    ),
)

_TABLES: dict[str, type[Any]] = {
    "source": SourceSettings,
    "api": ApiSettings,
    "overlay": OverlaySettings,
    "display": DisplaySettings,
    "kiosk": KioskSettings,
}
_BY_NAME = {(o.table, o.key): o for o in OPTIONS}

FileValues = dict[Option, Any]
"""Checked values by option."""


# --- reading the file ---------------------------------------------------------------------------


def read_toml(path: Path) -> FileValues:
    """Read and check a kiosk TOML file.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid TOML, has an unknown
            table or key, or a bad value. Every problem is listed with its line number.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read kiosk config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"kiosk config {path} is not UTF-8 text") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    values: FileValues = {}
    problems: list[str] = []

    def fail(where: tuple[str, ...], message: str) -> None:
        line = find_line(text, where)
        problems.append(f"{path}{f' line {line}' if line else ''}: {'.'.join(where)}: {message}")

    for table, entries in data.items():
        if table not in _TABLES:
            fail(
                (table,),
                f"unknown table{_suggest(table, list(_TABLES))}; tables are {', '.join(f'[{t}]' for t in _TABLES)}",
            )
            continue
        if not isinstance(entries, dict):
            fail((table,), f"must be a table [{table}], not a value")
            continue
        for key, raw in entries.items():
            option = _BY_NAME.get((table, key))
            if option is None:
                fail((table, key), f"unknown key{_hint(table, key)}")
                continue
            try:
                values[option] = option.check(raw)
            except _NestedError as exc:
                fail((table, key, exc.key), str(exc))
            except ValueError as exc:
                fail((table, key), str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return values


def find_line(text: str, where: tuple[str, ...]) -> int | None:
    """The line number where the key path ``where`` is set in TOML ``text`` (1-based).

    tomllib reports no positions, so the text is scanned: table headers set the current
    table, and a line ``key = ...`` (or a dotted ``a.b = ...``) matches when the current table
    plus its key equals ``where``. When ``where`` itself is not found (an entry of an inline
    table), its nearest enclosing key or table is reported instead.
    """
    for depth in range(len(where), 0, -1):
        line = _find_exact(text, where[:depth])
        if line is not None:
            return line
    return None


_HEADER = re.compile(r"^\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY_LINE = re.compile(r"""^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _find_exact(text: str, where: tuple[str, ...]) -> int | None:
    current: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = _HEADER.match(line)
        if header is not None:
            current = _dotted(header.group(1))
            if current == where:
                return number
            continue
        key = _KEY_LINE.match(line)
        if key is not None and current + _dotted(key.group(1)) == where:
            return number
    return None


def _dotted(path: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", path)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word.replace("_", "-"), candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hint(table: str, key: str) -> str:
    elsewhere = [o.name for o in OPTIONS if o.key == key.replace("_", "-") and o.table != table]
    if elsewhere:
        return f" here (did you mean {elsewhere[0]!r}?)"
    keys = [o.key for o in OPTIONS if o.table == table]
    return _suggest(key, keys) or f"; [{table}] keys are {', '.join(keys)}"


# --- merging ------------------------------------------------------------------------------------


def check_flag(option: Option, value: Any) -> Any:
    """Check a value given on the command line.

    Raises:
        ConfigError: naming the flag.
    """
    try:
        return option.check(value)
    except ValueError as exc:
        raise ConfigError(f"{option.flag}: {exc}") from exc


def build_config(file_values: Mapping[Option, Any], flag_values: Mapping[Option, Any]) -> KioskConfig:
    """The settings: each flag given overrides the file, which overrides the default.

    Args:
        file_values: from :func:`read_toml` (already checked).
        flag_values: options given on the command line (checked here).

    Raises:
        ConfigError: a bad flag value, or a combination that cannot work.
    """
    merged: dict[str, dict[str, Any]] = {table: {} for table in _TABLES}
    for option, value in file_values.items():
        merged[option.table][option.dest] = value
    for option, value in flag_values.items():
        merged[option.table][option.dest] = check_flag(option, value)
    sections = {table: cls(**merged[table]) for table, cls in _TABLES.items()}
    config = KioskConfig(**sections)
    if config.api.max_side and config.api.max_side < 32:
        raise ConfigError(f"api.max-side must be 0 or at least 32 pixels (got {config.api.max_side})")
    return config


def describe(config: KioskConfig) -> dict[str, Any]:
    """The settings as plain data for a log line or ``/stats``, without the API key."""
    data = dataclasses.asdict(config)
    data["api"].pop("api_key", None)
    data["kiosk"]["quit"] = config.kiosk.quit.text
    return data
