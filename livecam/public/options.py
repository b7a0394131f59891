"""Every option, declared once: the flags, the kiosk's TOML file and the Python keywords take them.

Each :class:`Option` names its kiosk table and key, its flag, its Python keyword and one
validator; the flags of ``run``, ``annotate`` and ``kiosk`` (:mod:`livecam.cli.flags`), the kiosk
file reader (:mod:`livecam.cli.kiosk_file`) and the Python API's keywords (:func:`keyword_values`)
all come from these declarations, so a value is checked the same way wherever it comes from.

    values = keyword_values({"confidence": 50}, API_OPTIONS)   # {option: checked value}
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livecam.collect.config import STRATEGY_NAMES, CollectConfig, parse_band, parse_strategies
from livecam.connection import AUTO_MAX_IN_FLIGHT, ApiSettings
from livecam.cost.policy import SEND_MODES
from livecam.detector.bundled import DEFAULT_PRECISION, PRECISIONS
from livecam.encode import ENCODER_NAMES
from livecam.errors import ConfigError
from livecam.kiosk.config import KioskConfig
from livecam.kiosk.keys import QuitSequence
from livecam.kiosk.orientation import ROTATIONS
from livecam.live.pipeline import LiveConfig
from livecam.net import parse_allowed_hosts
from livecam.overlay import Color, OverlayStyle

Validator = Callable[[Any], Any]
"""Checks a value from the file or a flag and returns it typed; raises ValueError saying what is wrong."""

# --- validators -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string (got {_show(value)})")
    return value


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a path (got {_show(value)})")
    return Path(value).expanduser()


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


def _urls(value: Any) -> tuple[str, ...]:
    urls = [value] if isinstance(value, str) else value
    if not isinstance(urls, list | tuple) or not urls or not all(isinstance(u, str) and u.strip() for u in urls):
        raise ValueError(
            f'must be a URL or a list of URLs, e.g. ["http://a:9001", "http://b:9001"] (got {_show(value)})'
        )
    for url in urls:
        if not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https:// (got {_show(url)})")
    return tuple(dict.fromkeys(u.strip() for u in urls))


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
            raise NestedError(str(name), str(exc)) from exc
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


def _host_names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise ValueError(f'must be host names, e.g. ["camera.lan", "kiosk.example"] (got {_show(value)})')
    return parse_allowed_hosts(value)


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


def _strategies(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        names = parse_strategies(value)
    elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        names = parse_strategies(",".join(value))
    else:
        raise ValueError(f'must be strategy names, e.g. ["low-confidence", "vanished"] (got {_show(value)})')
    unknown = [n for n in names if n not in STRATEGY_NAMES]
    if unknown or not names:
        raise ValueError(
            f"unknown {', '.join(map(repr, unknown)) or 'empty list'}; choose from {', '.join(STRATEGY_NAMES)} or all"
        )
    return names


def _band(value: Any) -> tuple[float, float]:
    if isinstance(value, str):
        low, high = parse_band(value)
    elif (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise ValueError(f'must be LOW-HIGH, e.g. "0.25-0.55" (got {_show(value)})')
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"must satisfy 0 <= LOW <= HIGH <= 1 (got {low:g}-{high:g})")
    return low, high


def _on_off(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("on", "off", "true", "false"):
        return value.strip().lower() in ("on", "true")
    raise ValueError(f"must be on or off (got {_show(value)})")


LABEL_PARTS = ("class", "confidence", "id")
"""What a box's label can show, in the order it shows them."""


def _label_parts(value: Any) -> bool | tuple[str, ...]:
    """``on``/``off``/``none`` (or true/false) as a bool, a list of parts as a tuple."""
    given = value
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("on", "true", "off", "false", "none"):
            return word in ("on", "true")
        value = _split_names(word)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        unknown = [v for v in value if v not in LABEL_PARTS]
        if not unknown:
            return tuple(part for part in LABEL_PARTS if part in value)
    raise ValueError(f"must be none, on or a comma list of {', '.join(LABEL_PARTS)} (got {_show(given)})")


