"""The one way livecam runs a thread, waits for threads to end, and runs a child process.

    worker = Worker(self._loop, "livecam-motion", failure="motion compensation failed")
    worker.start()
    ...
    stop.set()
    worker.join()                              # False if still running after JOIN_TIMEOUT_S
    stuck = join_all([a, b, c])                # one deadline for all; the names still running
    worker.error                               # what ended it early, for the run's failure

Every thread is a named daemon, so a thread stuck in a blocking call (a camera read) never
keeps the process alive; every join is bounded. :class:`ChildProcess` is the same for the two
child processes (the embedded server and the answer parser).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 3.0
"""How long a stopping component waits, in all, for its threads to end after the stop was asked for."""


class Worker:
    """A named daemon thread running ``target`` once.

    An exception ``target`` raises ends the thread: it is logged once with ``failure`` (or what
    ``failure()`` says then) as the message and kept in :attr:`error`, for the run to report as
    its failure; ``on_error`` (e.g. setting the run's stop event) is then called with it.
    """

    def __init__(
        self,
        target: Callable[[], object],
        name: str,
        *,
        failure: str | Callable[[], str] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.name = name
        self.error: BaseException | None = None
        """The exception that ended the thread, if one did."""
        self._target = target
        self._failure = failure or f"the {name} thread failed"
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def is_alive(self) -> bool:
        """Whether the thread runs now."""
        return self._thread.is_alive()

    def join(self, timeout: float = JOIN_TIMEOUT_S) -> bool:
        """Wait up to ``timeout`` s for the thread to end; False if it still runs (True if never started)."""
        return not join_all([self], timeout)

    def _run(self) -> None:
        try:
            self._target()
        except Exception as exc:  # noqa: BLE001 - kept for the run's failure, which reports it
            self.error = exc
            log.exception("%s", self._failure if isinstance(self._failure, str) else self._failure())
            if self._on_error is not None:
                self._on_error(exc)


def join_all(
    threads: Iterable[Worker | threading.Thread | None],
    timeout: float = JOIN_TIMEOUT_S,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """Wait for every thread (None, never-started ones and the calling thread are skipped) within one deadline.

    Returns:
        The names of the threads still running when the deadline passed.
    """
    deadline = clock() + timeout
    me = threading.current_thread()  # a thread closing its own component cannot wait for itself
    running = [t for t in threads if t is not None and _started(t) and _thread_of(t) is not me]
    for thread in running:
        _thread_of(thread).join(max(0.0, deadline - clock()))
    return [t.name for t in running if t.is_alive()]


def _started(thread: Worker | threading.Thread) -> bool:
    return thread.started if isinstance(thread, Worker) else thread.ident is not None


def _thread_of(thread: Worker | threading.Thread) -> threading.Thread:
    return thread._thread if isinstance(thread, Worker) else thread


CHILD_STOP_TIMEOUT_S = 2.0
"""How long a child process has to exit after its cue before it is killed."""


class ChildProcess:
    """``python -m MODULE`` as a child of this process, with pipes to its stdin and stdout.

    Started, watched (:meth:`alive`), restarted and stopped one way: closing its stdin is its
    cue to exit, and a child still running ``stop_timeout`` s later is killed. It gets ``env``
    (by default only what finds the package: ``PATH`` and ``PYTHONPATH``, never the API key) and
    none of this process's other open files.
    """

    def __init__(
        self,
        module: str,
        *,
        env: Mapping[str, str] | None = None,
        quiet: bool = False,
        stop_timeout: float = CHILD_STOP_TIMEOUT_S,
    ) -> None:
        self.module = module
        self._env = {"PATH": os.environ.get("PATH", os.defpath)} if env is None else dict(env)
        self._quiet = quiet
        self.stop_timeout = stop_timeout
        self.process: subprocess.Popen[bytes] | None = None
        """The running child, if one was started and not stopped."""

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self.process.pid if self.alive() and self.process is not None else None

    def alive(self) -> bool:
        """Whether the child was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> subprocess.Popen[bytes]:
        """Start the child (stopping a previous one first).

        Raises:
            OSError: the interpreter cannot be started.
        """
        self.stop()
        env = {**self._env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if self._quiet else None,
            env=env,
            close_fds=True,
        )
        return self.process

    def restart(self) -> subprocess.Popen[bytes]:
        """Stop the child (bounded) and start another."""
        return self.start()

    def kill(self) -> None:
        """End the child at once (e.g. while another thread is blocked on its pipes)."""
        process = self.process
        if process is not None:
            process.kill()
            process.wait(self.stop_timeout)

    def stop(self) -> None:
        """Close its stdin (its cue to exit), wait ``stop_timeout`` s, then kill it. Idempotent."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not exit within %.0f s; ending it", self.module, self.stop_timeout)
            process.kill()
            process.wait(self.stop_timeout)
        if process.stdout is not None:
            process.stdout.close()
