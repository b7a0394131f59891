"""What every command shares: exit statuses, logging, signals, and the API options from the flags.

The API options become an :class:`~livecam.connection.ApiSettings`, which
:func:`livecam.public.serve.connect` turns into the API a mode asks, starting the embedded server
when none was named (the Python API does the same).
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
from types import FrameType
from typing import Any

from livecam.cli.flags import given_values
from livecam.connection import ApiSettings
from livecam.errors import ConfigError
from livecam.logsafe import SafeLogFilter
from livecam.public.options import API_OPTIONS, Option, check_flag

log = logging.getLogger("livecam")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def api_values(args: argparse.Namespace) -> dict[Option, Any]:
    """The API options given as flags, checked (see :data:`livecam.public.options.API_OPTIONS`)."""
    return {o: check_flag(o, v) if o.repeat else v for o, v in given_values(args, API_OPTIONS).items()}


def api_choice(args: argparse.Namespace, env: Mapping[str, str]) -> ApiSettings:
    """The API options given as flags, as settings (the key from ``env`` when no flag gives it)."""
    return ApiSettings.given({o.dest: v for o, v in api_values(args).items()}, env)


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
        stop.set()
        # A signal that lands while this thread writes to stderr makes the log line a reentrant
        # write (RuntimeError): that line is lost, the stop is not.
        with contextlib.suppress(RuntimeError):
            if received == 1:
                log.info("stopping (%s)", name)
            else:
                log.warning("already stopping (%s); one more signal quits at once, without finishing files", name)

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


def check_positive(**values: float | None) -> None:
    """Each given value (by flag name, ``segment_s`` for ``--segment-s``) must be above zero.

    Raises:
        ConfigError: naming the flag.
    """
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be positive (got {value})")
