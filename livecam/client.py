"""The Roboflow detection client: endpoint URLs, JPEG+base64 requests, errors, retry, redaction.

It speaks the legacy route every Roboflow server understands
(``POST {api_url}/{project}/{version}?api_key=…&confidence=…&overlap=…``, base64 body), on a
keep-alive ``requests.Session`` with connect and read timeouts and a cap on the answer's size and
time. Every message it produces has the API key removed.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import logging
import re
import socket
import ssl
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
import urllib3
from requests.adapters import HTTPAdapter

from livecam.backoff import Backoff
from livecam.encode import Encoder, fit_max_side, make_encoder
from livecam.errors import (
    AuthError,
    ConfigError,
    ConnectionFailed,
    DetectionError,
    HttpStatusError,
    ModelNotFoundError,
    ProtocolError,
    RequestTimeout,
    ResponseError,
)
from livecam.frames import Image
from livecam.parsing import AnswerParser, NotJson, parse_body
from livecam.predictions import Predictions
from livecam.redaction import redact

log = logging.getLogger(__name__)

HOSTED_API_URL = "https://serverless.roboflow.com"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_READ_BYTES = 1 << 20
"""Most one read of the answer takes: every read gives up the interpreter lock and must win it
back, so a 4 MB answer read 64 KB at a time made the display wait for the lock up to 60 times."""
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[0-9]+$")


@dataclass(frozen=True)
class ApiConfig:
    """Where and how to ask for detections.

    Attributes:
        api_url: base URL, e.g. ``https://serverless.roboflow.com`` or ``http://localhost:9001``.
        model_id: ``project/version``.
        api_key: the Roboflow key (never printed: ``repr`` hides it).
        confidence, overlap: thresholds in percent (0-100), as Roboflow documents them.
        classes: only these class names are kept (filtered on the client, since servers differ).
        max_side: frames are downsized so the longest side is at most this before sending.
        jpeg_quality: 1-100.
        connect_timeout, read_timeout: seconds; ``read_timeout`` also bounds the whole answer.
        encoder: ``auto``, ``opencv`` or ``turbojpeg``.
        lowest_confidence: percent; when below ``confidence``, the server is asked for boxes down
            to it and those under ``confidence`` come back apart, in
            :attr:`Predictions.below_threshold` (for ``--collect``), never drawn.
        api_urls: every server of the model (``--api-url`` repeated), ``api_url`` first; empty
            means ``api_url`` alone.
    """

    api_url: str
    model_id: str
    api_key: str | None = field(default=None, repr=False)
    confidence: float = 40.0
    overlap: float = 30.0
    classes: tuple[str, ...] | None = None
    max_side: int | None = 640
    jpeg_quality: int = 80
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    encoder: str = "auto"
    lowest_confidence: float | None = None
    api_urls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for url in self.urls:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"--api-url must start with http:// or https:// (got {url!r})")
        if not _MODEL_ID.match(self.model_id):
            raise ConfigError(f"--model must look like PROJECT/VERSION, e.g. coco/1 (got {self.model_id!r})")
        if self.lowest_confidence is not None and not 0 <= self.lowest_confidence <= 100:
            raise ConfigError(f"the lowest confidence asked for must be 0-100 (got {self.lowest_confidence})")
        for name in ("confidence", "overlap"):
            value = getattr(self, name)
            if not 0 <= value <= 100:
                raise ConfigError(f"--{name} must be between 0 and 100 (got {value})")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"--jpeg-quality must be between 1 and 100 (got {self.jpeg_quality})")
        if self.max_side is not None and self.max_side < 32:
            raise ConfigError(f"--max-side must be at least 32 pixels (got {self.max_side})")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError("timeouts must be positive")

    @property
    def urls(self) -> tuple[str, ...]:
        """The base URL of every server of the model."""
        return self.api_urls or (self.api_url,)

    def each_server(self) -> list[ApiConfig]:
        """One config per server, each with its one URL."""
        return [dataclasses.replace(self, api_url=url, api_urls=()) for url in self.urls]

    @property
    def endpoint(self) -> str:
        """The legacy route for the model, without the query string."""
        return f"{self.api_url.rstrip('/')}/{self.model_id}"

    @property
    def asked_confidence(self) -> float:
        """The confidence (percent) sent to the server: the lower of the two thresholds."""
        if self.lowest_confidence is None:
            return self.confidence
        return min(self.confidence, self.lowest_confidence)

    def query(self) -> dict[str, str]:
        params = {"confidence": f"{self.asked_confidence:g}", "overlap": f"{self.overlap:g}", "format": "json"}
        if self.api_key:
            params["api_key"] = self.api_key
        return params


@dataclass(frozen=True)
class Request:
    """One encoded frame ready to send, and how to map the answer back to the frame."""

    body: bytes
    scale: float
    frame_size: tuple[int, int]


class DetectionClient:
    """Sends frames to a Roboflow-format API and returns :class:`Predictions` in frame pixels.

    Not shared between threads: give each sender thread its own client (its own session). The
    clients of one run may share one :class:`~livecam.parsing.AnswerParser`, which parses large
    answers in a worker process; without one every answer is parsed in the calling thread.

    Example:
        >>> client = DetectionClient(ApiConfig("http://127.0.0.1:9001", "coco/1"))
        >>> predictions = client.detect(frame_bgr)
    """

    def __init__(
        self,
        config: ApiConfig,
        session: requests.Session | None = None,
        encoder: Encoder | None = None,
        clock: Callable[[], float] = time.monotonic,
        parser: AnswerParser | None = None,
    ) -> None:
        self.config = config
        self._parser = parser
        self.encoder = encoder or make_encoder(config.encoder)
        self._session = session or _keepalive_session()
        self._clock = clock
        self.bytes_sent = 0

    def prepare(self, image: Image) -> Request:
        """Downsize, JPEG-encode and base64 a frame."""
        height, width = image.shape[:2]
        small, scale = fit_max_side(image, self.config.max_side)
        jpeg = self.encoder.encode(small, self.config.jpeg_quality)
        return Request(body=base64.b64encode(jpeg), scale=scale, frame_size=(width, height))

    def detect(self, image: Image) -> Predictions:
        """One request for one frame; boxes come back in the frame's own pixels.

        Raises:
            AuthError: 401/403.
            ModelNotFoundError: 404.
            DetectionError: anything else that went wrong; ``retryable`` says whether to try again.
        """
        return self.send(self.prepare(image))

    def send(self, request: Request) -> Predictions:
        """POST a prepared request and parse the answer."""
        cfg = self.config
        try:
            response = self._session.post(
                cfg.endpoint,
                params=cfg.query(),
                data=request.body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=(cfg.connect_timeout, cfg.read_timeout),
                stream=True,
            )
        except requests.Timeout as exc:
            raise RequestTimeout(f"no answer from {self._where()} within the timeout") from _scrubbed(exc, cfg.api_key)
        except requests.ConnectionError as exc:
            raise ConnectionFailed(f"cannot reach {self._where()} ({_reason(exc, cfg.api_key)})") from _scrubbed(
                exc, cfg.api_key
            )
        except requests.RequestException as exc:
            raise ProtocolError(f"request to {self._where()} failed ({_reason(exc, cfg.api_key)})") from _scrubbed(
                exc, cfg.api_key
            )
        self.bytes_sent += len(request.body)
        with response:
            body = self._read_capped(response)
        if response.status_code >= 400:
            raise _http_error(response.status_code, body, response.headers.get("Retry-After"), cfg, self._where())
        small_size = (round(request.frame_size[0] * request.scale), round(request.frame_size[1] * request.scale))
        try:
            parse = parse_body if self._parser is None else self._parser.parse
            predictions = parse(body, small_size)
        except NotJson as exc:
            raise ResponseError(
                f"{self._where()} answered {response.status_code} with a body that is not JSON",
                response.status_code,
                retryable=True,
            ) from exc
        predictions = predictions.hiding(cfg.api_key)  # the parse worker never has the key to hide
        if request.scale != 1.0:
            predictions = predictions.scaled(1 / request.scale, 1 / request.scale)
        if cfg.asked_confidence < cfg.confidence:
            predictions = predictions.split_at(cfg.confidence / 100)
        if cfg.classes is not None:
            predictions = predictions.filtered(cfg.classes)
        return predictions

    def close(self) -> None:
        """Close the keep-alive connections now."""
        # Session.close() only forgets urllib3's pools (they close their sockets when collected),
        # and a finished response in a reference cycle keeps its pool alive: close them first.
        for adapter in self._session.adapters.values():
            if isinstance(adapter, HTTPAdapter):
                pools = adapter.poolmanager.pools
                for key in pools.keys():  # noqa: SIM118 - the container refuses iteration
                    pool = pools.get(key)
                    if pool is not None:
                        pool.close()
        self._session.close()

    def _where(self) -> str:
        return redact(self.config.endpoint, self.config.api_key)

    def _read_capped(self, response: requests.Response) -> bytes:
        deadline = self._clock() + self.config.read_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            # read1 returns what one socket read brings, so a server dripping its answer a byte at
            # a time still meets the deadline check; iter_content would block until 64 KB arrived.
            while chunk := response.raw.read1(_READ_BYTES, decode_content=True):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise ResponseError(
                        f"{self._where()} sent an answer over {MAX_RESPONSE_BYTES >> 20} MB; ignored",
                        response.status_code,
                        retryable=True,
                    )
                if self._clock() > deadline:
                    raise RequestTimeout(f"{self._where()} took longer than the timeout to send its answer")
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise ProtocolError(
                f"the answer from {self._where()} was cut off ({_reason(exc, self.config.api_key)})"
            ) from _scrubbed(exc, self.config.api_key)
        return b"".join(chunks)


def _keepalive_session(pool_size: int = 4) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = True
    return session


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (http.client.RemoteDisconnected, "remote end closed connection"),
    (socket.gaierror, "name or service not known"),
    (ssl.SSLCertVerificationError, "certificate verify failed"),
    (TimeoutError, "timed out"),
    (urllib3.exceptions.TimeoutError, "timed out"),
)


def _reason(exc: BaseException, secret: str | None) -> str:
    """What went wrong, in a few words, from the causes of ``exc`` (matched by type, in ``_REASONS`` order:
    urllib3's NewConnectionError is also a timeout error, so a refusal must be looked for first)."""
    causes = _causes(exc)
    for kind, reason in _REASONS:
        if any(isinstance(cause, kind) for cause in causes):
            return reason
    return redact(type(exc).__name__, secret)


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: ``__cause__``, ``__context__``, urllib3's ``reason`` and requests' ``args``."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < 32:
        current = pending.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending += [e for e in wrapped if isinstance(e, BaseException)]
    return found


class _ScrubbedCause(Exception):
    """Stands in for a transport exception whose text may carry the key."""


def _scrubbed(exc: BaseException, secret: str | None) -> BaseException:
    """A key-free stand-in for ``exc``; also releases the frames ``exc``'s chain holds."""
    _release_frames(exc)
    return _ScrubbedCause(redact(f"{type(exc).__name__}: {exc}", secret))


def _release_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames in the tracebacks of ``exc`` and its causes.

    urllib3 and http.client keep the exception they handle in a local of a frame it passed
    through (a reference cycle), and a finished frame keeps its callers' frames alive. Left alone,
    each reset or closed connection kept the frame being sent (2.7 MB at 720p) until the next full
    garbage collection, so memory rose in steps for tens of seconds at a time.
    """
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def _http_error(status: int, body: bytes, retry_after: str | None, cfg: ApiConfig, where: str) -> HttpStatusError:
    message = _server_message(body, cfg.api_key)
    detail = f": {message}" if message else ""
    if status in (401, 403):
        return AuthError(
            f"{where} refused the API key (HTTP {status}{detail}). Check --api-key or ROBOFLOW_API_KEY, "
            "and that the key can use this model.",
            status,
        )
    if status == 404:
        return ModelNotFoundError(
            f"{where}: model {cfg.model_id!r} not found (HTTP 404{detail}). Check --model PROJECT/VERSION.", status
        )
    wait = _parse_retry_after(retry_after)
    if status == 429:
        return HttpStatusError(
            f"{where} is rate limiting requests (HTTP 429{detail})", status, retryable=True, retry_after=wait
        )
    if status >= 500:
        return HttpStatusError(f"{where} failed (HTTP {status}{detail})", status, retryable=True, retry_after=wait)
    if status in (402, 423):
        return HttpStatusError(
            f"{where}: account usage paused or billing needed (HTTP {status}{detail})",
            status,
            retryable=True,
            retry_after=wait,
        )
    return HttpStatusError(f"{where} rejected the request (HTTP {status}{detail})", status, retryable=status == 413)


def _server_message(body: bytes, secret: str | None) -> str:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return ""
    if isinstance(data, dict):
        for key in ("message", "detail", "error"):
            value = data.get(key)
            if isinstance(value, str):
                return redact(value[:200], secret)
    return ""


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), 60.0)


@dataclass
class RetryPolicy:
    """How often and how long to retry one frame (file annotation; live mode moves on instead)."""

    attempts: int = 4
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.5, maximum=8.0))

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"a request needs at least one attempt (got {self.attempts})")


def detect_with_retry(client: DetectionClient, image: Image, policy: RetryPolicy, stop: threading.Event) -> Predictions:
    """``client.detect`` with retries on retryable errors, waiting on ``stop`` between tries.

    Raises:
        DetectionError: the last error, once attempts run out, the error is not retryable, or
            ``stop`` was set.
    """
    request = client.prepare(image)
    backoff = Backoff(policy.backoff.initial, policy.backoff.maximum, policy.backoff.jitter)
    for attempt in range(1, policy.attempts + 1):
        try:
            return client.send(request)
        except DetectionError as exc:
            if not exc.retryable or attempt == policy.attempts:
                raise
            delay = backoff.next_delay(exc.retry_after or 0.0)
            log.debug("retrying in %.1f s after: %s", delay, exc)
            if stop.wait(delay):
                raise
    raise AssertionError("unreachable")
