"""The one gate for strings that arrive from the network: class names, captions, error messages.

Everything an answer or an error body carries passes :func:`clean_text` where it enters, so
drawing, JSON, VOC, logs and the web view downstream never meet a lone surrogate, a control
character, an unbounded length or the API key. Writers still escape for their own format.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

#: The longest class or keypoint name kept; longer names are cut.
MAX_NAME = 64
#: The longest server message kept.
MAX_MESSAGE = 300

_ELLIPSIS = "\u2026"
_REPLACEMENT = "\ufffd"
# Lone UTF-16 surrogates (valid in JSON, not encodable as UTF-8) and every C0/C1 control,
# DEL, the Unicode line and paragraph separators, and the invisible marks that reorder or hide
# text on a terminal (bidirectional overrides and isolates, LRM/RLM, the byte order mark).
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def clean_text(text: str, *, limit: int = MAX_NAME, secrets: Iterable[str] = ()) -> str:
    """``text`` safe to draw, write and log: surrogates replaced, controls removed, capped, secrets hidden.

    Example:
        ``clean_text("bad\\ud800name\\x1b[2J")`` is ``"bad\\ufffdname[2J"``.
    """
    secrets = tuple(secrets)
    # Work on a bounded head only: a 16 MB name costs no more than a short one.
    text = text[: 4 * limit + max((len(s) for s in secrets), default=0)]
    text = _SURROGATE.sub(_REPLACEMENT, text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = hide_secrets(text, secrets)
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + _ELLIPSIS
    return text


#: A cut text ending in at least this many leading characters of a secret has them hidden too.
_MIN_SECRET_TAIL = 4


def hide_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each non-empty secret (as given and URL-quoted either way) replaced by ``***``.

    A text already cut short (ending in "…") also loses a trailing start of a secret, so a key
    cut in half by a length cap does not show its first half.
    """
    return Secrets(secrets).hide(text)


class Secrets:
    """Secrets to hide, each form (as given, URL-quoted) worked out once for many texts."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.forms = tuple(
            dict.fromkeys(f for s in secrets if s for f in (s, quote(s, safe=""), quote_plus(s, safe="")))
        )
        self._starts = tuple({form[:_MIN_SECRET_TAIL] for form in self.forms})

    def __bool__(self) -> bool:
        return bool(self.forms)

    def found_in(self, text: str) -> bool:
        """Whether :meth:`hide` would change ``text`` (a quick test: most texts hold no secret)."""
        if any(form in text for form in self.forms):
            return True
        return text.endswith(_ELLIPSIS) and any(start in text for start in self._starts)

    def hide(self, text: str) -> str:
        """``text`` with every form replaced by ``***`` (see :func:`hide_secrets`)."""
        for form in self.forms:
            text = text.replace(form, "***")
            if text.endswith(_ELLIPSIS):
                text = _hide_cut_tail(text, form)
        return text


def _hide_cut_tail(text: str, secret: str) -> str:
    body = text[: -len(_ELLIPSIS)]
    for size in range(min(len(secret) - 1, len(body)), _MIN_SECRET_TAIL - 1, -1):
        if body.endswith(secret[:size]):
            return body[:-size] + "***" + _ELLIPSIS
    return text


def for_log(text: str, *, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one printable log line: controls shown as ``\\xNN`` escapes, surrogates replaced, capped."""
    text = text[: limit + 1]  # escapes only lengthen it: what is cut here would be cut below
    text = _SURROGATE.sub(_REPLACEMENT, text)
    text = _CONTROL.sub(_escaped, text)
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + _ELLIPSIS
    return text


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
