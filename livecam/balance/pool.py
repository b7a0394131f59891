"""Several detection servers of one model: who gets the next request, and who is set aside.

    pool = ServerPool.from_api(api, lambda: InFlightWindow(8, adaptive=True))
    lease = pool.acquire(stop)                # the server with the most free room, healthy first
    try:
        predictions = lease.client.detect(image)
    except DetectionError as exc:
        pool.failed(lease, exc)               # set aside with its own backoff; others carry on
    else:
        pool.answered(lease)                  # its window learns from the round trip

Each server has its own in-flight window (:class:`~livecam.balance.window.InFlightWindow`,
fixed or learnt from its own round trips), its own idle clients (one keep-alive session each,
never shared by two threads at once), its own backoff and its own counters. A failing server is
tried again once its backoff has passed. Nothing here coordinates with
other machines: every livecam process balances its own requests.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from livecam.backoff import Backoff
from livecam.balance.window import InFlightWindow
from livecam.client import ApiConfig, DetectionClient
from livecam.errors import DetectionError
from livecam.percentiles import percentiles
from livecam.redaction import redact, redact_url
from livecam.stats import Percentiles, ServerStats

HEALTHY = "healthy"
BACKING_OFF = "backing-off"
LATENCY_SAMPLES = 2_000
"""Round trips kept per server for its percentiles."""
_WAIT_STEP = 0.1
"""Longest single wait in :meth:`ServerPool.acquire`, so a stop is noticed without a notify."""


class Server:
    """One server's state; every field is guarded by the pool's lock."""

    def __init__(
        self,
        url: str,
        make_client: Callable[[], DetectionClient],
        window: InFlightWindow,
        backoff: Backoff,
        refused_backoff: Backoff,
    ) -> None:
        self.url = url
        self.make_client = make_client
        self.window = window
        self.backoff = backoff
        self.refused_backoff = refused_backoff
        self.open = 0
        self.failing = False
        self.failed_at = 0.0
        self.resume_at = 0.0
        self.picked = 0
        self.idle: list[DetectionClient] = []
        self.requests = 0
        self.ok = 0
        self.failed = 0
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def available(self, now: float) -> bool:
        """Whether it may take one more request now (a failing one only once its backoff has passed)."""
        if self.failing and now < self.resume_at:
            return False
        return self.open < self.window.limit

    def free_share(self) -> float:
        limit = self.window.limit
        return (limit - self.open) / limit


@dataclass
class Lease:
    """One request's hold on a server: its client (this thread's alone until released)."""

    server: Server
    client: DetectionClient
    started: float

    @property
    def url(self) -> str:
        """The server's redacted URL."""
        return self.server.url


