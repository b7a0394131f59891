"""The Roboflow detection client: endpoint URLs, JPEG+base64 requests, errors, retry, redaction.

It speaks the legacy route every Roboflow server understands
(``POST {api_url}/{project}/{version}?api_key=…&confidence=…&overlap=…``, base64 body), on a
keep-alive session of :mod:`livecam.http` (connect and read timeouts, a total deadline, a cap on
the answer's size). Every message it produces has the API key removed.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

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
from livecam.http import ErrorKinds, Transport, join_path
from livecam.parsing import AnswerParser, NotJson, parse_body
from livecam.predictions import Predictions
from livecam.redaction import redact

log = logging.getLogger(__name__)

HOSTED_API_URL = "https://serverless.roboflow.com"
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
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
        connect_timeout, read_timeout: seconds; ``read_timeout`` bounds each wait for the server,
            and one request takes at most ``connect_timeout + read_timeout`` in all.
        encoder: ``auto``, ``opencv`` or ``turbojpeg``.
        lowest_confidence: percent; when below ``confidence``, the server is asked for boxes down
            to it and those under ``confidence`` come back apart, in
            :attr:`Predictions.below_threshold` (for ``--collect``, and for matching boxes between
            keyframes with ``annotate --keyframes``), never drawn.
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
                raise ConfigError(f"--api-url must start with http:// or https:// (got {redact(url)!r})")
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
        """The legacy route for the model: ``model_id`` joined to the path of ``api_url``, whose
        query string (``?token=T``) stays at the end, ahead of the request's own parameters."""
        return join_path(self.api_url, self.model_id)

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
    ``session`` is the transport seam (a ``requests.Session``, e.g. with a stub adapter mounted);
    ``stop``, the run's stop event, ends a request in progress with
    :class:`~livecam.http.CallInterrupted` as soon as it is set.

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
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self._parser = parser
        self.encoder = encoder or make_encoder(config.encoder)
        self._transport = Transport(
            dataclasses.replace(_KINDS, missing=f"model {config.model_id!r}"),
            where=redact(config.endpoint, config.api_key),
            secrets=(config.api_key,) if config.api_key else (),
            session=session,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            total_timeout=config.connect_timeout + config.read_timeout,
            max_answer=MAX_RESPONSE_BYTES,
            stop=stop,
            clock=clock,
        )
        self.bytes_sent = 0
        self.last_processing_s: float | None = None
        """The server's ``x-processing-time`` of the last answer, when it sent one."""

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
            CallInterrupted: the client's ``stop`` event was set.
        """
        return self.send(self.prepare(image))

    def send(self, request: Request) -> Predictions:
        """POST a prepared request and parse the answer."""
        cfg = self.config
        transport = self._transport
        answer = transport.post(
            cfg.endpoint,
            params=cfg.query(),
            data=request.body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        self.bytes_sent += len(request.body)
        if answer.status >= 400:
            raise transport.error(answer)
        self.last_processing_s = answer.processing_s
        small_size = (round(request.frame_size[0] * request.scale), round(request.frame_size[1] * request.scale))
        try:
            parse = parse_body if self._parser is None else self._parser.parse
            predictions = parse(answer.body, small_size)
        except NotJson as exc:
            raise ResponseError(
                f"{transport.where} answered {answer.status} with a body that is not JSON",
                answer.status,
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
        self._transport.close()


def _bad_answer(message: str, status: int) -> ResponseError:
    return ResponseError(message, status, retryable=True)


_KINDS = ErrorKinds(
    key=AuthError,
    not_found=ModelNotFoundError,
    status=HttpStatusError,
    timeout=RequestTimeout,
    unreachable=ConnectionFailed,
    broken=ProtocolError,
    bad_answer=_bad_answer,
    key_hint="check --api-key or $ROBOFLOW_API_KEY, and that the key can use this model",
    not_found_hint="check --model PROJECT/VERSION",
)


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
