"""The one log filter: every record becomes one printable line with credentials hidden.

A server's message holding a newline and ANSI escapes must not forge a log line nor clear the
terminal, and no record may show the API key or a camera's password, whoever logged it.
"""

from __future__ import annotations

import logging

from livecam.redaction import redact
from livecam.sanitize import for_log

#: The longest log message kept (a traceback's lines are each capped on their own).
MAX_LINE = 2000
_CONTINUATION = "\n    "


class SafeLogFilter(logging.Filter):
    """Redacts (:func:`~livecam.redaction.redact`) and escapes controls (:func:`~livecam.sanitize.for_log`).

    A traceback stays readable: its lines follow the message, each indented, so none of them can
    pass for a record of its own.

    Args:
        secret: the API key, hidden in every form it may take.
    """

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError) as exc:  # a call with arguments that do not fit its format
            message = f"{record.msg!r} (unformattable: {type(exc).__name__})"
        lines = [for_log(self.clean(message), limit=MAX_LINE)]
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            lines += [for_log(self.clean(line), limit=MAX_LINE) for line in trace.splitlines()]
            record.exc_info = None
            record.exc_text = None
        if record.stack_info:
            lines += [for_log(self.clean(line), limit=MAX_LINE) for line in record.stack_info.splitlines()]
            record.stack_info = None
        record.msg = _CONTINUATION.join(lines)
        record.args = None
        return True

    def clean(self, text: str) -> str:
        """``text`` with credentials hidden (controls are escaped afterwards, line by line)."""
        return redact(text, self._secret)
