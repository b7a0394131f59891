"""The one way livecam runs a thread and waits for threads to end.

    worker = Worker(self._loop, "livecam-motion", failure="motion compensation failed")
    worker.start()
    ...
    stop.set()
    worker.join()                              # False if still running after JOIN_TIMEOUT_S
    stuck = join_all([a, b, c])                # one deadline for all; the names still running
    worker.error                               # what ended it early, for the run's failure

Every thread is a named daemon, so a thread stuck in a blocking call (a camera read) never
keeps the process alive; every join is bounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 3.0
"""How long a stopping component waits, in all, for its threads to end after the stop was asked for."""


class Worker:
    """A named daemon thread running ``target`` once.

    An exception ``target`` raises ends the thread: it is logged once with ``failure`` as the
    message and kept in :attr:`error`, for the run to report as its failure; ``on_error`` (e.g.
    setting the run's stop event) is then called with it.
    """

    def __init__(
        self,
        target: Callable[[], None],
        name: str,
        *,
        failure: str | None = None,
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
            log.exception("%s", self._failure)
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
