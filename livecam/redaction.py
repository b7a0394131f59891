"""Removing API keys from text before it is logged, raised or written anywhere."""

from __future__ import annotations

import re
from urllib.parse import quote

_KEY_IN_TEXT = re.compile(r"(api_key=|Bearer\s+)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with ``secret`` and anything that looks like ``api_key=…`` or ``Bearer …`` as ``***``."""
    if secret:
        text = text.replace(secret, "***")
        text = text.replace(quote(secret, safe=""), "***")
    return _KEY_IN_TEXT.sub(r"\1***", text)
