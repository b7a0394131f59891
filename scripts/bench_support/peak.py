"""A command's own peak memory, measured through a small parent process.

Linux counts, in a process's peak, the size of the process it was forked from, so a command
started straight from a large process (pytest, a benchmark driver) would report that process's
size. :func:`measured` starts it from a small Python process that reports the command's own peak.

    proc = subprocess.Popen(measured(command), stderr=...)
    errors, peak = peak_mb(stderr_text)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

_MARK = "LIVECAM_PEAK_RSS_KB"
_PARENT = f"""
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write("\\n{_MARK} %d\\n" % usage.ru_maxrss)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def measured(command: Sequence[str]) -> list[str]:
    """``command`` run by the small parent process (same exit status; its stderr ends with the peak)."""
    return [sys.executable, "-c", _PARENT, *command]


def peak_mb(errors: str) -> tuple[str, float]:
    """The command's own stderr and its peak RSS in MB (infinite when the parent did not report it)."""
    match = re.search(rf"\n{_MARK} (\d+)\n", errors)
    if match is None:
        return errors, float("inf")
    return errors[: match.start()], int(match.group(1)) / 1024
