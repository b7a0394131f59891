"""A stop signal stops the run even when its log line cannot be written."""

from __future__ import annotations

import logging
import os
import signal
import threading

from livecam.cli.common import stop_on_signals


class ReentrantStderr(logging.Handler):
    """Fails like a stderr write that the signal interrupted (Python refuses the reentrant write)."""

    def emit(self, record: logging.LogRecord) -> None:
        raise RuntimeError("reentrant call inside <_io.BufferedWriter name='<stderr>'>")


def test_sigterm_sets_stop_even_if_its_log_line_fails() -> None:
    stop = threading.Event()
    logger = logging.getLogger("livecam")
    handler, level = ReentrantStderr(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with stop_on_signals(stop):
            os.kill(os.getpid(), signal.SIGTERM)  # handled in this thread before the next line
            assert stop.wait(5)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
