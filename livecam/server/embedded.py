"""Run the server: in-process on a free loopback port, or blocking until a stop event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from livecam.detector import Detector, DetectorFactory, detector_factory
from livecam.errors import ConfigError
from livecam.server.app import App
from livecam.server.config import ServerConfig
from livecam.server.http import ModelHTTPServer
from livecam.server.pool import DetectorPool
from livecam.workers import Worker

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0
"""How long a graceful stop waits for the requests in progress to be answered."""


class EmbeddedServer:
    """The server running in a background thread, as a context manager.

    Usage::

        with EmbeddedServer() as server:      # bundled model, free port on 127.0.0.1
            client = make_client(server.url)  # "http://127.0.0.1:PORT"

    Args:
        config: the configuration; the default binds a free loopback port (``port=0``).
        detector_factory: builds one detector per model worker (default: from ``config``).
        stop: set to stop the server from elsewhere; one is created when omitted.

    Raises:
        ConfigError: the model cannot be loaded or the address cannot be bound (on ``start``).
    """

    def __init__(
        self,
        config: ServerConfig | None = None,
        detector_factory: Callable[[], Detector] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config or ServerConfig(port=0)
        self._factory = detector_factory
        self.stop_event = stop or threading.Event()
        self._server: ModelHTTPServer | None = None
        self._worker: Worker | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:9001``."""
        if self._server is None:
            raise RuntimeError("the server is not started; use it as a context manager")
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    @property
    def active_requests(self) -> int:
        """Requests being answered now, until their answer is sent (a graceful stop waits for them)."""
        return 0 if self._server is None else self._server.active_requests

    @property
    def model_id(self) -> str:
        """The ``project/version`` this server answers for, e.g. ``coco/1``."""
        return self.config.model_id

    def start(self) -> EmbeddedServer:
        """Load the model, bind, and serve in a background thread."""
        config = self.config
        factory = self._factory or detector_factory(
            config.model_path, config.classes_path, config.backend, config.precision, config.threads
        )
        pool = DetectorPool(factory, self.config.workers, self.stop_event)
        app = App(self.config, pool, pool.warm(), self.stop_event)
        try:
            self._server = ModelHTTPServer(self.config, app)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc}; choose another --port or --host"
            ) from exc
        server = self._server
        self._worker = Worker(lambda: server.serve_forever(poll_interval=0.2), "livecam-server")
        self._worker.start()
        what = factory.description if isinstance(factory, DetectorFactory) else "an injected detector"
        log.info("serving %s at %s (%s)", self.config.model_id, self.url, what)
        return self

    def close(self) -> None:
        """Stop gracefully: finish requests in progress, then join (bounded)."""
        self.stop_event.set()
        if self._server is not None:
            self._server.stop()
        if self._worker is not None and not self._worker.join(STOP_TIMEOUT_S):
            log.warning("the server thread did not stop within %.0f s", STOP_TIMEOUT_S)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def serve(config: ServerConfig, stop: threading.Event) -> None:
    """Serve until ``stop`` is set (the ``livecam serve`` command), then stop gracefully.

    Raises:
        ConfigError: the model cannot be loaded or the address cannot be bound.
    """
    with EmbeddedServer(config, stop=stop):
        stop.wait()
