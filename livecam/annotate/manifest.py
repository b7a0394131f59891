"""What is already done in an output folder: a small JSON manifest, replaced atomically.

    manifest = Manifest(outdir)
    if not manifest.complete("bikes", identity):
        ...annotate bikes...
        manifest.record("bikes", identity, outputs)

An entry names the input (path, size, modification time), the settings that shape the outputs
(model, thresholds, drawing) and each output's size when it was finished. It counts as complete
only while all of these still match, so a changed input, other settings or a deleted or
rewritten output is done again. One process writes the manifest: the one running the command.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from livecam.errors import OutputError

log = logging.getLogger(__name__)

MANIFEST_NAME = ".livecam-annotate.json"
_VERSION = 1


def input_identity(path: Path, settings: str) -> dict[str, Any]:
    """What makes a result reusable: the input file as it is now and the settings it was made with.

    Raises:
        OSError: the input cannot be examined.
    """
    info = path.stat()
    return {"input": str(path.resolve()), "bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "settings": settings}


class Manifest:
    """The manifest of one output folder (created on the first record).

    A manifest that cannot be read (damaged, from a newer version) is set aside with a warning:
    everything is then done again, which is slow but never wrong.
    """

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = self._load()

    def complete(self, key: str, identity: Mapping[str, Any]) -> bool:
        """Whether ``key`` was finished from this identity and its outputs are still as written."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.get("identity") != dict(identity):
            return False
        outputs: dict[str, int] = entry.get("outputs", {})
        for name, size in outputs.items():
            try:
                if (self.path.parent / name).stat().st_size != size:
                    return False
            except OSError:
                return False
        return True

    def entry(self, key: str) -> dict[str, Any] | None:
        """The recorded entry of ``key`` (a copy), if any."""
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else json.loads(json.dumps(entry))

    def record(
        self, key: str, identity: Mapping[str, Any], outputs: Sequence[Path], extra: Mapping[str, Any] | None = None
    ) -> None:
        """Mark ``key`` complete with its ``outputs`` (files in the folder) as they are now.

        Raises:
            OutputError: the manifest cannot be written (folder gone, disk full).
        """
        sizes = {str(p.relative_to(self.path.parent)): p.stat().st_size for p in outputs}
        with self._lock:
            self._entries[key] = {"identity": dict(identity), "outputs": sizes, **(extra or {})}
            self._save()

    def forget(self, keys: Sequence[str]) -> None:
        """Drop entries (their outputs were folded into another).

        Raises:
            OutputError: the manifest cannot be written.
        """
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
            self._save()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read (%s); everything in the folder will be done again", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("version") != _VERSION or not isinstance(data.get("done"), dict):
            log.warning("%s is not a manifest this livecam writes; everything will be done again", self.path)
            return {}
        return {str(k): v for k, v in data["done"].items() if isinstance(v, dict)}

    def _save(self) -> None:
        # Called with the lock held. A new file then a rename: a crash leaves the old manifest or the new one.
        temporary = self.path.with_name(self.path.name + ".tmp")
        text = json.dumps({"version": _VERSION, "done": self._entries}, indent=1, sort_keys=True)
        try:
            with temporary.open("w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            raise OutputError(
                f"cannot write {self.path} ({exc.strerror or exc}); check the folder and free space"
            ) from exc
