"""What every command shares: exit statuses, logging, signals, and the API choice.

:class:`ApiChoice` is the API options as the user gave them (flags or the kiosk file);
:func:`resolved_api` turns it into the :class:`~livecam.client.ApiConfig` the modes take,
starting the embedded server when no API was named.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from livecam.cli.options import API_OPTIONS, AUTO_MAX_IN_FLIGHT, check_flag, given_values
from livecam.client import HOSTED_API_URL, ApiConfig
from livecam.detector.bundled import Precision
from livecam.errors import ConfigError
from livecam.logsafe import SafeLogFilter

log = logging.getLogger("livecam")

API_KEY_ENV = "ROBOFLOW_API_KEY"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass(frozen=True)
class ApiChoice:
    """The detection API options as given (see :data:`livecam.cli.options.API_OPTIONS`).

    ``api_url`` and ``model`` both None means the embedded server; ``in_flight`` None means the
    command's own default. ``api_url`` holds every ``--api-url`` given (several servers of one model).
    """

    api_url: tuple[str, ...] | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    confidence: float = 40.0
    overlap: float = 30.0
    classes: tuple[str, ...] | None = None
    max_side: int = 640
    jpeg_quality: int = 80
    in_flight: int | str | None = None
    timeout: float = 10.0
    encoder: str = "auto"
    precision: Precision | None = None

    def __post_init__(self) -> None:
        if isinstance(self.api_url, str):  # one URL given as text (the Python API)
            object.__setattr__(self, "api_url", (self.api_url,))

    @classmethod
    def from_values(cls, values: Mapping[str, Any], env: Mapping[str, str]) -> ApiChoice:
        """From option values by name (absent ones take the defaults); the key falls back to the environment.

        A confidence or overlap below 1 is a fraction, as servers read it (0.9 is 90 %); it is
        turned into percent, and the reading logged.
        """
        values = {**values, **{name: as_percent(values[name], name) for name in _PERCENT if name in values}}
        choice = cls(**values)
        if choice.api_key:
            return choice
        return cls(**{**values, "api_key": env.get(API_KEY_ENV) or None})

    @property
    def embedded(self) -> bool:
        """Whether the embedded server answers (no ``--api-url`` and no ``--model``)."""
        return self.api_url is None and self.model is None

    @property
    def servers(self) -> int:
        """How many detection servers were named (1 for the embedded or the hosted one)."""
        return len(self.api_url or ()) or 1

    def api_config(self, api_urls: tuple[str, ...], model_id: str) -> ApiConfig:
        """The :class:`ApiConfig` for these options against the servers ``api_urls`` of ``model_id``."""
        return ApiConfig(
            api_url=api_urls[0],
            api_urls=api_urls if len(api_urls) > 1 else (),
            model_id=model_id,
            api_key=self.api_key,
            confidence=self.confidence,
            overlap=self.overlap,
            classes=self.classes,
            max_side=self.max_side or None,
            jpeg_quality=self.jpeg_quality,
            read_timeout=self.timeout,
            encoder=self.encoder,
        )


_PERCENT = ("confidence", "overlap")


def as_percent(value: float, name: str) -> float:
    """``value`` in percent: one below 1 (but above 0) is read as a fraction, and says so."""
    if 0 < value < 1:
        percent = round(value * 100, 6)
        log.info("--%s %g read as %g %% (a value below 1 is a fraction)", name, value, percent)
        return percent
    return value


def api_choice(args: argparse.Namespace, env: Mapping[str, str]) -> ApiChoice:
    """The API options given as flags (see :data:`livecam.cli.options.API_OPTIONS`)."""
    values = {o.dest: check_flag(o, v) if o.repeat else v for o, v in given_values(args, API_OPTIONS).items()}
    return ApiChoice.from_values(values, env)


@contextlib.contextmanager
def resolved_api(choice: ApiChoice) -> Iterator[ApiConfig]:
    """The API to use; starts the embedded server for as long as the context lasts when needed.

    Raises:
        ConfigError: ``--api-url`` without ``--model``, ``--precision`` for a remote API, or
            the hosted API without a key.
    """
    if choice.embedded:
        from livecam.server.process import ServerProcess

        # In a process of its own: its model work then never competes with the display for the
        # interpreter lock, and gives way to it when the cores are busy (BENCHMARKS.md, "Flood").
        with ServerProcess(choice.precision) as server:
            log.info("no --api-url or --model: using the embedded server at %s with the bundled COCO model", server.url)
            yield choice.api_config((server.url,), server.model_id)
        return
    if choice.model is None:
        raise ConfigError("--api-url needs --model PROJECT/VERSION (e.g. --model coco/1)")
    if choice.precision is not None:
        raise ConfigError(
            f"--precision {choice.precision} chooses the embedded server's model; with --api-url or --model "
            "the remote server decides (leave --precision out)"
        )
    if choice.api_url is None and not choice.api_key:
        raise ConfigError(
            f"--model {choice.model} without --api-url uses Roboflow's hosted API, which needs your API key: "
            f"set {API_KEY_ENV} or give --api-key (or name your own server with --api-url)"
        )
    yield choice.api_config(choice.api_url or (HOSTED_API_URL,), choice.model)


QUIT_AT_ONCE_AFTER = 3
"""Close signals (Ctrl-C, SIGTERM) after which the process exits at once, without finishing its files."""


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` so the run ends cleanly and writes what it owes (stats,
    the end of a video); a second one changes nothing, a third exits at once with status 130.

    Only the main thread can install handlers; elsewhere (tests, embedding) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def handle(signum: int, _frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        name = signal.Signals(signum).name
        if received >= QUIT_AT_ONCE_AFTER:
            # Not an exception: one raised here could land inside the very clean-up it should cut short.
            os.write(sys.stderr.fileno(), f"{name} again: quitting at once, files may be unfinished\n".encode())
            os._exit(EXIT_INTERRUPTED)
        if received == 1:
            log.info("stopping (%s)", name)
        else:
            log.warning("already stopping (%s); one more signal quits at once, without finishing files", name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def configure_logging(level: int, secret: str | None) -> None:
    """Log to stderr, one printable line per event, credentials and the API key hidden in every record."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(SafeLogFilter(secret))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if level >= 2 else logging.INFO if level >= 0 else logging.WARNING)


def quiet_native_logs(debug: bool) -> None:
    """Keep OpenCV's and FFmpeg's own stderr lines (codec probing, capture back-ends) out of the
    way unless debugging: livecam reports what matters through its own log."""
    if debug:
        return
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # AV_LOG_FATAL; read at FFmpeg's first use
    import cv2.utils.logging as cv_logging

    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)


def in_flight_window(value: int | str | None) -> tuple[int, bool]:
    """``--in-flight`` for the live pipeline: (requests open at most, adaptive); None means 1."""
    if value == "auto":
        return AUTO_MAX_IN_FLIGHT, True
    return (value if isinstance(value, int) else 1), False


def check_positive(**values: float | None) -> None:
    """Each given value (by flag name, ``max_frames`` for ``--max-frames``) must be above zero.

    Raises:
        ConfigError: naming the flag.
    """
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive (got {value})")
