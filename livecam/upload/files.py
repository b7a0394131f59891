"""A collected item's files as ``livecam upload`` reads them: regular files of the folder, never through a link.

A ``STEM.jpg`` that is a symbolic link (say to a private key) or that resolves outside the folder
is refused, and so is anything that is not a regular file or is larger than an item's file can
be. Sidecars must be JSON objects. Every refusal is an :class:`ItemFileError` naming the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from livecam.collect.store import sidecar_object
from livecam.errors import LivecamError

MAX_IMAGE_BYTES = 64 << 20
MAX_TEXT_BYTES = 16 << 20


class ItemFileError(LivecamError):
    """One file of an item cannot be uploaded; the message names it and says why."""


def read_item_file(path: Path, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """The content of ``path``, a regular file directly in its folder.

    Raises:
        ItemFileError: a symbolic link, outside the folder, not a regular file, over ``limit``
            bytes, or unreadable.
    """
    name = path.name
    if path.is_symlink():
        raise ItemFileError(f"{name} is a symbolic link; refused (only files --collect wrote are uploaded)")
    try:
        if path.resolve().parent != path.parent.resolve():
            raise ItemFileError(f"{name} resolves outside {path.parent}; refused")
        # O_NOFOLLOW: a link swapped in since the check is not followed; O_NONBLOCK: a FIFO does not hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ItemFileError(f"{name} is not a regular file; refused")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ItemFileError(f"cannot read {name} ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise ItemFileError(f"{name} is larger than {limit >> 20} MB; refused")
    return data


def read_item_text(path: Path) -> str:
    """``path`` (see :func:`read_item_file`) as UTF-8 text.

    Raises:
        ItemFileError: as :func:`read_item_file`, or not UTF-8.
    """
    try:
        return read_item_file(path, MAX_TEXT_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ItemFileError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_sidecar(path: Path) -> dict[str, Any]:
    """The JSON object in the sidecar ``path``.

    Raises:
        ItemFileError: as :func:`read_item_text`, not JSON, nested too deep, or not an object.
    """
    try:
        return sidecar_object(read_item_text(path), path.name)
    except ValueError as exc:
        raise ItemFileError(str(exc)) from None
