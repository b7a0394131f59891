"""One POST, bounded every way: connect and idle timeouts, a total deadline, the stop event, a capped answer.

    transport = Transport(KINDS, where="https://api.example.com", secrets=(key,), max_answer=1 << 20,
                          connect_timeout=10, read_timeout=120, total_timeout=300, stop=stop)
    answer = transport.post(url, params=[("api_key", key)], data=body)
    if answer.status >= 400:
        raise transport.error(answer)

The session is the seam: give a ``requests.Session`` with a stub adapter mounted where a real
loopback server is not the point of a test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3

from livecam.cost.credits import processing_time
from livecam.errors import ServiceError
from livecam.http.errors import CallInterrupted, ErrorKinds, reason, scrubbed, status_error
from livecam.http.limits import CallLimits, DeadlinePassed, Stopped, limited
from livecam.http.session import close_session, new_session

_READ_BYTES = 1 << 20
"""Most one read of the answer takes: every read gives up the interpreter lock and must win it
back, so a 4 MB answer read 64 KB at a time made the display wait for the lock up to 60 times.
A compressed answer is inflated no further than this per read, so a gzip bomb stops at the cap."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, read whole (within the cap).

    Attributes:
        status: the HTTP status.
        body: the body, decoded from its content encoding.
        retry_after: the ``Retry-After`` header, if any.
        processing_s: the server's ``x-processing-time`` header (seconds), if any and sane.
    """

    status: int
    body: bytes
    retry_after: str | None = None
    processing_s: float | None = None

    def json(self) -> Any:
        """The body as JSON; None when empty, not JSON or nested too deep to read."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, RecursionError):
            return None


class Transport:
    """POSTs to one service; every failure becomes one of ``kinds``'s errors, with no secret in it.

    Not shared between threads: each thread gets its own (its own keep-alive connections).

    Args:
        kinds: the caller's error classes and hints.
        where: the service as messages name it (already redacted).
        secrets: strings no message may contain (the API key).
        session: the HTTP session (default :func:`~livecam.http.new_session`); closed by :meth:`close`.
        connect_timeout: seconds to connect.
        read_timeout: the most seconds one read or write waits for the server.
        total_timeout: the most seconds one call takes, from sending to the last byte of the answer.
        max_answer: bytes of (decoded) answer kept; a longer answer is refused with ``kinds.bad_answer``.
        stop: the run's stop event: when set, a call in progress ends within
            :data:`~livecam.http.limits.STOP_CHECK_S` with :class:`CallInterrupted`.
    """

    def __init__(
        self,
        kinds: ErrorKinds,
        *,
        where: str,
        secrets: Sequence[str] = (),
        session: requests.Session | None = None,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float,
        max_answer: int,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kinds = kinds
        self.where = where
        self.secrets = tuple(s for s in secrets if s)
        self.session = session or new_session()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.max_answer = max_answer
        self.stop = stop
        self._clock = clock

    def post(
        self,
        url: str,
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]],
        where: str | None = None,
        **kwargs: Any,
    ) -> Answer:
        """POST to ``url`` (``kwargs``: requests' ``data``, ``files``, ``headers``) and read the answer.

        Any status comes back as an :class:`Answer`; :meth:`error` makes the error for one >= 400.

        Raises:
            CallInterrupted: the stop event was set.
            ServiceError: one of ``kinds``: no connection, no (whole) answer in time, an answer
                cut off or over the cap.
        """
        where = where or self.where
        limits = CallLimits(self._clock() + self.total_timeout, self.read_timeout, self.stop, self._clock)
        with limited(limits):
            response = self._send(url, params, where, kwargs)
            with response:
                body = self._read(response, where)
        return Answer(
            response.status_code, body, response.headers.get("Retry-After"), processing_time(response.headers)
        )

    def error(self, answer: Answer, where: str | None = None) -> ServiceError:
        """The error for ``answer``, whose status is 400 or more."""
        return status_error(
            answer.status,
            answer.body,
            answer.retry_after,
            where=where or self.where,
            kinds=self.kinds,
            secrets=self.secrets,
        )

    def close(self) -> None:
        """Close the keep-alive connections now."""
        close_session(self.session)

    def _send(self, url: str, params: Any, where: str, kwargs: dict[str, Any]) -> requests.Response:
        kinds = self.kinds
        try:
            return self.session.post(
                url, params=params, timeout=(self.connect_timeout, self.read_timeout), stream=True, **kwargs
            )
        except (DeadlinePassed, Stopped) as exc:
            raise self._out_of_time(exc, where) from None
        except requests.Timeout as exc:
            raise kinds.timeout(f"no answer from {where} within the timeout") from scrubbed(exc, self.secrets)
        except requests.ConnectionError as exc:
            raise kinds.unreachable(f"cannot reach {where} ({reason(exc, self.secrets)})") from scrubbed(
                exc, self.secrets
            )
        except requests.RequestException as exc:
            raise kinds.broken(f"request to {where} failed ({reason(exc, self.secrets)})") from scrubbed(
                exc, self.secrets
            )

    def _read(self, response: requests.Response, where: str) -> bytes:
        """The answer's body, read and decoded in bounded steps, never past the cap."""
        chunks: list[bytes] = []
        size = 0
        try:
            # read1 returns what one socket read brings (decoded, at most _READ_BYTES of it), so a
            # server dripping its answer never blocks a read for long and a bomb never inflates.
            while chunk := response.raw.read1(_READ_BYTES, decode_content=True):
                size += len(chunk)
                if size > self.max_answer:
                    raise self.kinds.bad_answer(
                        f"{where} sent an answer over {_size(self.max_answer)}; ignored", response.status_code
                    )
                chunks.append(chunk)
        except (DeadlinePassed, Stopped) as exc:
            raise self._out_of_time(exc, where) from None
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise self.kinds.timeout(f"no answer from {where} within the timeout") from scrubbed(exc, self.secrets)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self.kinds.broken(f"the answer from {where} was cut off ({reason(exc, self.secrets)})") from scrubbed(
                exc, self.secrets
            )
        return b"".join(chunks)

    def _out_of_time(self, exc: DeadlinePassed | Stopped, where: str) -> Exception:
        if isinstance(exc, Stopped):
            return CallInterrupted(f"stopped while waiting for {where}")
        if exc.idle:
            return self.kinds.timeout(f"no answer from {where} within the timeout")
        return self.kinds.timeout(f"{where} did not finish answering within {self.total_timeout:g} s (the timeout)")


def join_path(base_url: str, path: str) -> str:
    """``path`` joined to the path of ``base_url``, whose query string stays at the end.

    Example:
        ``join_path("http://gw/p?token=T", "proj/1")`` is ``"http://gw/p/proj/1?token=T"``.
    """
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, f"{parts.path.rstrip('/')}/{path.lstrip('/')}", parts.query, ""))


def _size(count: int) -> str:
    return f"{count >> 20} MB" if count >= 1 << 20 else f"{count} bytes"