def label_style(
    labels: bool | tuple[str, ...], show_confidence: bool = True, base: OverlayStyle | None = None
) -> OverlayStyle:
    """``base`` with the labels ``--labels`` and ``--show-confidence`` ask for."""
    parts = ("class", "confidence") if labels is True else () if labels is False else labels
    if not show_confidence:
        parts = tuple(part for part in parts if part != "confidence")
    return dataclasses.replace(
        base or OverlayStyle(),
        labels=bool(parts),
        show_class="class" in parts,
        show_confidence="confidence" in parts,
        show_track_id="id" in parts,
    )


class NestedError(ValueError):
    """A bad value inside a table-valued option (e.g. one colour of ``colors``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


# --- the option list --------------------------------------------------------------------------


_GRID = re.compile(r"^\s*(\d{1,2})\s*[xX]\s*(\d{1,2})\s*$")


def _grid(value: Any) -> tuple[int, int]:
    match = _GRID.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"expected COLSxROWS such as 2x2, got {value!r}")
    return int(match.group(1)), int(match.group(2))


def _weights(value: Any) -> tuple[float, ...]:
    parts = value.split(",") if isinstance(value, str) else value
    try:
        weights = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        raise ValueError(f"expected numbers separated by commas such as 2,1,1, got {value!r}") from None
    if not weights or any(not (0 < w < 1e6) for w in weights):
        raise ValueError(f"each weight must be a positive number, got {value!r}")
    return weights


def _in_flight(value: Any) -> int | str:
    if value == "auto":
        return "auto"
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ValueError(f"must be a whole number or 'auto' (got {_show(value)})") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be a whole number or 'auto' (got {_show(value)})")
    if not 1 <= value <= AUTO_MAX_IN_FLIGHT:
        raise ValueError(f"must be at least 1 and at most {AUTO_MAX_IN_FLIGHT}, or 'auto' (got {value})")
    return value


@dataclass(frozen=True)
class Option:
    """One setting: where it lives in the kiosk file, its flag, and how it is checked.

    Attributes:
        table: the kiosk TOML table, e.g. ``display``.
        key: the key in that table, e.g. ``rotation``.
        flag: the command-line flag, e.g. ``--rotation``.
        check: validates a value from either place.
        help: one line for ``--help``.
        metavar: how ``--help`` shows the value; None for on/off flags.
        from_text: turns the flag's text into the value ``check`` expects.
        repeat: the flag may be given several times; its values are collected in a list.
    """

    table: str
    key: str
    flag: str
    check: Validator
    help: str
    metavar: str | None = "VALUE"
    from_text: Callable[[str], Any] = str
    repeat: bool = False

    @property
    def dest(self) -> str:
        """The attribute name in the settings dataclasses and in argparse's namespace."""
        return self.key.replace("-", "_")

    @property
    def name(self) -> str:
        """``table.key``, as error messages show it."""
        return f"{self.table}.{self.key}"

    @property
    def keyword(self) -> str:
        """The Python keyword: the flag's long name with underscores (``--max-age`` is ``max_age``)."""
        return self.flag.removeprefix("--").replace("-", "_")


_API = ApiSettings()
"""The API defaults, for the help texts."""

_KIOSK = KioskConfig()
"""The kiosk file's defaults, for the help texts."""

_LIVE = LiveConfig()
"""The defaults of ``run`` (and of the Python ``run`` and ``stream``), for the help texts."""


def _on(value: bool) -> str:
    return "on" if value else "off"


