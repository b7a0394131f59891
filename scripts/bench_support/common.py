"""What every benchmark shares: the machine, child processes, servers on loopback, tables."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import requests

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"
SAMPLES = REPO / "sample_videos"
PYTHON = sys.executable
START_TIMEOUT_S = 60.0

Scale = Literal["tiny", "quick", "full"]
"""How long the benchmarks run: ``tiny`` proves they work (meaningless figures), ``quick`` < 2 min."""
STOP_TIMEOUT_S = 15.0


@dataclass
class Section:
    """One benchmark's results: Markdown tables, notes, and the raw figures for the JSON file."""

    title: str
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        """The section as Markdown."""
        parts = [f"## {self.title}", ""]
        for table in self.tables:
            parts += [table, ""]
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; floats get up to two decimals, None shows as a dash."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def percentile(samples: Sequence[float], point: float) -> float | None:
    """Nearest-rank percentile, None for no samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(point / 100 * len(ordered)) - 1))]


def machine() -> dict[str, Any]:
    """The machine and library versions the results came from."""
    import cv2
    import numpy

    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory_gb = round(int(first.split()[1]) / 1024 / 1024, 1)
    try:
        import onnxruntime

        ort_version: str | None = onnxruntime.__version__
    except ImportError:
        ort_version = None
    try:
        from importlib.metadata import version

        turbo: str | None = version("PyTurboJPEG")
    except ImportError:
        turbo = None
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "opencv": cv2.__version__,
        "numpy": numpy.__version__,
        "onnxruntime": ort_version,
        "pyturbojpeg": turbo,
    }


@dataclass(frozen=True)
class ChildResult:
    """A finished child process: exit status, wall time and CPU seconds (user + system)."""

    returncode: int
    wall_s: float
    cpu_s: float
    stderr: str


_CHILD_LOCK = threading.Lock()


def run_child(args: Sequence[str], timeout_s: float) -> ChildResult:
    """Run a command to completion and measure its CPU time.

    The CPU time is the change of ``RUSAGE_CHILDREN`` across the wait, so only one measured
    child runs at a time (servers started with :func:`serving` are reaped after it).

    Raises:
        RuntimeError: the command failed or did not finish within ``timeout_s``.
    """
    with _CHILD_LOCK:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
        try:
            _, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            process.communicate(timeout=STOP_TIMEOUT_S)
            raise RuntimeError(f"{' '.join(args)} did not finish within {timeout_s:.0f} s") from exc
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {process.returncode}:\n{stderr[-2000:]}")
    return ChildResult(process.returncode, wall, cpu, stderr)


@contextlib.contextmanager
def serving(args: Sequence[str], ready: str = "port-line", port: int | None = None) -> Iterator[str]:
    """Run a server process for the ``with`` body; yields its base URL.

    Args:
        args: the command.
        ready: ``port-line`` (it prints ``PORT n`` on stdout) or ``healthz`` (poll ``/healthz`` on ``port``).
        port: the port for ``healthz``.
    """
    process = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        if ready == "port-line":
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"{' '.join(args)} did not start (said {line!r})")
            url = f"http://127.0.0.1:{int(line.split()[1])}"
        else:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def _wait_healthy(url: str, process: subprocess.Popen[str]) -> None:
    stop = threading.Event()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {process.returncode} while starting")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return
        stop.wait(0.2)
    raise RuntimeError(f"the server at {url} did not answer /healthz within {START_TIMEOUT_S:.0f} s")


def latency_server(latency_ms: float, slots: int) -> contextlib.AbstractContextManager[str]:
    """The model-free latency server (:mod:`latency_server`) as a separate process."""
    return serving(
        [
            PYTHON,
            str(SCRIPTS / "bench_support" / "latency_server.py"),
            "--latency-ms",
            f"{latency_ms:g}",
            "--slots",
            str(slots),
        ]
    )


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def livecam_serve(*extra: str) -> contextlib.AbstractContextManager[str]:
    """``livecam serve`` (the real model) as a separate process on a free port."""
    port = free_port()
    return serving([PYTHON, "-m", "livecam", "serve", "--port", str(port), "-q", *extra], "healthz", port)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either is missing or b is zero."""
    if a is None or b is None or b == 0:
        return None
    return a / b
