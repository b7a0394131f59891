"""The quit sequence: the only keys a kiosk listens to.

``cv2.waitKey`` reports a key without its modifiers (Ctrl+Q arrives as ``q``), so the kiosk
quits on a short *sequence* typed quickly, e.g. ``qqq`` or ``esc esc q``, rather than a chord.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from livecam.errors import ConfigError

SEQUENCE_WINDOW_S = 2.0
"""The whole sequence must be typed within this many seconds."""

_NAMED = {"esc": 27, "escape": 27, "space": 32, "enter": 13, "return": 13, "tab": 9, "backspace": 8}


@dataclass(frozen=True)
class QuitSequence:
    """Key codes that quit the kiosk when typed in order within :data:`SEQUENCE_WINDOW_S`.

    An empty sequence disables quitting from the keyboard (stop the service instead).
    """

    codes: tuple[int, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> QuitSequence:
        """``qqq`` (one key per character), ``esc esc q`` (space-separated names), or ``none``.

        Raises:
            ConfigError: an unknown key name or a modifier combination.
        """
        spec = text.strip().lower()
        if spec in ("", "none", "off"):
            return cls((), "none")
        if "+" in spec:
            raise ConfigError(
                f"quit sequence {text!r}: OpenCV reports keys without Ctrl/Alt/Shift, so "
                "combinations cannot be told apart; use a sequence such as 'qqq' or 'esc esc q'"
            )
        tokens = spec.split() if " " in spec else list(spec)
        codes = []
        for token in tokens:
            if token in _NAMED:
                codes.append(_NAMED[token])
            elif len(token) == 1 and " " < token <= "~":
                codes.append(ord(token))
            else:
                raise ConfigError(
                    f"quit sequence {text!r}: unknown key {token!r}; use single characters "
                    f"or {', '.join(sorted(_NAMED))}"
                )
        if len(codes) > 8:
            raise ConfigError(f"quit sequence {text!r} is longer than 8 keys")
        return cls(tuple(codes), " ".join(tokens) if " " in spec else spec)


class SequenceMatcher:
    """Feeds key codes, one at a time, and says when the quit sequence was completed."""

    def __init__(self, sequence: QuitSequence, window_s: float = SEQUENCE_WINDOW_S) -> None:
        self._codes = sequence.codes
        self._window = window_s
        self._recent: deque[tuple[int, float]] = deque(maxlen=max(1, len(sequence.codes)))

    def feed(self, code: int, now: float) -> bool:
        """Record key ``code`` (as ``cv2.waitKey`` returned it) pressed at ``now``.

        Returns:
            True when this key completes the sequence.
        """
        if not self._codes or code < 0:
            return False
        key = code & 0xFF
        if ord("A") <= key <= ord("Z"):
            key += 32  # Shift or Caps Lock still counts
        self._recent.append((key, now))
        if len(self._recent) < len(self._codes):
            return False
        typed = tuple(k for k, _ in self._recent)
        if typed == self._codes and now - self._recent[0][1] <= self._window:
            self._recent.clear()
            return True
        return False