SOURCE_OPTIONS: tuple[Option, ...] = (
    Option("source", "width", "--width", _integer(16, 16384), "ask the camera for this frame width", "PX", int),
    Option("source", "height", "--height", _integer(16, 16384), "ask the camera for this frame height", "PX", int),
    Option("source", "fps", "--fps", _number(0, 500, above=True), "ask the camera for this frame rate", "FPS", float),
    Option("source", "fourcc", "--fourcc", _text, "camera pixel format, e.g. MJPG for USB cameras", "CODE"),
    Option(
        "source",
        "stall-timeout",
        "--stall-timeout",
        _number(0, 3600, above=True),
        "a stream with no new frame for this long is stalled: a banner, a log line, and a reconnect "
        "if its read is stuck (default: 3)",
        "S",
        float,
    ),
)
"""Camera and stream options of ``run`` and the kiosk's ``[source]`` table."""

API_OPTIONS: tuple[Option, ...] = (
    Option(
        "api",
        "api-url",
        "--api-url",
        _urls,
        "base URL: a self-hosted inference server (http://localhost:9001), https://detect.roboflow.com, "
        "or livecam serve (default: the embedded server); repeat it for several servers of the same model, "
        "which share the requests",
        "URL",
        repeat=True,
    ),
    Option("api", "model", "--model", _text, "model id, e.g. my-project/3", "PROJECT/VERSION"),
    Option("api", "api-key", "--api-key", _text, "Roboflow API key (default: $ROBOFLOW_API_KEY)", "KEY"),
    Option(
        "overlay",
        "confidence",
        "--confidence",
        _number(0, 100),
        f"minimum confidence, percent 0-100; a value below 1 is read as a fraction (default: {_API.confidence:g})",
        "0-100",
        float,
    ),
    Option(
        "api",
        "overlap",
        "--overlap",
        _number(0, 100),
        f"NMS overlap threshold, percent 0-100; a value below 1 is read as a fraction (default: {_API.overlap:g})",
        "0-100",
        float,
    ),
    Option(
        "overlay",
        "classes",
        "--classes",
        _names,
        "only show these classes (comma separated on the command line)",
        "A,B",
        _split_names,
    ),
    Option(
        "api",
        "max-side",
        "--max-side",
        _integer(0, 8192),
        "downsize frames so the longest side is at most PX before sending; 0 sends full size "
        f"(default: {_API.max_side})",
        "PX",
        int,
    ),
    Option(
        "api",
        "jpeg-quality",
        "--jpeg-quality",
        _integer(1, 100),
        f"JPEG quality of sent frames (default: {_API.jpeg_quality})",
        "Q",
        int,
    ),
    Option(
        "api",
        "in-flight",
        "--in-flight",
        _in_flight,
        "concurrent requests per server (default: 1); 'auto' sends every frame with up to "
        f"{AUTO_MAX_IN_FLIGHT} requests open: the freshest boxes a slow network allows, at one request per frame",
        "K",
    ),
    Option(
        "api",
        "timeout",
        "--timeout",
        _number(0, 300, above=True),
        f"seconds to wait for an answer (default: {_API.timeout:g})",
        "S",
        float,
    ),
    Option(
        "api",
        "encoder",
        "--encoder",
        _choice(*ENCODER_NAMES),
        f"JPEG encoder (default: {_API.encoder} = OpenCV, measured as fast as PyTurboJPEG; turbojpeg needs "
        "pip install 'livecam[turbojpeg]')",
        "NAME",
    ),
    Option(
        "api",
        "precision",
        "--precision",
        _choice(*PRECISIONS),
        f"the embedded server's model: {', '.join(PRECISIONS)} (default: {DEFAULT_PRECISION}, about twice as fast "
        "as fp32); only without --api-url and --model",
        "P",
    ),
)
"""The detection API options of ``run``, ``annotate`` and ``kiosk`` (and its ``[api]`` table)."""

