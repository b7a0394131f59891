"""The free-space floor: collection stops before it fills the disk the video and the OS need."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

FreeSpace = Callable[[Path], int]
"""Free bytes available to this user on the file system holding a path."""


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system."""
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


class DiskGuard:
    """Says whether there is room for another item above ``min_free_bytes``.

    Args:
        directory: the collect folder.
        min_free_bytes: the floor.
        free_space: how free space is measured (tests pass their own).
    """

    def __init__(self, directory: Path, min_free_bytes: int, free_space: FreeSpace = free_bytes) -> None:
        self._directory = directory
        self._floor = min_free_bytes
        self._free_space = free_space

    @property
    def floor(self) -> int:
        return self._floor

    def free(self) -> int:
        """Free bytes now.

        Raises:
            OSError: the folder cannot be inspected.
        """
        return self._free_space(self._directory)

    def room_for(self, nbytes: int) -> bool:
        """Whether ``nbytes`` more still leave the floor free."""
        return self.free() - nbytes >= self._floor
