"""The collect folder on disk: one item is ``STEM.jpg``, ``STEM.xml`` and ``STEM.livecam.json``.

Each file is written to a temporary name, flushed to disk and renamed into place, and the
sidecar goes last: an item whose sidecar exists is complete, and a crash leaves at most a few
hidden temporary files, which the next start removes. The sidecar's own name keeps Roboflow's
folder import from mistaking it for the annotation of ``STEM.jpg``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".livecam.json"
IMAGE_SUFFIX = ".jpg"
ANNOTATION_SUFFIX = ".xml"
_TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Item:
    """One complete collected item.

    Attributes:
        stem: the common file name part.
        image: the JPEG.
        annotation: the VOC pre-label, or None when the answer had no boxes to label.
        sidecar: the JSON description.
    """

    stem: str
    image: Path
    annotation: Path | None
    sidecar: Path

    def read_sidecar(self) -> dict[str, Any]:
        """The sidecar's content.

        Raises:
            OSError, ValueError: unreadable or not a JSON object.
        """
        return sidecar_object(self.sidecar.read_text(encoding="utf-8"), str(self.sidecar))


def sidecar_object(text: str, name: str) -> dict[str, Any]:
    """The JSON object a sidecar's ``text`` holds (``name`` says which file in the messages).

    Raises:
        ValueError: not JSON, nested too deeply, or not an object.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"{name} is nested too deeply to be a sidecar") from None
    except ValueError as exc:
        raise ValueError(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{name} is not a JSON object")
    return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or whole.

    Raises:
        OSError: the write failed (nothing is left behind, whatever the exception).
    """
    tmp = path.with_name(f".{path.name}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_item(directory: Path, stem: str, jpeg: bytes, annotation: str | None, sidecar: dict[str, Any]) -> Item:
    """Save one item, sidecar last.

    Raises:
        OSError: a file could not be written. Whatever the exception (a name that cannot be
            encoded, an interrupt), the item's files written so far are removed first.
    """
    image = directory / f"{stem}{IMAGE_SUFFIX}"
    xml = directory / f"{stem}{ANNOTATION_SUFFIX}" if annotation is not None else None
    side = directory / f"{stem}{SIDECAR_SUFFIX}"
    written: list[Path] = []
    try:
        write_atomic(image, jpeg)
        written.append(image)
        if xml is not None and annotation is not None:
            write_atomic(xml, annotation.encode("utf-8"))
            written.append(xml)
        write_atomic(side, (json.dumps(sidecar, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return Item(stem, image, xml, side)


def items(directory: Path) -> list[Item]:
    """The complete items in ``directory``, oldest name first."""
    found = []
    for sidecar in sorted(directory.glob(f"*{SIDECAR_SUFFIX}")):
        stem = sidecar.name[: -len(SIDECAR_SUFFIX)]
        image = directory / f"{stem}{IMAGE_SUFFIX}"
        if not image.is_file():
            continue
        xml = directory / f"{stem}{ANNOTATION_SUFFIX}"
        found.append(Item(stem, image, xml if xml.is_file() else None, sidecar))
    return found


def remove_leftovers(directory: Path, *, now: float | None = None) -> int:
    """Delete what a crash left behind; returns how many files.

    That is temporary files, and the parts of an item that never got its sidecar (a JPEG, a
    pre-label) or that lost its JPEG. Only livecam's own item names are touched, and only parts
    older than ``ORPHAN_AGE_S`` (``now``: seconds since the epoch), so an item another process
    is writing right now is left alone.
    """
    removed = 0
    cutoff = (time.time() if now is None else now) - ORPHAN_AGE_S
    old_orphans = [path for path in _orphans(directory) if _mtime(path) <= cutoff]
    for path in [*_leftovers(directory), *old_orphans]:
        try:
            path.unlink()
            removed += 1
        except OSError as exc:
            log.debug("cannot remove %s: %s", path, exc)
    if removed:
        log.info("removed %d incomplete file(s) an interrupted run left in %s", removed, directory)
    return removed


ORPHAN_AGE_S = 60.0
"""Parts of an item younger than this may still be being written by another process."""

# The stems the collector gives its items: 20261206-211957-111-7e6d-00001.
_STEM = re.compile(r"\d{8}-\d{6}-\d{3}-[0-9a-f]{4}-\d{5}")


def _leftovers(directory: Path) -> Iterator[Path]:
    for path in directory.glob(f".*{_TMP_SUFFIX}"):
        if path.name.endswith(
            (IMAGE_SUFFIX + _TMP_SUFFIX, ANNOTATION_SUFFIX + _TMP_SUFFIX, SIDECAR_SUFFIX + _TMP_SUFFIX)
        ):
            yield path


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone already: nothing to remove


def _orphans(directory: Path) -> Iterator[Path]:
    """Item files whose item is incomplete: no sidecar, or a sidecar without its JPEG."""
    for path in directory.iterdir():
        for suffix in (SIDECAR_SUFFIX, IMAGE_SUFFIX, ANNOTATION_SUFFIX):
            if path.name.endswith(suffix):
                stem = path.name[: -len(suffix)]
                break
        else:
            continue
        if not _STEM.fullmatch(stem):
            continue
        complete = (directory / f"{stem}{SIDECAR_SUFFIX}").is_file() and (directory / f"{stem}{IMAGE_SUFFIX}").is_file()
        if not complete:
            yield path
