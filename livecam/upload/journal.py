"""The upload journal: one line per finished step, so a rerun sends nothing twice.

``DIR/upload-journal.jsonl`` gets a line when an image is uploaded (with the id Roboflow gave
it) and another when the item is done (its pre-label saved, or it had none)::

    {"project": "my-project", "item": "20250101-120000-000-ab12-00001", "step": "image", "id": "Xy12"}
    {"project": "my-project", "item": "20250101-120000-000-ab12-00001", "step": "done"}

Each line is flushed to disk before the next call starts. A process killed mid-line leaves a
torn line (JSON cut short), which is ignored; the step it recorded is simply done again, and
Roboflow answers a repeated image with its existing id. Any other line that is not an entry
(edited, corrupted) stops the run before anything is sent, naming the file and the line. The journal
holds no key and is never opened through a symbolic link. While a run holds it, a second
``livecam upload`` on the same folder is refused.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from livecam.errors import ConfigError, LivecamError, OutputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the journal still prevents duplicates
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

JOURNAL_NAME = "upload-journal.jsonl"


class Journal:
    """What was uploaded from one folder, read at open and appended to as steps finish.

    Raises (on open):
        ConfigError: another upload is running on the folder.
        LivecamError: the journal cannot be read or written.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / JOURNAL_NAME
        self._images: dict[tuple[str, str], str] = {}
        self._done: set[tuple[str, str]] = set()
        self._handle: IO[bytes] | None = None

    def __enter__(self) -> Journal:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def open(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        try:
            handle = os.fdopen(os.open(self.path, flags, 0o644), "a+b")
        except OSError as exc:
            why = "it is a symbolic link" if self.path.is_symlink() else exc.strerror or exc
            raise OutputError(f"cannot open the upload journal {self.path}: {why}") from None
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                raise ConfigError(
                    f"another livecam upload is using {self.path.parent}; wait for it to finish"
                ) from None
        self._handle = handle
        handle.seek(0)
        content = handle.read()
        for number, line in enumerate(content.splitlines(), 1):
            entry = _entry(line)
            if entry is _TORN:
                log.debug("ignored torn line %d of %s (a run was killed while writing it)", number, self.path)
                continue
            if not isinstance(entry, dict):
                self.close()
                raise ConfigError(
                    f"the upload journal {self.path} has a line that is not an entry (line {number}); "
                    "remove that line, or move the file away to check every item with Roboflow again"
                )
            key = (entry["project"], entry["item"])
            if entry["step"] == "image" and isinstance(entry.get("id"), str):
                self._images[key] = entry["id"]
            elif entry["step"] == "done":
                self._done.add(key)
        if content and not content.endswith(b"\n"):
            self._append(b"\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # also releases the lock
            self._handle = None

    def image_id(self, project: str, item: str) -> str | None:
        """The Roboflow id of ``item``'s image in ``project``, once uploaded."""
        return self._images.get((project, item))

    def done(self, project: str, item: str) -> bool:
        """Whether ``item`` is fully uploaded to ``project``."""
        return (project, item) in self._done

    def record_image(self, project: str, item: str, image_id: str) -> None:
        self._record({"project": project, "item": item, "step": "image", "id": image_id})
        self._images[(project, item)] = image_id

    def record_done(self, project: str, item: str) -> None:
        self._record({"project": project, "item": item, "step": "done"})
        self._done.add((project, item))

    def _record(self, entry: dict[str, str]) -> None:
        self._append((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))

    def _append(self, data: bytes) -> None:
        if self._handle is None:
            raise LivecamError("the upload journal is not open")
        try:
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write the upload journal {self.path}: {exc.strerror or exc}") from exc


_TORN = object()
"""A line cut short by a killed run: JSON that ends before it is complete."""


def _entry(line: bytes) -> dict[str, Any] | object | None:
    """The entry on ``line``; :data:`_TORN` for a line cut short; None for anything else."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        cut_short = exc.pos >= len(exc.doc) or exc.msg.startswith("Unterminated string")
        return _TORN if line.startswith(b"{") and cut_short else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in ("project", "item", "step")):
        return None
    return entry
