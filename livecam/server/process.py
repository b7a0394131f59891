"""The embedded server in a process of its own, so its model work never holds the display's
interpreter lock, and runs at a lower priority than the display when the cores are busy."""

from __future__ import annotations

import json
import logging
import os
from types import TracebackType

from livecam.detector import Precision
from livecam.errors import ConfigError
from livecam.server.config import ServerConfig
from livecam.workers import ChildProcess

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0
_SECRET_NAMES = ("ROBOFLOW_API_KEY",)


class ServerProcess:
    """The embedded server (bundled model, free loopback port) as a child process, while the context lasts.

    Usage::

        with ServerProcess() as server:
            client = DetectionClient(ApiConfig(server.url, server.model_id))

    Raises:
        ConfigError: the model cannot be loaded or the server cannot start (on entering).
    """

    def __init__(self, precision: Precision | None = None) -> None:
        self._precision = precision
        # The environment without the key (the child is told nothing it does not need).
        env = {k: v for k, v in os.environ.items() if k not in _SECRET_NAMES}
        self._child = ChildProcess("livecam.server.child", env=env, stop_timeout=STOP_TIMEOUT_S)
        self._port: int | None = None
        self.model_id = ServerConfig().model_id

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if self._port is None:
            raise RuntimeError("the server is not started; use it as a context manager")
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs."""
        return self._child.pid

    def start(self) -> ServerProcess:
        """Start the process and wait until it listens (the model is loaded by then)."""
        try:
            process = self._child.start()
            assert process.stdin is not None and process.stdout is not None
            options = {"precision": self._precision, "log_level": logging.getLogger("livecam").getEffectiveLevel()}
            process.stdin.write((json.dumps(options) + "\n").encode("utf-8"))
            process.stdin.flush()
            line = process.stdout.readline().decode("utf-8", "replace").strip()
        except OSError as exc:
            self.close()
            raise ConfigError(f"the embedded server could not start ({exc})") from None
        if not line.startswith("PORT "):
            self.close()
            reason = line.removeprefix("ERROR ") or f"it exited with status {process.returncode}"
            raise ConfigError(f"the embedded server could not start: {reason}")
        self._port = int(line.split()[1])
        return self

    def close(self) -> None:
        """Stop the server gracefully (closing its stdin), bounded; kill it if it does not stop. Idempotent."""
        self._child.stop()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
