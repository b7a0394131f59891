"""The one thread base and the one child-process base."""

from __future__ import annotations

import logging
import threading

import pytest

from livecam.workers import ChildProcess, Worker, join_all


def test_a_worker_keeps_the_error_that_ended_it_and_tells_once(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[BaseException] = []

    def fail() -> None:
        raise ValueError("boom")

    worker = Worker(fail, "livecam-test", failure="the test thread failed", on_error=seen.append)
    worker.start()
    assert worker.join()
    assert isinstance(worker.error, ValueError) and seen == [worker.error]
    assert [r.message for r in caplog.records if r.levelno == logging.ERROR] == ["the test thread failed"]


def test_join_all_shares_one_deadline_and_names_the_ones_still_running() -> None:
    release = threading.Event()
    blocked = Worker(lambda: release.wait(30), "livecam-blocked")
    done = Worker(lambda: None, "livecam-done")
    never = Worker(lambda: None, "livecam-never-started")
    plain = threading.Thread(target=lambda: None, name="plain")
    for thread in (blocked, done, plain):
        thread.start()
    plain.join(5)
    assert done.join()
    assert join_all([blocked, done, never, plain, None], timeout=0) == ["livecam-blocked"]
    release.set()
    assert join_all([blocked, done, never, plain]) == []
    assert never.join() and not never.started


def test_a_thread_joining_its_own_component_does_not_wait_for_itself() -> None:
    result: list[list[str]] = []
    worker: Worker | None = None

    def close_from_inside() -> None:
        assert worker is not None
        result.append(join_all([worker], timeout=5))

    worker = Worker(close_from_inside, "livecam-self")
    worker.start()
    assert worker.join() and result == [[]]


def test_a_child_stops_on_its_cue_and_restarts() -> None:
    child = ChildProcess("livecam.parsing.child", quiet=True)
    first = child.start()
    assert child.alive() and child.pid == first.pid
    second = child.restart()
    assert first.returncode is not None and second.pid != first.pid and child.alive()
    child.stop()
    assert not child.alive() and child.pid is None and second.returncode is not None
    child.stop()  # idempotent


def test_a_child_can_be_ended_at_once_and_one_that_exited_stops_quietly() -> None:
    child = ChildProcess("livecam.parsing.child", quiet=True)
    process = child.start()
    child.kill()
    assert process.returncode is not None and not child.alive()
    child.stop()
    gone = ChildProcess("livecam.no_such_module", quiet=True)
    exited = gone.start()
    assert exited.wait(30) == 1 and not gone.alive()  # python -m of a missing module exits at once
    gone.stop()
