"""``--boxes-log PATH.jsonl``: one JSON line per displayed frame with the boxes as drawn.

Each line is ``{"frame": i, "from_frame": j, "age_ms": a, "predictions": [...]}``: the source
index of the frame shown, the index of the frame the answer was computed on (null before the
first answer), the answer's age when shown, and the boxes exactly as drawn (after motion
compensation) in Roboflow's centre format, in source-frame pixels. With several cameras each line
also has ``"camera": i`` (0-based, the order the sources were given). The display only puts a small
record in a bounded queue; a writer thread turns it into JSON and writes it, so a slow disk never
stalls the picture. When the buffer is full lines are dropped and counted; when writing fails
(a full disk, a closed pipe) it says so once and stops writing, and the display goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from livecam.errors import OutputError
from livecam.predictions import Prediction, prediction_json
from livecam.stats import BoxesLogStats
from livecam.workers import JOIN_TIMEOUT_S, Worker

log = logging.getLogger(__name__)

BUFFER_LINES = 4096
"""Lines waiting to be written at most (about two minutes of video at 30 fps)."""

_Record = tuple[int, int | None, float | None, tuple[Prediction, ...], int | None]


class BoxesLog:
    """The writer of one boxes log; :meth:`close` flushes what is queued (bounded) and ends it.

    Raises:
        OutputError: the file cannot be opened.
    """

    def __init__(self, path: Path, *, buffer_lines: int = BUFFER_LINES) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"--boxes-log: cannot write {self.path}: {exc.strerror or exc}") from exc
        self._queue: queue.Queue[_Record | None] = queue.Queue(buffer_lines)
        self.lines = 0
        """Lines written."""
        self.dropped = 0
        """Displayed frames with no line (the buffer was full, or writing had failed)."""
        self.failed: str | None = None
        """Why writing stopped, if it did."""
        self._closed = False
        self._worker = Worker(self._write_all, "livecam-boxes-log")
        self._worker.start()

    def write(
        self,
        frame: int,
        from_frame: int | None,
        age_ms: float | None,
        items: Sequence[Prediction],
        *,
        camera: int | None = None,
    ) -> None:
        """Queue the line of one displayed frame (of camera ``camera`` when there are several); never blocks."""
        if self.failed is not None or self._closed:
            self.dropped += 1
            return
        try:
            self._queue.put_nowait((frame, from_frame, age_ms, tuple(items), camera))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Write what is queued (for at most ``timeout`` s) and close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        if not self._worker.join(timeout):
            log.warning(
                "the boxes log %s was still being written after %.0f s; lines may be missing", self.path, timeout
            )
            return
        self._finish()

    def stats(self) -> BoxesLogStats:
        """The ``boxes_log`` section of the run statistics."""
        return BoxesLogStats(self.lines, self.dropped, self.failed)

    def _write_all(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            if self.failed is not None:
                self.dropped += 1
                continue
            try:
                self._file.write(line(*record))
                if self._queue.empty():
                    self._file.flush()
                self.lines += 1
            except (OSError, ValueError) as exc:  # ValueError: the file was closed under us
                self.dropped += 1
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        self.failed = reason
        log.error("the boxes log %s stopped: %s (the display goes on)", self.path, reason)

    def _finish(self) -> None:
        try:
            self._file.close()
        except OSError as exc:
            if self.failed is None:
                self._fail(exc)


def line(
    frame: int, from_frame: int | None, age_ms: float | None, items: Sequence[Prediction], camera: int | None = None
) -> str:
    """One line of the log (with its newline); ``camera`` only with several cameras."""
    data: dict[str, Any] = {} if camera is None else {"camera": camera}
    data.update(
        {
            "frame": frame,
            "from_frame": from_frame,
            "age_ms": None if age_ms is None else round(age_ms, 1),
            "predictions": [prediction_json(p, shapes=False) for p in items],
        }
    )
    return json.dumps(data, separators=(",", ":")) + "\n"