MOTION = Option(
    "overlay",
    "motion",
    "--motion",
    _on_off,
    "move the boxes with their objects between answers, so they are drawn where the objects are now "
    f"(default: {_on(_LIVE.motion)})",
    "on|off",
)
LABELS = Option(
    "overlay",
    "labels",
    "--labels",
    _label_parts,
    "what box labels show: a comma list of class, confidence, id (the track number), or none; "
    f"on = class,confidence (default: {_on(_LIVE.style.labels)})",
    "PARTS",
)
MAX_AGE = Option(
    "overlay",
    "max-age",
    "--max-age",
    _number(0, 3600, above=True),
    f"hide detections older than this (default: {_KIOSK.overlay.max_age:g} s)",
    "S",
    float,
)
DRAWING_OPTIONS: tuple[Option, ...] = (MOTION, LABELS)
"""How boxes are drawn, for ``run`` and the kiosk's ``[overlay]`` table."""

SEND = Option(
    "api",
    "send",
    "--send",
    _choice(*SEND_MODES),
    "every: ask about the newest frame whenever a server has room; changes: only about frames that may "
    "change what is drawn (something new in the picture, a box that lost its object, or --refresh passed). "
    "Default: changes for Roboflow's hosted API (it bills every call), every otherwise",
    "MODE",
)
REFRESH = Option(
    "api",
    "refresh",
    "--refresh",
    _number(0, 3600, above=True),
    f"with --send changes, ask again after this many seconds even if nothing changed (default: {_API.refresh:g})",
    "S",
    float,
)
MAX_REQUESTS = Option(
    "api",
    "max-requests-per-minute",
    "--max-requests-per-minute",
    _integer(1, 100_000),
    "at most N calls in any minute over all servers, spread evenly (default: no limit)",
    "N",
    int,
)
SEND_OPTIONS: tuple[Option, ...] = (SEND, REFRESH, MAX_REQUESTS)
"""Which frames are sent: ``run`` and the kiosk's ``[api]`` table."""

KIOSK_OPTIONS: tuple[Option, ...] = (
    *DRAWING_OPTIONS,
    Option(
        "overlay",
        "show-confidence",
        "--show-confidence",
        _boolean,
        f"append the confidence to labels (default: {_on(_KIOSK.overlay.show_confidence)})",
        None,
    ),
    Option(
        "overlay",
        "colors",
        "--color",
        _colors,
        "colour of a class, e.g. person=#ff8800 (repeatable)",
        "CLASS=#RRGGBB",
        repeat=True,
    ),
    Option(
        "overlay", "hud", "--hud", _boolean, f"show the fps/latency panel (default: {_on(_KIOSK.overlay.hud)})", None
    ),
    Option(
        "overlay", "title", "--title", _text, f"window and web page title (default: {_KIOSK.overlay.title})", "TEXT"
    ),
    Option("overlay", "caption", "--caption", _text, "text shown in the top-left corner of the picture", "TEXT"),
    MAX_AGE,
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
        int,
    ),
    Option(
        "display",
        "mirror",
        "--mirror",
        _boolean,
        f"flip the picture left to right (default: {_on(_KIOSK.display.mirror)})",
        None,
    ),
    Option(
        "display",
        "headless",
        "--headless",
        _boolean,
        f"no window, only the web view (default: {_on(_KIOSK.display.headless)})",
        None,
    ),
    Option(
        "kiosk",
        "watchdog",
        "--watchdog",
        _number(1, 3600),
        f"restart the pipeline when no frame was shown for this many seconds (default: {_KIOSK.kiosk.watchdog:g})",
        "S",
        float,
    ),
    Option(
        "kiosk",
        "quit",
        "--quit",
        _quit,
        "keys that quit when typed within 2 s, e.g. qqq or 'esc esc q'; none disables "
        f"(default: {_KIOSK.kiosk.quit.text})",
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
        "allowed-hosts",
        "--allowed-hosts",
        _host_names,
        "names the browser view also answers to, besides its address and localhost (other Host headers "
        "get 421, against DNS rebinding); a leading dot allows subdomains, * allows any",
        "NAME,...",
    ),
    Option(
        "kiosk",
        "web-fps",
        "--web-fps",
        _number(0.5, 60),
        f"frame rate of the browser view (default: {_KIOSK.kiosk.web_fps:g})",
        "FPS",
        float,
    ),
    Option(
        "kiosk",
        "web-viewers",
        "--web-viewers",
        _integer(1, 64),
        f"most browser viewers at once (default: {_KIOSK.kiosk.web_viewers})",
        "N",
        int,
    ),
)
"""The kiosk's own options (overlay, screen, unattended behaviour)."""

