"""The livecam error tree. Messages say what to do; none ever contains an API key."""

from __future__ import annotations


class LivecamError(Exception):
    """Base of every error livecam raises on purpose."""


class ConfigError(LivecamError):
    """A bad option, file or combination of options."""


class SourceError(LivecamError):
    """A camera, file or stream that cannot be opened or read."""


class OutputError(LivecamError):
    """A file livecam writes (video, snapshot, stats, collected frames) cannot be written."""


class ServiceError(LivecamError):
    """A remote service (the detection API, Roboflow's upload API) failed or could not be reached.

    Attributes:
        status: the HTTP status, or None when no answer arrived (timeout, refused).
        retryable: whether trying again later may succeed.
        retry_after: seconds the server asked to wait, if it did.
    """

    def __init__(
        self, message: str, status: int | None = None, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class DetectionError(ServiceError):
    """The detection API answered with an error or could not be reached."""


class TransportError(DetectionError):
    """No HTTP answer came back; always worth retrying later."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


class RequestTimeout(TransportError):
    """The server did not answer (or finish its answer) within the timeout."""


class ConnectionFailed(TransportError):
    """The server could not be reached: refused, reset, unknown host, TLS failure."""


class ProtocolError(TransportError):
    """The connection broke mid-answer or the server spoke something that is not HTTP."""


class HttpStatusError(DetectionError):
    """The server answered with an HTTP error status (``status`` is always set)."""

    status: int

    def __init__(self, message: str, status: int, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message, status, retryable=retryable, retry_after=retry_after)


class AuthError(HttpStatusError):
    """401/403: the API key is missing, wrong, or lacks access to the model."""


class ModelNotFoundError(HttpStatusError):
    """404: the API does not serve the requested model id."""


class ResponseError(DetectionError):
    """The API answered 2xx but the body is not a usable prediction set."""
