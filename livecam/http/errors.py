"""What went wrong with an HTTP call, said once: statuses, Retry-After, the server's words, transport causes.

Each client names its own error classes (:class:`ErrorKinds`); which status means what, whether
trying again can help, how long a server may ask to wait and how its message is cleaned are
decided here for all of them.
"""

from __future__ import annotations

import email.utils
import enum
import http.client
import json
import math
import socket
import ssl
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import urllib3

from livecam.errors import LivecamError, ServiceError
from livecam.redaction import redact
from livecam.sanitize import clean_text

RETRY_AFTER_CAP_S = 60.0
"""The longest wait a server's ``Retry-After`` can ask for; a longer one is cut to this."""
MESSAGE_CHARS = 200
"""The most of a server's own message that goes into an error."""


class CallInterrupted(LivecamError):
    """The run's stop event ended a call before its answer came."""


class Refusal(enum.Enum):
    """What an HTTP error status means to a client."""

    KEY = "key"  # 401, 403: the key is wrong or may not use this
    NOT_FOUND = "not found"  # 404: the model or project does not exist
    TOO_LARGE = "too large"  # 413: the same request fails again
    RATE_LIMITED = "rate limited"  # 429
    PAUSED = "paused"  # 402, 423: account usage paused or billing needed
    BUSY = "busy"  # 408, 425, 5xx: the server failed or is not ready
    REJECTED = "rejected"  # any other status >= 400


_RETRYABLE = frozenset({Refusal.RATE_LIMITED, Refusal.PAUSED, Refusal.BUSY})
_BY_STATUS = {
    401: Refusal.KEY,
    403: Refusal.KEY,
    404: Refusal.NOT_FOUND,
    413: Refusal.TOO_LARGE,
    429: Refusal.RATE_LIMITED,
    402: Refusal.PAUSED,
    423: Refusal.PAUSED,
    408: Refusal.BUSY,
    425: Refusal.BUSY,
}


def refusal(status: int) -> Refusal:
    """The meaning of an error status (``status`` >= 400)."""
    return _BY_STATUS.get(status, Refusal.BUSY if status >= 500 else Refusal.REJECTED)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), from 0 to the cap.

    None when the header is absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_CAP_S)


def server_message(body: bytes, secrets: Sequence[str] = ()) -> str:
    """The server's own words from an error body, one clean line with no secret in it ("" if none).

    JSON ``{"message": ...}``, ``{"detail": ...}``, ``{"error": ...}`` and ``{"error": {"message": ...}}``
    are read; a short plain-text body is taken as it is; HTML pages and anything else give "".
    """
    text = _json_message(body)
    if text is None:
        head = body[: MESSAGE_CHARS * 4].decode("utf-8", "replace").strip()
        text = "" if head.startswith(("<", "{", "[")) else head
    text = " ".join(text.split())
    return redact(clean_text(text, limit=MESSAGE_CHARS, secrets=secrets))


def _json_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return ""
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    for value in (data.get("message"), data.get("detail"), error):
        if isinstance(value, str):
            return value
    return ""


@dataclass(frozen=True)
class ErrorKinds:
    """The error classes one client raises, and the hints its messages end with.

    Attributes:
        key: for 401/403; ``key_hint`` says what to check.
        not_found: for 404; ``missing`` names what was not found (``model 'coco/1'``) and
            ``not_found_hint`` what to check.
        status: for any other error status.
        timeout, unreachable, broken: no answer in time; no connection; the answer was cut off or
            was not HTTP (each takes the message).
        bad_answer: an answer over the size cap (takes the message and the status).
    """

    key: type[ServiceError]
    not_found: type[ServiceError]
    status: type[ServiceError]
    timeout: Callable[[str], ServiceError]
    unreachable: Callable[[str], ServiceError]
    broken: Callable[[str], ServiceError]
    bad_answer: Callable[[str, int], ServiceError]
    key_hint: str = "check --api-key or $ROBOFLOW_API_KEY"
    missing: str = "the resource"
    not_found_hint: str = ""

    @classmethod
    def plain(cls, error: type[ServiceError], refused: type[ServiceError], **hints: str) -> ErrorKinds:
        """``refused`` for a bad key or a missing resource, ``error`` for the rest (retryable
        when no answer or no whole answer came)."""

        def retryable(message: str, status: int | None = None) -> ServiceError:
            return error(message, status, retryable=True)

        return cls(refused, refused, error, retryable, retryable, retryable, retryable, **hints)


def status_error(
    status: int, body: bytes, retry_after: str | None, *, where: str, kinds: ErrorKinds, secrets: Sequence[str]
) -> ServiceError:
    """The error for an answer with status ``status`` >= 400 from ``where`` (already redacted)."""
    message = server_message(body, secrets)
    code = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    meaning = refusal(status)
    if meaning is Refusal.KEY:
        return kinds.key(f"{where} refused the API key ({code}); {kinds.key_hint}", status)
    if meaning is Refusal.NOT_FOUND:
        hint = f"; {kinds.not_found_hint}" if kinds.not_found_hint else ""
        return kinds.not_found(f"{where}: {kinds.missing} not found ({code}){hint}", status)
    retryable = meaning in _RETRYABLE
    text = {
        Refusal.RATE_LIMITED: f"{where} is rate limiting requests ({code})",
        Refusal.PAUSED: f"{where}: account usage paused or billing needed ({code})",
        Refusal.BUSY: f"{where} failed ({code})",
        Refusal.TOO_LARGE: f"{where} refused the request as too large ({code})",
    }.get(meaning, f"{where} rejected the request ({code})")
    wait = parse_retry_after(retry_after) if retryable else None
    return kinds.status(text, status, retryable=retryable, retry_after=wait)


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (http.client.RemoteDisconnected, "remote end closed connection"),
    (socket.gaierror, "name or service not known"),
    (ssl.SSLCertVerificationError, "certificate verify failed"),
    (TimeoutError, "timed out"),
    (urllib3.exceptions.TimeoutError, "timed out"),
)


def reason(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """What went wrong, in a few words, from the causes of ``exc`` (matched by type, in ``_REASONS`` order:
    urllib3's NewConnectionError is also a timeout error, so a refusal must be looked for first)."""
    causes = _causes(exc)
    for kind, words in _REASONS:
        if any(isinstance(cause, kind) for cause in causes):
            return words
    return clean_text(type(exc).__name__, secrets=secrets)


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


def scrubbed(exc: BaseException, secrets: Sequence[str] = ()) -> BaseException:
    """A secret-free stand-in for ``exc`` to raise ``from``; also releases the frames ``exc``'s chain holds."""
    _release_frames(exc)
    text = redact(f"{type(exc).__name__}: {exc}")
    for secret in secrets:
        text = redact(text, secret)
    return _ScrubbedCause(text)


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
