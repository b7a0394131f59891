"""The one error the request handlers raise: an HTTP status with a message for the client."""

from __future__ import annotations


class HttpError(Exception):
    """Answer ``status`` with ``{"message": message}`` (and any extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