SEVERAL_OPTIONS: tuple[Option, ...] = (
    Option(
        "run",
        "grid",
        "--grid",
        _grid,
        "with several sources, the grid's tiles, e.g. 3x2 (default: 1; 2 side by side; 2x2; 3x2; 3x3)",
        "COLSxROWS",
    ),
    Option(
        "run",
        "display-fps",
        "--display-fps",
        _number(0, 240, above=True),
        "with several sources, pictures per second at most (default: as often as the fastest source has a frame)",
        "FPS",
        float,
    ),
    Option(
        "run",
        "weight",
        "--weight",
        _weights,
        "with several sources, share the detection servers by these weights, one per source, e.g. 2,1,1 "
        "(default: equal shares, the camera that waited longest first)",
        "W1,W2,...",
    ),
)
"""How several sources share the screen and the servers (``run``; the kiosk takes them in ``[display]``)."""

HEADLESS = Option("run", "headless", "--headless", _boolean, "no window at all (servers, tests)", None)
FULLSCREEN = Option("run", "fullscreen", "--fullscreen", _boolean, "start fullscreen (toggle with f)", None)
RUN_OPTIONS: tuple[Option, ...] = (
    HEADLESS,
    FULLSCREEN,
    Option("run", "record", "--record", _path, "also write the annotated video", "OUT.mp4"),
    Option("run", "max-frames", "--max-frames", _integer(1, 10**12), "stop after N source frames", "N", int),
    Option(
        "run",
        "duration",
        "--duration",
        _number(0, 1e9, above=True),
        "stop after this many seconds",
        "SECONDS",
        float,
    ),
    Option("run", "stats-json", "--stats-json", _path, "write run statistics here at the end", "PATH"),
    MAX_AGE,
    Option(
        "run",
        "hud",
        "--hud",
        _boolean,
        f"show the fps/latency panel; --no-hud starts with it hidden (toggle with h) (default: {_on(_LIVE.hud)})",
        None,
    ),
    *DRAWING_OPTIONS,
    Option(
        "run",
        "boxes-log",
        "--boxes-log",
        _path,
        "write one JSON line per displayed frame with the boxes as drawn (after motion compensation)",
        "PATH.jsonl",
    ),
    Option(
        "run",
        "snapshot-dir",
        "--snapshot-dir",
        _path,
        f"where the s key saves PNG snapshots (default: {_LIVE.snapshot_dir})",
        "DIR",
    ),
    *SEVERAL_OPTIONS,
)
"""The display, limit and output options of ``run`` (and of the Python ``run`` and ``stream``)."""

_COLLECT = CollectConfig(Path("."))
"""The collect defaults, for the help texts."""

