"""The ``--json`` output: one JSON object per input frame, in order (JSON Lines).

A frame with predictions is written in Roboflow's response format, in the frame's own pixels,
so each line can be read by ``supervision.Detections.from_inference``::

    {"frame": 0, "time_s": 0.0, "image": {"width": 1280, "height": 720},
     "predictions": [{"x": 640.0, "y": 360.0, "width": 100.0, "height": 80.0,
                      "confidence": 0.91, "class": "person", "class_id": 0}]}
    {"frame": 1, "time_s": 0.04, "error": "http://127.0.0.1:9001/coco/1 failed (HTTP 503)"}

Frames skipped by ``--every`` carry the boxes they show and ``"from_frame"``, the frame those
boxes were computed on. In folder mode each line also has ``"file"``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from livecam.annotate.media import InputFrame
from livecam.errors import OutputError
from livecam.predictions import Predictions
from livecam.redaction import redact


class ClassIds:
    """Stable class ids for answers that lack ``class_id`` (supervision requires one)."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def fill(self, entries: list[dict[str, Any]]) -> None:
        """Give every entry without ``class_id`` the id of its class name, in order of first sight."""
        for entry in entries:
            if "class_id" not in entry:
                entry["class_id"] = self._ids.setdefault(str(entry.get("class", "")), len(self._ids))


def frame_record(
    frame: InputFrame, predictions: Predictions | None, error: str | None, from_frame: int | None, class_ids: ClassIds
) -> dict[str, Any]:
    """The JSON object for one frame.

    Args:
        frame: the input frame (its size is the ``image`` size).
        predictions: the boxes drawn on it, in its pixels; None when its request failed.
        error: why the request failed.
        from_frame: for frames not sent, the frame whose boxes they show.
        class_ids: fills in ``class_id`` where the server sent none.
    """
    record: dict[str, Any] = {"frame": frame.index}
    if frame.name is not None:
        record["file"] = frame.name
    if frame.time_s is not None:
        record["time_s"] = frame.time_s
    if from_frame is not None and from_frame != frame.index:
        record["from_frame"] = from_frame
    if predictions is None:
        record["error"] = redact(error) if error else "no answer"
        return record
    answer = predictions.to_roboflow()
    class_ids.fill(answer["predictions"])
    height, width = frame.image.shape[:2]
    record["image"] = {"width": width, "height": height}
    record["predictions"] = answer["predictions"]
    if "caption" in answer:
        record["caption"] = answer["caption"]
    return record


class JsonLinesWriter:
    """Writes one compact JSON object per line, each line flushed as it is written.

    Raises:
        OutputError: (from any method) the file cannot be opened or written (disk full, ...).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        try:
            self._file: TextIO = path.open("w", encoding="utf-8", buffering=1)
        except OSError as exc:
            raise self._error(exc) from exc

    def write(self, record: dict[str, Any]) -> None:
        """Append one object as one line."""
        try:
            self._file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        except OSError as exc:
            raise self._error(exc) from exc
        self.lines += 1

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        try:
            self._file.close()
        except OSError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write {self.path}: {exc.strerror or exc}")

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
