"""The embedded server's own process: ``python -m livecam.server.child``.

Started by :class:`~livecam.server.process.ServerProcess`. Its first stdin line is a JSON object
(``precision``, ``log_level``); it starts the server on a free loopback port, at a lower priority
than the display, writes ``PORT n`` (or ``ERROR message``) on stdout, and serves until its stdin
closes, which also happens if the parent dies.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from typing import Any

from livecam.errors import LivecamError
from livecam.logsafe import SafeLogFilter
from livecam.server.config import ServerConfig
from livecam.server.embedded import EmbeddedServer

NICENESS = 5
"""The model's priority below the display's: on busy cores the display is served first."""


def main() -> int:
    """Serve until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; it stops us by closing stdin
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    options: dict[str, Any] = json.loads(sys.stdin.readline() or "{}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(SafeLogFilter())
    logging.getLogger().handlers[:] = [handler]
    level = int(options.get("log_level", logging.WARNING))
    logging.getLogger().setLevel(level)
    if level > logging.DEBUG:
        logging.getLogger("livecam.server.http").setLevel(logging.WARNING)  # no access log unless debugging
    try:
        server = EmbeddedServer(ServerConfig(port=0, precision=options.get("precision"))).start()
    except LivecamError as exc:
        print(f"ERROR {exc}".replace("\n", " "), flush=True)
        return 2
    try:
        print(f"PORT {server.url.rsplit(':', 1)[1]}", flush=True)
        while sys.stdin.readline():
            pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
