"""``livecam kiosk``: its flags, and the wiring from a config to a supervised, watched display.

The CLI adds the subcommand with :func:`add_kiosk_arguments` and calls :func:`run_kiosk`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from livecam.cli import API_KEY_ENV, EXIT_OK, configure_logging, resolved_api, stop_on_signals
from livecam.client import ApiConfig
from livecam.display import Display, HeadlessDisplay, WindowDisplay
from livecam.errors import ConfigError
from livecam.kiosk.app import Supervisor
from livecam.kiosk.config import OPTIONS, KioskConfig, Option, build_config, parse_color, read_toml
from livecam.kiosk.cursor import HiddenCursor
from livecam.kiosk.display import KioskDisplay
from livecam.kiosk.orientation import OrientedSource
from livecam.kiosk.web import FrameHub, WebView
from livecam.overlay import OverlayStyle
from livecam.pipeline import LiveConfig, LivePipeline
from livecam.sources import CaptureOptions, VideoSource, open_source

log = logging.getLogger(__name__)

_TABLE_TITLES = {
    "source": "video source ([source] in the config file)",
    "api": "detection API ([api])",
    "overlay": "overlay ([overlay])",
    "display": "screen ([display])",
    "kiosk": "kiosk behaviour and browser view ([kiosk])",
}


def add_kiosk_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per config option; a flag given overrides the file."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="KIOSK.toml",
        help="the kiosk's TOML config file (every option below can be set there)",
    )
    groups: dict[str, Any] = {}
    for option in OPTIONS:
        group = groups.get(option.table) or parser.add_argument_group(_TABLE_TITLES[option.table])
        groups[option.table] = group
        dest = _dest(option)
        if option.metavar is None:
            group.add_argument(
                option.flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=option.help
            )
        elif option.key == "colors":
            group.add_argument(option.flag, dest=dest, action="append", metavar=option.metavar, help=option.help)
        else:
            group.add_argument(option.flag, dest=dest, type=option.from_text, metavar=option.metavar, help=option.help)


def load_kiosk_config(args: argparse.Namespace) -> KioskConfig:
    """The config file (if any) overridden by the flags given.

    Raises:
        ConfigError: naming the key and line, or the flag, of the first bad value.
    """
    file_values = read_toml(args.config) if args.config is not None else {}
    flags: dict[Option, Any] = {}
    for option in OPTIONS:
        value = getattr(args, _dest(option), None)
        if value is None:
            continue
        flags[option] = _colors_from_flags(value) if option.key == "colors" else value
    return build_config(file_values, flags)


def run_kiosk(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the kiosk until SIGINT/SIGTERM or the quit keys; errors after start never end it.

    Raises:
        ConfigError: a bad config file or flag (the only reason it ends early).
    """
    config = load_kiosk_config(args)
    # The key may come from the file, which the CLI's log filter has not seen yet.
    configure_logging(
        getattr(args, "verbose", 0) - getattr(args, "quiet", 0), config.api.api_key or env.get(API_KEY_ENV)
    )
    make_source(config)  # a malformed source spec is a config error, reported now
    stop = threading.Event()
    with resolved_api(_api_namespace(config), env) as api, stop_on_signals(stop):
        return _serve(config, api, stop)


def make_source(config: KioskConfig) -> VideoSource:
    """The configured source, turned as configured (not opened).

    Raises:
        ConfigError: a malformed source spec.
    """
    spec = config.source
    options = CaptureOptions(width=spec.width, height=spec.height, fps=spec.fps, fourcc=spec.fourcc)
    source = open_source(spec.input, options)
    orientation = config.display.orientation
    return source if orientation.identity else OrientedSource(source, orientation)


def live_config(config: KioskConfig) -> LiveConfig:
    """The pipeline options for the kiosk's overlay settings."""
    overlay = config.overlay
    style = OverlayStyle(labels=overlay.labels, show_confidence=overlay.show_confidence, colors=dict(overlay.colors))
    return LiveConfig(in_flight=config.api.in_flight, max_prediction_age=overlay.max_age, hud=overlay.hud, style=style)


def make_display(config: KioskConfig, stop: threading.Event, hub: FrameHub | None) -> KioskDisplay:
    """The kiosk screen: fullscreen, reopened if closed, or headless."""
    inner: Display = (
        HeadlessDisplay()
        if config.display.headless
        else WindowDisplay(
            config.overlay.title, fullscreen=True, recreate_on_close=True, screen_size=config.display.size
        )
    )
    return KioskDisplay(
        inner, config.kiosk.quit, stop, caption=config.overlay.caption, publish=hub.publish if hub is not None else None
    )


def _serve(config: KioskConfig, api: ApiConfig, stop: threading.Event) -> int:
    settings = config.kiosk
    hub = FrameHub(settings.web_fps, max_viewers=settings.web_viewers) if settings.web is not None else None
    display = make_display(config, stop, hub)
    options = live_config(config)

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        return LivePipeline(make_source(config), api, display, options, stop=pipeline_stop)

    supervisor = Supervisor(
        make_pipeline, display, stop, watchdog_s=settings.watchdog, blank_size=config.display.size or (1280, 720)
    )
    web: WebView | None = None
    if hub is not None and settings.web is not None:

        def stats() -> dict[str, Any]:
            return {**supervisor.stats(), "viewers": hub.viewers}

        web = WebView(settings.web, hub, stats, title=config.overlay.title)
        web.start()
    log.info(
        "kiosk started: %s, watchdog %.0f s, quit keys %s", config.source.input, settings.watchdog, settings.quit.text
    )
    try:
        with contextlib.ExitStack() as screen:
            if not config.display.headless:
                screen.enter_context(HiddenCursor())
            supervisor.run()
    finally:
        if web is not None:
            web.close()
        display.shutdown()
    log.info("kiosk stopped after %d pipeline restarts", supervisor.restarts)
    return EXIT_OK


def _api_namespace(config: KioskConfig) -> argparse.Namespace:
    """The API settings in the shape :func:`livecam.cli.resolved_api` reads."""
    api, overlay = config.api, config.overlay
    return argparse.Namespace(
        api_url=api.api_url,
        model=api.model,
        api_key=api.api_key,
        confidence=overlay.confidence,
        overlap=api.overlap,
        classes=",".join(overlay.classes) if overlay.classes else None,
        max_side=api.max_side,
        jpeg_quality=api.jpeg_quality,
        in_flight=api.in_flight,
        timeout=api.timeout,
        encoder=api.encoder,
    )


def _colors_from_flags(values: list[str]) -> dict[str, Any]:
    colors: dict[str, Any] = {}
    for value in values:
        name, sep, color = value.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--color: use CLASS=#RRGGBB, e.g. person=#ff8800 (got {value!r})")
        try:
            parse_color(color)
        except ValueError as exc:
            raise ConfigError(f"--color {name.strip()}: {exc}") from exc
        colors[name.strip()] = color.strip()
    return colors


def _dest(option: Option) -> str:
    return f"kiosk_{option.table}_{option.dest}"
