"""The server pool and the per-server windows: who gets the next request, who is set aside, what is counted."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from frame_io import ListOutput, SyntheticInput
from stub_api import StubApi

from livecam.annotate import AnnotateOptions, Annotator, PooledDetector, server_pool
from livecam.backoff import Backoff
from livecam.balance import InFlightWindow, ServerPool
from livecam.balance.pool import BACKING_OFF, HEALTHY, Lease
from livecam.client import ApiConfig, DetectionClient
from livecam.errors import ConfigError, ConnectionFailed, HttpStatusError
from livecam.stats import to_json

KEY = "rf_balance_KEY_42"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def no_jitter() -> Backoff:
    return Backoff(initial=0.25, maximum=1.5, jitter=0.0)


def pool_of(windows: list[int], clock: Clock, make_window: Callable[[int], InFlightWindow] | None = None) -> ServerPool:
    made = iter(windows)

    def window() -> InFlightWindow:
        size = next(made)
        return make_window(size) if make_window else InFlightWindow(size)

    api = ApiConfig("http://a", "m/1", api_key=KEY, api_urls=tuple(f"http://s{i}:9001" for i in range(len(windows))))
    return ServerPool.from_api(api, window, backoff=no_jitter, clock=clock)


def take(pool: ServerPool, stop: threading.Event | None = None) -> Lease:
    lease = pool.acquire(stop or threading.Event(), timeout=0)
    assert lease is not None
    return lease


def test_each_server_is_filled_by_the_free_share_of_its_window() -> None:
    clock = Clock()
    pool = pool_of([4, 2, 1], clock)
    leases = [take(pool) for _ in range(7)]
    counts = {url: sum(lease.url == url for lease in leases) for url in pool.urls}
    assert list(counts.values()) == [4, 2, 1]
    assert pool.acquire(threading.Event(), timeout=0) is None  # every window is full
    pool.answered(leases[0])
    assert take(pool).url == leases[0].url
    pool.close()


def test_a_failed_server_is_set_aside_until_its_backoff_passes() -> None:
    clock = Clock()
    pool = pool_of([1, 1], clock)
    first, second = take(pool), take(pool)
    assert pool.failed(first, ConnectionFailed("refused")) == pytest.approx(0.25)
    assert pool.set_aside() == [first.url] and not pool.all_failing
    pool.answered(second)
    assert all(take(pool).url == second.url for _ in range(1))
    clock.now += 0.3  # the backoff has passed: tried again
    retry = take(pool)
    assert retry.url == first.url
    pool.answered(retry)
    assert pool.set_aside() == []
    states = {r.url: r.state for r in pool.reports()}
    assert set(states.values()) == {HEALTHY}
    pool.close()


def test_requests_open_when_a_server_fails_cost_one_step_of_backoff() -> None:
    clock = Clock()
    pool = pool_of([3], clock)
    leases = [take(pool) for _ in range(3)]
    delays = [pool.failed(lease, ConnectionFailed("reset")) for lease in leases]
    assert delays == [pytest.approx(0.25)] * 3
    assert pool.all_failing and pool.reports()[0].state == BACKING_OFF
    clock.now += 0.3
    again = take(pool)
    assert pool.failed(again, ConnectionFailed("reset")) == pytest.approx(0.5)  # the next outage step


def test_a_refused_key_waits_far_longer_than_an_outage() -> None:
    clock = Clock()
    pool = pool_of([1], clock)
    assert pool.failed(take(pool), HttpStatusError("no", 401)) >= 1.5


def test_retry_after_is_honoured_per_server() -> None:
    clock = Clock()
    pool = pool_of([1, 1], clock)
    lease = take(pool)
    assert pool.failed(lease, HttpStatusError("busy", 429, retryable=True, retry_after=5.0)) == pytest.approx(5.0)


def test_avoided_servers_come_last() -> None:
    clock = Clock()
    pool = pool_of([2, 2], clock)
    first = take(pool)
    pool.cancel(first)
    lease = pool.acquire(threading.Event(), avoid=[first.server], timeout=0)
    assert lease is not None and lease.url != first.url


def test_acquire_ends_when_stop_is_set() -> None:
    pool = pool_of([1], Clock())
    take(pool)
    stop = threading.Event()
    got: list[Lease | None] = []
    waiter = threading.Thread(target=lambda: got.append(pool.acquire(stop)))
    waiter.start()
    stop.set()
    pool.wake()
    waiter.join(5)
    assert not waiter.is_alive() and got == [None]


def test_reports_count_and_redact() -> None:
    clock = Clock()
    api = ApiConfig("http://a", "m/1", api_key=KEY, api_urls=(f"http://user:pw@h1:9001/?api_key={KEY}", "https://h2"))
    pool = ServerPool.from_api(api, lambda: InFlightWindow(1), backoff=no_jitter, clock=clock)
    lease = take(pool)
    clock.now += 0.2
    pool.answered(lease)
    rows = [to_json(report) for report in pool.reports()]
    assert rows[0]["requests"] == 1 and rows[0]["ok"] == 1 and rows[0]["failed"] == 0
    assert rows[0]["latency_ms"] == {"p50": 200.0, "p95": 200.0} and rows[0]["state"] == "healthy"
    assert rows[1]["latency_ms"] == {"p50": None, "p95": None}
    text = repr(rows)
    assert KEY not in text and "pw" not in text and "h1:9001" in text


def test_one_client_per_open_request_and_reused_after() -> None:
    made: list[DetectionClient] = []

    def make(config: ApiConfig) -> DetectionClient:
        made.append(DetectionClient(config))
        return made[-1]

    pool = ServerPool.from_api(ApiConfig("http://a", "m/1"), lambda: InFlightWindow(2), make_client=make)
    a, b = take(pool), take(pool)
    assert a.client is not b.client
    pool.answered(a)
    assert take(pool).client is a.client and len(made) == 2
    pool.close()


def test_spacing_spreads_sends_over_the_combined_rate() -> None:
    clock = Clock()
    pool = pool_of([1, 1, 1], clock)
    for _ in range(3):
        lease = take(pool)
        clock.now += 0.3
        pool.answered(lease)
    assert pool.spacing() == pytest.approx(0.1)  # three servers answering one each per 0.3 s


def test_a_calm_window_halves_once_per_round_trip() -> None:
    clock = Clock()
    window = InFlightWindow(8, adaptive=True, queueing=2.0, calm=True, clock=clock)
    for _ in range(6):
        window.answered(0.2)
    assert window.window == 8
    for _ in range(5):  # the answers queued behind the old window all come back slow at once
        window.answered(0.5)
    assert window.window == 4
    clock.now += 1.0
    window.answered(0.5)
    assert window.window == 2
    assert window.limit == 2


def test_the_config_names_each_server() -> None:
    api = ApiConfig("http://a:1", "m/1", api_urls=("http://a:1", "http://b:2"))
    assert [c.api_url for c in api.each_server()] == ["http://a:1", "http://b:2"]
    assert all(c.urls == (c.api_url,) for c in api.each_server())
    with pytest.raises(ConfigError):
        ApiConfig("http://a:1", "m/1", api_urls=("http://a:1", "ftp://b"))


def test_an_annotator_spreads_frames_over_its_servers_and_reports_each() -> None:
    with StubApi(latency=0.02) as a, StubApi(latency=0.02) as b:
        api = ApiConfig(a.url, "m/1", api_key=KEY, api_urls=(a.url, b.url))
        pool = server_pool(api, in_flight=2, adaptive=False)
        output = ListOutput()
        options = AnnotateOptions(in_flight=4)
        try:
            result = Annotator(
                SyntheticInput(20), output, lambda: PooledDetector(pool), options, threading.Event(), servers=pool
            ).run()
        finally:
            pool.close()
    assert output.indices == list(range(20)) and result.failed == 0
    assert [s.url for s in result.servers] == [a.url, b.url]
    assert sum(s.ok for s in result.servers) == 20 and all(s.ok > 0 for s in result.servers)
    assert a.requests + b.requests == 20
