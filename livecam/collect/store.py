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
        data = json.loads(self.sidecar.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{self.sidecar.name} is not a JSON object")
        return data


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or whole.

    Raises:
        OSError: the write failed (nothing is left behind).
    """
    tmp = path.with_name(f".{path.name}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def write_item(directory: Path, stem: str, jpeg: bytes, annotation: str | None, sidecar: dict[str, Any]) -> Item:
    """Save one item, sidecar last.

    Raises:
        OSError: a file could not be written; the item's files written so far are removed.
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
    except OSError:
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


def remove_leftovers(directory: Path) -> int:
    """Delete temporary files a crash left behind; returns how many."""
    removed = 0
    for tmp in _leftovers(directory):
        try:
            tmp.unlink()
            removed += 1
        except OSError as exc:
            log.debug("cannot remove %s: %s", tmp, exc)
    return removed


def _leftovers(directory: Path) -> Iterator[Path]:
    for path in directory.glob(f".*{_TMP_SUFFIX}"):
        if path.name.endswith(
            (IMAGE_SUFFIX + _TMP_SUFFIX, ANNOTATION_SUFFIX + _TMP_SUFFIX, SIDECAR_SUFFIX + _TMP_SUFFIX)
        ):
            yield path
