"""Removing credentials from text before it is logged, raised or written anywhere.

:func:`redact` is the one redaction: every message, log line, error field and output that may
hold a URL, a server's words or the API key goes through it. It hides, anywhere in the text:

- the API key itself (as given and URL-quoted), and ``Bearer …`` tokens;
- the user and password of ``scheme://user:pass@host``;
- the value of every credential-like parameter, after ``?``, ``&``, ``;`` or ``/`` (the DVR path
  form ``rtsp://host/user=admin&password=…&channel=1``): see ``SECRET_NAMES``;
- an RTMP stream key, the last element of an ``rtmp://host/app/KEY`` path.
"""

from __future__ import annotations

import re

from livecam.sanitize import hide_secrets

#: Parameter names whose values are hidden (compared without case).
SECRET_NAMES = (
    "access_token",
    "api-key",
    "api_key",
    "apikey",
    "auth",
    "auth_token",
    "authorization",
    "jwt",
    "key",
    "loginpas",
    "loginuse",
    "pass",
    "passphrase",
    "passwd",
    "password",
    "psw",
    "pw",
    "pwd",
    "secret",
    "sig",
    "signature",
    "token",
    "user",
    "username",
    "usr",
    "x-amz-credential",
    "x-amz-security-token",
    "x-amz-signature",
    "x-api-key",
)

_NAMES = "|".join(re.escape(name) for name in sorted(SECRET_NAMES, key=len, reverse=True))
# A name not glued to a longer word ("monkey=" is not "key="), then its value up to the next separator.
# A value ends at a separator; punctuation right before a space or the end ("...?token=T, next")
# belongs to the sentence, not to the value.
_VALUE_END = r"(?=[,:.)\]]?(?:[\s&;#'\"<>]|$))"
_PARAM = re.compile(rf"(?<![\w.-])({_NAMES})=[^&;#\s'\"<>]*?{_VALUE_END}", re.IGNORECASE)
# Greedy up to the last "@" before the path, so an unescaped "@" inside a password is hidden too.
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s?#'\"<>]*@", re.IGNORECASE)
_RTMP_KEY = re.compile(rf"(\brtmp[a-z]*://[^/\s'\"<>]+/(?:[^/\s?#'\"<>]+/)+)[^/\s?#'\"<>]+?{_VALUE_END}", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer)\s+[^\s'\",;]+", re.IGNORECASE)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` with ``secret`` (the API key) and every credential form above replaced by ``***``.

    Example:
        ``redact("rtsp://admin:pw@cam/x?token=t")`` is ``"rtsp://***@cam/x?token=***"``.
    """
    if secret:
        text = hide_secrets(text, (secret,))
    text = _USERINFO.sub(r"\1***@", text)
    text = _RTMP_KEY.sub(r"\1***", text)
    text = _PARAM.sub(r"\1=***", text)
    return _BEARER.sub(r"\1 ***", text)


def redact_url(url: str) -> str:
    """``url`` with its credentials hidden (the same redaction as :func:`redact`)."""
    return redact(url)
