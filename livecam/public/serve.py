"""The embedded server for a run or a notebook, and the API a run asks.

with serve() as url:                        # the bundled COCO model on a free loopback port
    ...
with connect(ApiSettings()) as api:          # the embedded server, since no API is named
    client = DetectionClient(api)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from livecam.client import HOSTED_API_URL, ApiConfig
from livecam.connection import API_KEY_ENV, ApiSettings
from livecam.detector.bundled import PRECISIONS, Precision
from livecam.errors import ConfigError
from livecam.server.process import ServerProcess

log = logging.getLogger("livecam")


def checked_precision(value: str | None) -> Precision | None:
    """``value`` as the embedded model's precision.

    Raises:
        ConfigError: it is none of ``int8``, ``fp16``, ``fp32``.
    """
    if value is not None and value not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} (got {value!r})")
    return value


@contextlib.contextmanager
def serve(precision: str | None = None) -> Iterator[str]:
    """The embedded server (bundled COCO model ``coco/1``, a free loopback port) in a child process.

    Yields its base URL, ``http://127.0.0.1:PORT``; the server stops when the context ends.

    Raises:
        ConfigError: the model cannot be loaded or the server cannot start.
    """
    with _embedded(precision) as server:
        yield server.url


@contextlib.contextmanager
def _embedded(precision: str | None) -> Iterator[ServerProcess]:
    # In a process of its own: its model work then never competes with the display for the
    # interpreter lock, and gives way to it when the cores are busy (BENCHMARKS.md, "Flood").
    with ServerProcess(checked_precision(precision)) as server:
        yield server


@contextlib.contextmanager
def connect(settings: ApiSettings) -> Iterator[ApiConfig]:
    """The API to use; starts the embedded server for as long as the context lasts when needed.

    Raises:
        ConfigError: an API URL without a model, a precision for a remote API, or the hosted API
            without a key.
    """
    if settings.embedded:
        with _embedded(settings.precision) as server:
            log.info("no --api-url or --model: using the embedded server at %s with the bundled COCO model", server.url)
            yield settings.api_config((server.url,), server.model_id)
        return
    if settings.model is None:
        raise ConfigError("--api-url needs --model PROJECT/VERSION (e.g. --model coco/1)")
    if settings.precision is not None:
        raise ConfigError(
            f"--precision {settings.precision} chooses the embedded server's model; with --api-url or --model "
            "the remote server decides (leave --precision out)"
        )
    if settings.api_url is None and not settings.api_key:
        raise ConfigError(
            f"--model {settings.model} without --api-url uses Roboflow's hosted API, which needs your API key: "
            f"set {API_KEY_ENV} or give --api-key (or name your own server with --api-url)"
        )
    yield settings.api_config(settings.api_url or (HOSTED_API_URL,), settings.model)
