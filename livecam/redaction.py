"""Removing API keys from text before it is logged, raised or written anywhere."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "key",
        "token",
        "access_token",
        "auth",
        "password",
        "passwd",
        "pwd",
        "secret",
        "sig",
        "signature",
    }
)

_KEY_IN_TEXT = re.compile(r"(api_key=|Bearer\s+)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with ``secret`` and anything that looks like ``api_key=…`` or ``Bearer …`` as ``***``."""
    if secret:
        text = text.replace(secret, "***")
        text = text.replace(quote(secret, safe=""), "***")
    return _KEY_IN_TEXT.sub(r"\1***", text)


def redact_url(url: str) -> str:
    """``url`` with credentials hidden: ``rtsp://user:pw@host/x?token=t`` -> ``rtsp://***@host/x?token=***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
