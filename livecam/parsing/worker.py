"""The parent's side of the parse worker: one lazily started process per run, restarted if it dies.

``json.loads`` of a 1 MB answer holds the interpreter lock for about 15 ms and validating it for
longer; the display thread, which gives the lock up around every OpenCV call, then waits for it
again and again and misses frames. Bodies of ``INLINE_LIMIT`` bytes or more are therefore decoded
and validated in a child process (a plain interpreter over two pipes: no fork of this threaded
process, no resource tracker or forkserver left behind), and come back as a small pickle of the
capped result; smaller bodies cost less than the round trip and stay in the calling thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pickle
import select
import subprocess
import threading
import time
from typing import Any

from livecam.errors import ResponseError
from livecam.parsing.body import NotJson, parse_body
from livecam.parsing.child import READY, REPLY, REQUEST
from livecam.predictions import Predictions
from livecam.workers import ChildProcess

log = logging.getLogger(__name__)

INLINE_LIMIT = 16 * 1024
"""Bodies shorter than this are parsed in the calling thread (a 300-box answer is about 30 KB)."""
START_TIMEOUT_S = 20.0
REPLY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 2.0
PIPE_BYTES = 1 << 20


class WorkerGone(Exception):
    """The worker process ended or stopped answering during a request."""


class AnswerParser:
    """Parses answer bodies, large ones in a worker process; safe to share between threads.

    The process starts with the first large body and lives until :meth:`close`; if it dies it is
    started again for the next large body. If it cannot start at all, bodies are parsed in the
    calling thread (slower to display, never wrong).

    Args:
        inline_limit: bodies shorter than this (bytes) are parsed in the calling thread.
        reply_timeout: seconds a parse may take before the worker is replaced.
    """

    def __init__(self, inline_limit: int = INLINE_LIMIT, reply_timeout: float = REPLY_TIMEOUT_S) -> None:
        self.inline_limit = inline_limit
        self._reply_timeout = reply_timeout
        self._lock = threading.Lock()  # one request on the pipes at a time
        self._child = ChildProcess("livecam.parsing.child", quiet=True, stop_timeout=STOP_TIMEOUT_S)
        self._closed = False
        self._unavailable = False
        self.starts = 0
        """Worker processes started so far."""

    @property
    def pid(self) -> int | None:
        """The worker's process id while it runs."""
        return self._child.pid

    def parse(self, body: bytes, image_size: tuple[int, int] | None) -> Predictions:
        """Decode and validate ``body`` (like :func:`~livecam.parsing.body.parse_body`).

        Raises:
            NotJson: the body is not JSON.
            ResponseError: it is not a prediction answer, or the worker died while parsing it
                (retryable; the next large body starts a new worker).
        """
        if len(body) < self.inline_limit or self._unavailable or self._closed:
            return parse_body(body, image_size)
        with self._lock:
            if self._closed:
                return parse_body(body, image_size)
            process = self._running()
            if process is None:
                return parse_body(body, image_size)
            try:
                reply = self._exchange(process, body, image_size)
            except WorkerGone as exc:
                self._discard()
                if self._closed:
                    raise ResponseError("the run is stopping", retryable=True) from None
                log.warning("the answer parser process stopped (%s); it restarts with the next answer", exc)
                raise ResponseError("the answer parser process stopped while parsing", retryable=True) from None
        return _outcome(reply)

    def close(self) -> None:
        """Stop the worker (bounded) and parse in the calling thread from now on. Idempotent."""
        self._closed = True
        if self._lock.acquire(timeout=STOP_TIMEOUT_S):
            try:
                self._discard()
            finally:
                self._lock.release()
            return
        # A request is still on the pipes: end the process, and the request's thread tidies up.
        self._child.kill()

    def __enter__(self) -> AnswerParser:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _running(self) -> subprocess.Popen[bytes] | None:
        process = self._child.process
        if process is not None and process.poll() is not None:
            log.warning("the answer parser process ended (exit %s); starting another", process.returncode)
            self._discard()
        if self._child.process is None:
            try:
                return self._start()
            except (OSError, WorkerGone) as exc:
                self._discard()
                self._unavailable = True
                log.warning("cannot start the answer parser process (%s); parsing answers in-process", exc)
                return None
        return self._child.process

    def _start(self) -> subprocess.Popen[bytes]:
        # Only what finds the package: the child never gets the environment, which may hold the key.
        process = self._child.start()
        self.starts += 1
        for pipe in (process.stdin, process.stdout):
            _widen(pipe)
        if _read_exactly(process, len(READY), time.monotonic() + START_TIMEOUT_S) != READY:
            raise WorkerGone("it did not start")
        log.debug("answer parser process %d started", process.pid)
        return process

    def _exchange(self, process: subprocess.Popen[bytes], body: bytes, image_size: tuple[int, int] | None) -> Any:
        assert process.stdin is not None
        width, height = image_size or (-1, -1)
        try:
            process.stdin.write(REQUEST.pack(len(body), width, height))
            process.stdin.write(body)
            process.stdin.flush()
        except (BrokenPipeError, ValueError) as exc:  # ValueError: the pipe was closed by close()
            raise WorkerGone(type(exc).__name__) from None
        deadline = time.monotonic() + self._reply_timeout
        (length,) = REPLY.unpack(_read_exactly(process, REPLY.size, deadline))
        return pickle.loads(_read_exactly(process, length, deadline))

    def _discard(self) -> None:
        self._child.stop()


def _widen(pipe: object) -> None:
    """Give the pipe a 1 MB buffer (Linux), so a large body crosses in a few writes and reads.

    Each blocking write or read gives up the interpreter lock and must win it back; at the
    default 64 KB a 4 MB body took 60 of each, and every one could make the display wait.
    """
    fileno = getattr(pipe, "fileno", None)
    if fileno is None or not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


def _read_exactly(process: subprocess.Popen[bytes], size: int, deadline: float) -> bytes:
    """``size`` bytes from the worker's stdout by ``deadline`` (the waits release the lock)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        wait = deadline - time.monotonic()
        if wait <= 0:
            process.kill()
            raise WorkerGone("no reply in time")
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise WorkerGone(f"exit {process.poll()}")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _outcome(reply: Any) -> Predictions:
    kind = reply[0]
    if kind == "ok" and isinstance(reply[1], Predictions):
        result: Predictions = reply[1]
        return result
    if kind == "not_json":
        raise NotJson("not JSON")
    if kind == "bad":
        raise ResponseError(str(reply[1]))
    raise RuntimeError(f"the answer parser failed: {reply[1] if len(reply) > 1 else reply!r}")
