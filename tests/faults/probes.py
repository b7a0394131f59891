"""What a process holds: threads, open sockets, descriptors and resident memory, read from /proc."""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def socket_inodes(pid: int | str = "self") -> frozenset[str]:
    """The inodes of the sockets the process has open."""
    inodes = set()
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(entry)
        except FileNotFoundError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return frozenset(inodes)


def socket_details(pid: int | str = "self") -> list[str]:
    """``proto local -> remote state`` for each open socket of the process (for failure messages)."""
    inodes = set(socket_inodes(pid))
    found = []
    for proto in ("tcp", "tcp6", "udp", "unix"):
        table = Path(f"/proc/{pid}/net/{proto}")
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            inode = fields[6] if proto == "unix" else fields[9]
            if inode in inodes:
                inodes.discard(inode)
                found.append(
                    f"{proto} {_addr(fields[1])} -> {_addr(fields[2])} state {fields[3]}"
                    if proto != "unix"
                    else f"unix {fields[-1] if len(fields) > 7 else ''}"
                )
    return found + [f"socket inode {i}" for i in sorted(inodes)]


def _addr(hex_addr: str) -> str:
    host, _, port = hex_addr.partition(":")
    return f"{host}:{int(port, 16)}" if port else hex_addr


def open_fds(pid: int | str = "self") -> int:
    """Descriptors the process has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def child_pids(pid: int | str = "self") -> frozenset[int]:
    """Processes whose parent is ``pid`` (not yet reaped included), from /proc."""
    parent = str(os.getpid() if pid == "self" else pid)
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while we looked
        if fields[1] == parent:
            found.add(int(entry.name))
    return frozenset(found)


def rss_kb(pid: int | str = "self") -> int:
    """Resident memory in kB (VmRSS)."""
    return _status_field(pid, "VmRSS")


def os_threads(pid: int | str = "self") -> int:
    """Threads of the process as the kernel counts them."""
    return _status_field(pid, "Threads")


def _status_field(pid: int | str, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(f"/proc/{pid}/status has no {name}")


@dataclass(frozen=True)
class Resources:
    """A snapshot of this process's Python threads, open sockets and child processes."""

    threads: frozenset[threading.Thread]
    sockets: frozenset[str]
    """Inodes of the open sockets."""
    children: frozenset[int] = frozenset()

    @classmethod
    def now(cls) -> Resources:
        """The snapshot; sockets that earlier tests left only to the garbage collector go first, so
        they cannot close later and upset the count."""
        gc.collect()
        return cls(frozenset(threading.enumerate()), socket_inodes(), child_pids())

    def leftover_threads(self, timeout: float = 5.0) -> list[str]:
        """Threads started since this snapshot still alive after joining each for up to ``timeout`` s."""
        extra = [t for t in threading.enumerate() if t not in self.threads]
        for thread in extra:
            thread.join(timeout)
        return [t.name for t in extra if t.is_alive()]

    def assert_released(self) -> None:
        """Every thread, process and socket opened since the snapshot has ended or been closed."""
        assert self.leftover_threads() == []
        # Every live thread was there before (a thread of an earlier test may have ended since,
        # so the count can drop; it never grows).
        assert set(threading.enumerate()) <= self.threads
        # A socket opened since is a leak; one of an earlier test may have closed meanwhile.
        opened = socket_inodes() - self.sockets
        assert not opened, (sorted(opened), socket_details())
        assert child_pids() <= self.children


class _TextHandler(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self._lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self._lines.append(self.format(record))


@contextmanager
def logs_as_text(name: str = "livecam") -> Iterator[list[str]]:
    """Collect the formatted log lines of ``name`` (and keep them from pytest's capture).

    Log capture that keeps records also keeps their arguments alive, exceptions included, and an
    exception's traceback can hold a finished HTTP response and through it a pooled socket. A
    running ``livecam`` formats each record and drops it; so does this.
    """
    logger = logging.getLogger(name)
    lines: list[str] = []
    handler = _TextHandler(lines)
    saved = logger.propagate, logger.level
    logger.addHandler(handler)
    logger.propagate, logger.level = False, logging.DEBUG
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.propagate, logger.level = saved
