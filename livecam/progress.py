"""Progress of a long run: one refreshing bar on a terminal, plain periodic lines otherwise.

progress = Progress(total=250, stream=sys.stderr)
for done in range(1, 251):
    progress.update(done, failed=0)
progress.finish()
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

_RATE_WINDOW_S = 5.0
_BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    """``75`` -> ``"1:15"``, ``3725`` -> ``"1:02:05"``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Reports frames done out of a total, the rate, the time left and failures.

    Args:
        total: frames expected, or None when unknown (no percentage or ETA then).
        stream: where to write, usually ``sys.stderr``.
        tty: redraw one line in place; None asks ``stream.isatty()``.
        interval: seconds between lines when not a terminal (terminal redraws are at most 10/s).
        clock: monotonic seconds.
        label: what is counted, e.g. ``frames``.
        rate_unit: how the rate is shown, e.g. ``fps``.
    """

    def __init__(
        self,
        total: int | None,
        stream: TextIO,
        *,
        tty: bool | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        label: str = "frames",
        rate_unit: str = "fps",
    ) -> None:
        self.total = total if total and total > 0 else None
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._interval = 0.1 if self._tty else interval
        self._clock = clock
        self._label = label
        self._rate_unit = rate_unit
        self._started = clock()
        self._last_shown: float | None = None
        self._samples: deque[tuple[float, int]] = deque([(self._started, 0)])
        self._done = 0
        self._failed = 0
        self._width = 0

    def update(self, done: int, failed: int = 0) -> None:
        """Record progress; writes only when the refresh interval has passed."""
        now = self._clock()
        self._done, self._failed = done, failed
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _RATE_WINDOW_S:
            self._samples.popleft()
        if self._last_shown is None or now - self._last_shown >= self._interval:
            self._show(now)

    def finish(self) -> None:
        """Show the final state (and end the terminal line)."""
        now = self._clock()
        if self._tty:
            self._show(now)
            self._stream.write("\n")
            self._stream.flush()
        elif self._last_shown is None or self._last_shown < now:
            self._show(now)

    def clear(self) -> None:
        """Blank the terminal line so another line can be written; the next update draws the bar again."""
        if self._tty and self._width:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._width = 0
            self._last_shown = None

    def rate(self) -> float:
        """Frames per second over the last few seconds."""
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def line(self) -> str:
        """The current state as one line of text."""
        rate = self.rate()
        if self.total:
            percent = min(100, 100 * self._done // self.total)
            fields = [f"{self._done}/{self.total} {self._label} ({percent}%)"]
        else:
            fields = [f"{self._done} {self._label}"]
        fields.append(f"{rate:.1f} {self._rate_unit}")
        if self.total and rate > 0:
            fields.append(f"ETA {format_duration(max(0, self.total - self._done) / rate)}")
        fields.append(f"{self._failed} failed")
        text = ", ".join(fields)
        if self._tty and self.total:
            filled = min(_BAR_WIDTH, _BAR_WIDTH * self._done // self.total)
            text = f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {text}"
        return text

    def _show(self, now: float) -> None:
        self._last_shown = now
        text = self.line()
        if self._tty:
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self._stream.write("\r" + text + " " * pad)
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
