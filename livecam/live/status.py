"""Thread-safe status messages that the display shows over the picture."""

from __future__ import annotations

import threading


class StatusBoard:
    """Named status lines ("source", "api", ...) set by worker threads, read by the display.

    A message set to None is cleared. ``lines()`` returns what is currently wrong, in a stable
    order, so the display can draw a banner without knowing who set it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: dict[str, str] = {}

    def set(self, key: str, message: str | None) -> None:
        with self._lock:
            if message is None:
                self._messages.pop(key, None)
            else:
                self._messages[key] = message

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._messages.get(key)

    def lines(self) -> list[str]:
        with self._lock:
            return [self._messages[k] for k in sorted(self._messages)]
