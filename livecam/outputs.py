"""Output files: checked before any work starts, and written beside their target until complete.

    check_writable(Path("out.jsonl"), "--json")     # ConfigError now rather than a traceback later
    staged = StagedFile(Path("out.jsonl"))           # write to staged.path ...
    staged.commit()                                  # ... then move it over out.jsonl (or discard())

A run that fails before its first useful frame (a rejected key, an unknown model) then leaves the
file a user had there as it was, and no empty video behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from livecam.errors import ConfigError, OutputError


def check_writable(path: Path, flag: str) -> None:
    """Make sure ``path`` can be written, before any work starts; writes nothing to it.

    A regular file (or a name not yet taken) needs a folder that takes new files (a probe file
    is created and removed); anything else (``/dev/null``, ``/dev/stdout``) is opened and given
    an empty write, which a full device (``/dev/full``) refuses.

    Raises:
        ConfigError: naming ``flag``, the path and the reason.
    """
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{flag}: folder {folder} does not exist; create it first")
    try:
        if _in_place(path):
            _probe_special(path)
        else:
            if path.exists() and not os.access(path, os.W_OK):
                raise PermissionError(13, "permission denied")
            _probe_folder(folder)
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write {path} ({exc.strerror or exc}); choose another path") from None


def check_writable_folder(folder: Path, flag: str) -> None:
    """Make sure files can be created in ``folder`` (or in its parent, when it does not exist yet).

    Raises:
        ConfigError: naming ``flag``, the folder and the reason.
    """
    where = folder if folder.is_dir() else folder.parent
    try:
        _probe_folder(where)
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write in {where} ({exc.strerror or exc}); choose another folder") from None


class StagedFile:
    """A file written under a hidden name beside ``target``, then moved over it in one step.

    Targets that are not regular files (devices, symlinks such as ``/dev/stdout``) are written
    in place: :attr:`path` is then ``target`` itself and commit and discard do nothing.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.in_place = _in_place(target)
        hidden = target.with_name(f".{target.stem}.{os.getpid()}.partial{target.suffix}")  # same suffix: same codec
        self.path = target if self.in_place else hidden

    def commit(self) -> None:
        """Move the written file over the target.

        Raises:
            OutputError: it cannot be moved (the folder changed under the run).
        """
        if self.in_place:
            return
        try:
            os.replace(self.path, self.target)
        except OSError as exc:
            raise OutputError(f"cannot move {self.path} to {self.target}: {exc.strerror or exc}") from exc

    def discard(self) -> None:
        """Remove the written file; the target stays as it was."""
        if not self.in_place:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _in_place(path: Path) -> bool:
    return path.is_symlink() or (path.exists() and not path.is_file())


def _probe_folder(folder: Path) -> None:
    fd, name = tempfile.mkstemp(prefix=".livecam-probe-", dir=folder)
    os.close(fd)
    os.unlink(name)


def _probe_special(path: Path) -> None:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return  # opening a pipe would wait for its reader; it is read by whoever made it
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"")
    finally:
        os.close(fd)