class ServerPool:
    """The detection servers of a run. Thread-safe.

    Args:
        servers: (redacted URL, client factory) for each server, in the order given.
        windows: makes each server's in-flight window.
        backoff: makes each server's retry schedule after a failure that may pass (refused,
            reset, timeout, 5xx, 429); its maximum bounds how soon a recovered server is noticed.
        clock: monotonic time.
    """

    def __init__(
        self,
        servers: Sequence[tuple[str, Callable[[], DetectionClient]]],
        windows: Callable[[], InFlightWindow],
        *,
        backoff: Callable[[], Backoff] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not servers:
            raise ValueError("a server pool needs at least one server")
        # A refused key or an unknown model will not fix itself in seconds: retried far less often.
        outage = backoff or outage_backoff
        self._servers = [
            Server(url, make, windows(), outage(), Backoff(initial=2.0, maximum=30.0)) for url, make in servers
        ]
        self._clock = clock
        self._cond = threading.Condition()
        self._picks = 0
        self._closed = False

    @classmethod
    def from_api(
        cls,
        api: ApiConfig,
        windows: Callable[[], InFlightWindow],
        *,
        make_client: Callable[[ApiConfig], DetectionClient] = DetectionClient,
        backoff: Callable[[], Backoff] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> ServerPool:
        """One server per URL of ``api`` (``--api-url`` given once or more)."""

        def factory(config: ApiConfig) -> Callable[[], DetectionClient]:
            return lambda: make_client(config)

        return cls([(server_label(c), factory(c)) for c in api.each_server()], windows, backoff=backoff, clock=clock)

    def __len__(self) -> int:
        return len(self._servers)

    @property
    def urls(self) -> list[str]:
        """The servers' redacted URLs, in the order given."""
        return [s.url for s in self._servers]

    def acquire(
        self, stop: threading.Event, avoid: Collection[Server] = (), timeout: float | None = None
    ) -> Lease | None:
        """A lease on the server with the most free share of its window (healthy ones first,
        those in ``avoid`` last); waits for one to have room. None once ``stop`` is set, the pool
        is closed or ``timeout`` passed.
        """
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not stop.is_set() and not self._closed:
                now = self._clock()
                ready = [s for s in self._servers if s.available(now)]
                if ready:
                    best = min(ready, key=lambda s: (s in avoid, s.failing, -s.free_share(), s.picked))
                    return self._lease(best, now)
                wait = self._next_change(now)
                if deadline is not None:
                    if now >= deadline:
                        return None
                    wait = min(wait, deadline - now)
                self._cond.wait(wait)
            return None

    def sending(self, lease: Lease) -> None:
        """The request of ``lease`` leaves now (its round trip is timed from here)."""
        lease.started = self._clock()

    def spacing(self) -> float:
        """Seconds between sends so the servers' answers come evenly: one over their combined rate.

        Each server answers about ``window / round trip`` requests a second; failing servers
        count for nothing while another is healthy. With one server this is its window's own
        spacing (:meth:`InFlightWindow.spacing`).
        """
        with self._cond:
            healthy = [s for s in self._servers if not s.failing] or list(self._servers)
        if len(healthy) == 1:
            return healthy[0].window.spacing()
        rate = 0.0
        for server in healthy:
            latency = server.window.latency
            if latency is not None and latency > 0:
                rate += server.window.window / latency
        if rate == 0.0:
            return min(s.window.spacing() for s in healthy)
        return max(max(s.window.floor for s in healthy), 1.0 / rate)

    def answered(self, lease: Lease) -> float:
        """The request of ``lease`` got an answer; returns its round trip in seconds."""
        latency = self._clock() - lease.started
        server = lease.server
        server.window.answered(latency)
        with self._cond:
            server.ok += 1
            server.latency_ms.append(latency * 1000)
            server.failing = False
            server.backoff.reset()
            server.refused_backoff.reset()
            self._give_back(lease)
        return latency

    def failed(self, lease: Lease, exc: DetectionError) -> float:
        """The request of ``lease`` failed: the server is set aside. Returns the seconds until it is tried again."""
        server = lease.server
        if exc.status in (429, 503):
            server.window.refused()
        with self._cond:
            server.failed += 1
            now = self._clock()
            # Requests open when the server first failed fail too: one outage, one step of backoff.
            if not server.failing or lease.started > server.failed_at:
                backoff = server.backoff if exc.retryable else server.refused_backoff
                delay = backoff.next_delay(exc.retry_after or 0.0)
                server.resume_at = max(server.resume_at, now + delay)
                server.failed_at = now
            server.failing = True
            self._give_back(lease)
            return max(0.0, server.resume_at - now)

    def cancel(self, lease: Lease) -> None:
        """Give ``lease`` back unused (e.g. no frame to send)."""
        with self._cond:
            lease.server.requests -= 1
            self._give_back(lease)

    @property
    def all_failing(self) -> bool:
        """Whether every server is set aside (the outage the status line reports)."""
        with self._cond:
            return all(s.failing for s in self._servers)

    def set_aside(self) -> list[str]:
        """The redacted URLs of the servers set aside now."""
        with self._cond:
            return [s.url for s in self._servers if s.failing]

    def reports(self) -> list[ServerStats]:
        """Every server's counters, in the order given."""
        with self._cond:
            rows = [
                (s.url, s.requests, s.ok, s.failed, list(s.latency_ms), BACKING_OFF if s.failing else HEALTHY)
                for s in self._servers
            ]
        reports = []
        for url, requests, ok, failed, samples, state in rows:
            p50, p95 = percentiles(samples, 50, 95)  # sorted outside the lock: senders wait on it
            reports.append(ServerStats(url, requests, ok, failed, Percentiles.rounded(p50, p95), state))
        return reports

    def wake(self) -> None:
        """Wake every thread waiting in :meth:`acquire` (e.g. after the stop event was set)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Wake every waiter for good and close the idle clients (open leases close theirs on release)."""
        with self._cond:
            self._closed = True
            idle = [c for s in self._servers for c in s.idle]
            for s in self._servers:
                s.idle.clear()
            self._cond.notify_all()
        for client in idle:
            client.close()

    def _lease(self, server: Server, now: float) -> Lease:
        client = server.idle.pop() if server.idle else server.make_client()
        server.open += 1
        server.requests += 1
        self._picks += 1
        server.picked = self._picks
        return Lease(server, client, now)

    def _give_back(self, lease: Lease) -> None:
        server = lease.server
        server.open -= 1
        if self._closed:
            lease.client.close()
        else:
            server.idle.append(lease.client)
        self._cond.notify_all()

    def _next_change(self, now: float) -> float:
        """Seconds until a set-aside server may be tried again (at most one wait step)."""
        resumes = [s.resume_at - now for s in self._servers if s.failing and s.resume_at > now]
        return max(0.001, min([_WAIT_STEP, *resumes]))


def outage_backoff() -> Backoff:
    """Retries after an outage: 0.25 s doubling to 1.5 s, so a recovered server is used again within 2 s."""
    return Backoff(initial=0.25, maximum=1.5)


def server_label(config: ApiConfig) -> str:
    """A server's base URL as logs and stats show it: no credentials, no key."""
    return redact(redact_url(config.api_url), config.api_key)