COLLECT_OPTIONS: tuple[Option, ...] = (
    Option(
        "collect",
        "dir",
        "--collect",
        _text,
        "save the frames worth labelling (full resolution JPEG, VOC pre-label, JSON sidecar) in DIR",
        "DIR",
    ),
    Option(
        "collect",
        "strategy",
        "--collect-strategy",
        _strategies,
        f"which frames: {', '.join(STRATEGY_NAMES)} or all, comma separated (default: {','.join(_COLLECT.strategies)})",
        "NAMES",
    ),
    Option(
        "collect",
        "band",
        "--collect-band",
        _band,
        "low-confidence: a box whose confidence lies in LOW-HIGH "
        f"(default: {_COLLECT.band[0]:g}-{_COLLECT.band[1]:g}; boxes under --confidence are asked for but not shown)",
        "LOW-HIGH",
    ),
    Option(
        "collect",
        "classes",
        "--collect-classes",
        _names,
        "the classes empty, vanished, count-change, classes and low-confidence look at (default: all)",
        "A,B",
        _split_names,
    ),
    Option(
        "collect",
        "count-jump",
        "--collect-count-jump",
        _integer(1, 10_000),
        f"count-change: boxes more or fewer than in the previous answer (default: {_COLLECT.count_jump})",
        "N",
        int,
    ),
    Option(
        "collect",
        "random",
        "--collect-random",
        _number(0, 1),
        f"random: the share of answered frames picked (default: {_COLLECT.random_share:g})",
        "SHARE",
        float,
    ),
    Option(
        "collect",
        "max-per-minute",
        "--collect-max-per-minute",
        _integer(0, 1_000_000),
        f"most frames saved in any minute; 0: no limit (default: {_COLLECT.max_per_minute})",
        "N",
        int,
    ),
    Option(
        "collect",
        "max-per-hour",
        "--collect-max-per-hour",
        _integer(0, 1_000_000),
        f"most frames saved in any hour; 0: no limit (default: {_COLLECT.max_per_hour})",
        "N",
        int,
    ),
    Option(
        "collect",
        "max-total",
        "--collect-max-total",
        _integer(0, 1_000_000_000),
        f"most items DIR may hold, counting earlier runs; 0: no limit (default: {_COLLECT.max_total})",
        "N",
        int,
    ),
    Option(
        "collect",
        "min-free-mb",
        "--collect-min-free-mb",
        _number(0, 1e9),
        f"stop collecting (one warning) when the disk has less free space (default: {_COLLECT.min_free_mb:g} MB)",
        "MB",
        float,
    ),
    Option(
        "collect",
        "min-difference",
        "--collect-min-difference",
        _number(0, 1),
        "skip a frame whose 16x16 thumbnail differs from a recent save's by less than this share "
        "of the grey range on average "
        f"(default: {_COLLECT.min_difference:g})",
        "SHARE",
        float,
    ),
)
"""Collecting frames for labelling: ``run``, ``annotate`` and the kiosk's ``[collect]`` table."""

KIOSK_SOURCE = Option(
    "source",
    "input",
    "--source",
    _text,
    "camera index, video file, stream URL or synthetic:WxH@FPS (default: 0)",
    "SOURCE",
)

OPTIONS: tuple[Option, ...] = (
    KIOSK_SOURCE,
    *SOURCE_OPTIONS,
    *API_OPTIONS,
    *SEND_OPTIONS,
    *KIOSK_OPTIONS,
    *COLLECT_OPTIONS,
)
"""Every option of the kiosk's file, in the order ``--help`` lists them."""


# --- values from the command line ----------------------------------------------------------------


def check_flag(option: Option, value: Any) -> Any:
    """Check a value given on the command line.

    Raises:
        ConfigError: naming the flag.
    """
    try:
        return option.check(value)
    except ValueError as exc:
        raise ConfigError(f"{option.flag}: {exc}") from exc


# --- the Python keywords ------------------------------------------------------------------------


def keyword_values(given: Mapping[str, Any], options: Iterable[Option]) -> dict[Option, Any]:
    """Python keywords (the long flag names with underscores), checked as the flags are; None is "not given".

    Raises:
        TypeError: a keyword no option has (naming it, and the closest one).
        ValueError: a bad value, naming its keyword.
    """
    by_keyword = {option.keyword: option for option in options}
    values: dict[Option, Any] = {}
    for name, value in given.items():
        option = by_keyword.get(name)
        if option is None:
            close = difflib.get_close_matches(name, list(by_keyword), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"unknown option {name!r}{hint}")
        if value is None:
            continue
        try:
            values[option] = option.check(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return values
