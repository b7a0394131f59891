"""``livecam kiosk``: its flags and file, and the wiring from a config to a supervised, watched display."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from livecam.cli.common import (
    EXIT_OK,
    configure_logging,
    stop_on_signals,
)
from livecam.cli.flags import add_options, given_values
from livecam.cli.kiosk_file import build_config, read_toml
from livecam.client import ApiConfig
from livecam.collect import Collector
from livecam.connection import API_KEY_ENV, ApiSettings
from livecam.display import Display, HeadlessDisplay, WindowDisplay, require_display
from livecam.errors import ConfigError
from livecam.kiosk.app import Supervisor
from livecam.kiosk.config import KioskConfig, SourceSettings
from livecam.kiosk.cursor import HiddenCursor
from livecam.kiosk.display import KioskDisplay
from livecam.kiosk.orientation import OrientedSource
from livecam.kiosk.web import FrameHub, WebView
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.overlay import OverlayStyle
from livecam.public.collecting import asking_low_confidence, collect_config, collecting
from livecam.public.live import camera_collector
from livecam.public.options import OPTIONS, Option, label_style, parse_color
from livecam.public.serve import connect
from livecam.redaction import redact_url
from livecam.sources import CaptureOptions, VideoSource, open_source

log = logging.getLogger(__name__)

_TABLE_TITLES = {
    "source": "video source ([source] in the config file)",
    "api": "detection API ([api])",
    "overlay": "overlay ([overlay])",
    "display": "screen ([display])",
    "kiosk": "kiosk behaviour and browser view ([kiosk])",
    "collect": "frames collected for labelling ([collect])",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per config option; a flag given overrides the file."""
    parser.add_argument(
        "--config",
        type=Path,
        metavar="KIOSK.toml",
        help="the kiosk's TOML config file (every option below can be set there)",
    )
    for table, title in _TABLE_TITLES.items():
        group = parser.add_argument_group(title)
        add_options(group, [o for o in OPTIONS if o.table == table], check=False, dest=_dest)


def load_kiosk_config(args: argparse.Namespace) -> KioskConfig:
    """The config file (if any) overridden by the flags given.

    Raises:
        ConfigError: naming the key and line, or the flag, of the first bad value.
    """
    file_values = read_toml(args.config) if args.config is not None else {}
    flags = given_values(args, OPTIONS, dest=_dest)
    for option, value in flags.items():
        if option.key == "colors":
            flags[option] = _colors_from_flags(value)
    return build_config(file_values, flags)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the kiosk until SIGINT/SIGTERM or the quit keys; errors after start never end it.

    Raises:
        ConfigError: a bad config file or flag (the only reason it ends early).
    """
    config = load_kiosk_config(args)
    # The key may come from the file, which the CLI's log filter has not seen yet.
    configure_logging(
        getattr(args, "verbose", 0) - getattr(args, "quiet", 0), config.api.api_key or env.get(API_KEY_ENV)
    )
    make_sources(config)  # a malformed source spec is a config error, reported now
    if not config.display.headless:
        require_display(env, "Headless, --web HOST:PORT shows the picture in a browser.")
    # Without a folder the [collect] table only holds settings for later: collection is off.
    to_collect = collect_config(dataclasses.asdict(config.collect)) if config.collect.dir else None
    stop = threading.Event()
    with stop_on_signals(stop), contextlib.ExitStack() as stack:
        api = asking_low_confidence(stack.enter_context(connect(api_choice(config, env))), to_collect)
        collector = stack.enter_context(collecting(to_collect, source=", ".join(_names(config)), model_id=api.model_id))
        return _serve(config, api, stop, collector)


def make_source(config: KioskConfig, spec: SourceSettings | None = None) -> VideoSource:
    """The configured source (``spec``, or the one ``[source]``), turned as configured (not opened).

    Raises:
        ConfigError: a malformed source spec.
    """
    spec = spec or config.source
    options = CaptureOptions(
        width=spec.width, height=spec.height, fps=spec.fps, fourcc=spec.fourcc, stall_timeout=spec.stall_timeout
    )
    source = open_source(spec.input, options)
    orientation = config.display.orientation_of(spec)
    return source if orientation.identity else OrientedSource(source, orientation)


def make_sources(config: KioskConfig) -> list[VideoSource]:
    """Every configured source: the ``[[source]]`` tables, or the one ``[source]``.

    Raises:
        ConfigError: a malformed source spec.
    """
    return [make_source(config, spec) for spec in config.sources] or [make_source(config)]


def _names(config: KioskConfig) -> list[str]:
    """What logs and sidecars call each source (credentials redacted)."""
    return [redact_url(spec.name or spec.input) for spec in config.sources or (config.source,)]


def live_config(config: KioskConfig, urls: Sequence[str] = ()) -> LiveConfig:
    """The pipeline options for the kiosk's overlay and sending settings (``urls``: the servers used)."""
    overlay = config.overlay
    style = label_style(overlay.labels, overlay.show_confidence, OverlayStyle(colors=dict(overlay.colors)))
    in_flight, adaptive = config.api.live_window
    return LiveConfig(
        in_flight=in_flight,
        adaptive=adaptive,
        max_prediction_age=overlay.max_age,
        hud=overlay.hud,
        style=style,
        motion=overlay.motion,
        send=config.api.send_policy(urls),
        camera_watchdog=config.kiosk.watchdog if config.sources else None,
    )


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


def _serve(config: KioskConfig, api: ApiConfig, stop: threading.Event, collector: Collector | None = None) -> int:
    settings = config.kiosk
    hub = FrameHub(settings.web_fps, max_viewers=settings.web_viewers) if settings.web is not None else None
    display = make_display(config, stop, hub)
    options = live_config(config, api.urls)

    names = _names(config)
    several = len(names) > 1
    cameras = [FrameHub(settings.web_fps, max_viewers=settings.web_viewers) for _ in names] if hub and several else []

    def make_pipeline(pipeline_stop: threading.Event) -> LivePipeline:
        hooks = [collector.offer] if collector is not None and not several else []
        camera_hooks = [camera_collector(collector, names)] if collector is not None and several else []
        publish = [lambda camera, picture: cameras[camera].publish(picture)] if cameras else []
        sources = make_sources(config)
        return LivePipeline(
            sources if several else sources[0],
            api,
            display,
            options,
            on_answer=hooks,
            on_camera_answer=camera_hooks,
            on_camera_frame=publish,
            reopen=lambda camera: make_source(config, config.sources[camera]),
            stop=pipeline_stop,
        )

    supervisor = Supervisor(
        make_pipeline, display, stop, watchdog_s=settings.watchdog, blank_size=config.display.size or (1280, 720)
    )
    web: WebView | None = None
    if hub is not None and settings.web is not None:

        def stats() -> dict[str, Any]:
            collected = collector.stats() if collector is not None else {}
            return {**supervisor.stats(), **collected, "viewers": hub.viewers}

        web = WebView(
            settings.web,
            hub,
            stats,
            title=config.overlay.title,
            allowed_hosts=settings.allowed_hosts,
            cameras=cameras,
        )
        web.start()
    log.info(
        "kiosk started: %s, watchdog %.0f s, quit keys %s", ", ".join(names), settings.watchdog, settings.quit.text
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


def api_choice(config: KioskConfig, env: Mapping[str, str]) -> ApiSettings:
    """The kiosk's ``[api]`` settings with the overlay's confidence and classes, and the key of ``env`` if none."""
    overlay = config.overlay
    values = {**vars(config.api), "confidence": overlay.confidence, "classes": overlay.classes}
    return ApiSettings.given(values, env)


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
