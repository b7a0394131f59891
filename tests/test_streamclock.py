"""The stream clock's jitter buffer, driven by scripted arrival times (no clock, no sleeps)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from livecam.live.streamclock import StreamClock

FPS = 25.0
DT = 1 / FPS


def play(
    clock: StreamClock[int], arrivals: Sequence[tuple[float, int, float | None]], until: float
) -> list[tuple[float, int]]:
    """Push each (arrival, item, pts) and pop at every due time up to ``until``: [(release, item)]."""
    shown: list[tuple[float, int]] = []
    pending = sorted(arrivals)
    now = 0.0
    while now <= until:
        while pending and pending[0][0] <= now:
            arrival, item, pts = pending.pop(0)
            clock.push(item, pts, arrival)
        got = clock.pop(now)
        if got is not None:
            shown.append((now, got[0]))
        due = clock.due_at(now)
        nxt = [t for t in (due, pending[0][0] if pending else None) if t is not None]
        if not nxt:
            break
        now = max(min(nxt), now + 1e-6)
    return shown


def intervals(shown: list[tuple[float, int]]) -> list[float]:
    return [b[0] - a[0] for a, b in zip(shown, shown[1:], strict=False)]


def test_even_source_passes_through_without_delay() -> None:
    clock: StreamClock[int] = StreamClock()
    arrivals = [(1.0 + i * DT, i, i * DT) for i in range(100)]
    shown = play(clock, arrivals, 10.0)
    assert [item for _, item in shown] == list(range(100))
    assert all(release == pytest.approx(1.0 + item * DT) for release, item in shown)
    assert clock.delay == pytest.approx(0.0, abs=1e-9)
    assert clock.dropped == 0


def test_segments_arriving_in_bursts_are_released_evenly() -> None:
    """HLS-like: every 4 s a whole 4 s segment arrives within 0.2 s."""
    clock: StreamClock[int] = StreamClock()
    per_segment = int(4 * FPS)
    arrivals = []
    for seg in range(6):
        for j in range(per_segment):
            i = seg * per_segment + j
            arrivals.append((10.0 + seg * 4.0 + j * 0.002, i, i * DT))
    shown = play(clock, arrivals, 40.0)
    assert 3.7 < clock.delay < 4.5  # the gap between a segment's last frame and the next, and a margin
    # From the second segment on, every frame is shown one frame interval after the previous one.
    later = [(t, i) for t, i in shown if i >= per_segment]
    assert [i for _, i in later] == list(range(per_segment, 6 * per_segment))
    assert max(abs(gap - DT) for gap in intervals(later)) < 1e-5


def test_connect_backlog_is_skipped_to_the_live_edge() -> None:
    """50 old frames arrive at once on connect, then the stream runs evenly."""
    clock: StreamClock[int] = StreamClock()
    backlog = [(5.0 + i * 0.001, i, i * DT) for i in range(50)]
    live = [(5.049 + (i - 49) * DT, i, i * DT) for i in range(50, 100)]
    shown = play(clock, backlog + live, 20.0)
    items = [i for _, i in shown]
    assert items[0] == 0  # the first picture is shown at once
    assert items[1] >= 45  # then the newest, not the rest of the backlog played fast
    assert items[-1] == 99
    assert max(intervals(shown)[1:]) < DT + 1e-5
    assert clock.dropped == 100 - len(shown)
    assert clock.delay < DT


def test_release_never_precedes_arrival() -> None:
    clock: StreamClock[int] = StreamClock()
    clock.push(0, 0.0, 1.0)
    assert clock.pop(1.0) == (0, 1.0)
    clock.push(1, DT, 1.5)  # late: the delay grows, yet it cannot leave before it came
    clock.push(2, 2 * DT, 1.5)
    due = clock.due_at(1.5)
    assert due is not None and due >= 1.5
    assert clock.pop(due) == (1, 1.5)
    assert clock.pop(due) is None  # the next one is a frame interval later
    assert clock.pop(due + DT) == (2, 1.5)


def test_repeated_pts_is_stale_and_not_queued() -> None:
    clock: StreamClock[int] = StreamClock()
    assert clock.push(0, 1.0, 0.0)
    assert not clock.push(1, 1.0, 5.0)
    assert not clock.push(2, 0.9, 5.1)
    assert clock.stale == 2
    assert len(clock) == 1


def test_pts_jumping_back_starts_a_new_timeline() -> None:
    clock: StreamClock[int] = StreamClock()
    clock.push(0, 100.0, 0.0)
    assert clock.pop(0.0) is not None
    assert clock.push(1, 0.0, 1.0)
    assert clock.pop(1.0) == (1, 1.0)


def test_frame_later_than_the_maximum_delay_restarts_at_the_live_edge() -> None:
    clock: StreamClock[int] = StreamClock(max_delay_s=1.0)
    clock.push(0, 0.0, 0.0)
    clock.pop(0.0)
    clock.push(1, DT, 10.0)  # a 10 s stall on the same timeline
    assert clock.delay == 0.0
    assert clock.pop(10.0) == (1, 10.0)


def test_capacity_drops_the_oldest() -> None:
    clock: StreamClock[int] = StreamClock(capacity=3)
    for i in range(5):
        clock.push(i, 10.0 + i, 0.0)  # all early: held for later
    assert len(clock) == 3
    assert clock.dropped == 2


def test_restart_drops_held_frames_and_keeps_the_delay() -> None:
    clock: StreamClock[int] = StreamClock()
    clock.push(0, 0.0, 0.0)
    clock.push(1, DT, 0.5)
    learned = clock.delay
    clock.push(2, 2 * DT, 0.5)
    clock.restart()
    assert len(clock) == 0 and clock.delay == learned
    assert clock.push(3, 0.0, 1.0)  # the new timeline's pts may start anywhere


def test_without_pts_frames_are_released_on_arrival() -> None:
    clock: StreamClock[int] = StreamClock()
    shown = play(clock, [(1.0 + i * 0.05, i, None) for i in range(10)], 5.0)
    assert [t for t, _ in shown] == pytest.approx([1.0 + i * 0.05 for i in range(10)])


def test_lag_does_not_drift_over_a_long_stream() -> None:
    """Ten minutes at 25 fps with arrival jitter: the lag at the end equals the lag at the start."""
    clock: StreamClock[int] = StreamClock()
    jitter = [0.0, 0.012, 0.004, 0.02, 0.0, 0.008]
    n = int(600 * FPS)
    lags = []
    for i in range(n):
        arrival = i * DT + jitter[i % len(jitter)]
        clock.push(i, i * DT, arrival)
        due = clock.due_at(arrival)
        assert due is not None
        got = clock.pop(max(arrival, due))
        assert got is not None
        lags.append(max(arrival, due) - i * DT)
    assert abs(lags[-1] - lags[100]) < DT


def test_a_known_burst_length_plays_evenly_from_the_first_segment() -> None:
    """HLS with 4 s segments and the playlist's target duration given: no freeze to learn it."""
    clock: StreamClock[int] = StreamClock(min_delay_s=4.0)
    per_segment = int(4 * FPS)
    arrivals = []
    for seg in range(4):  # the first three arrive at once on connect (the live playlist's backlog)
        at = 10.0 if seg < 3 else 14.0
        for j in range(per_segment):
            i = seg * per_segment + j
            arrivals.append((at + i * 0.0005, i, i * DT))
    shown = play(clock, arrivals, 30.0)
    during_burst = [i for t, i in shown if t < 10.2]
    after = [(t, i) for t, i in shown if t >= 10.2]
    assert len(during_burst) <= 5  # a glimpse while the backlog pours in, not a fast replay
    first = after[0][1]
    behind = round(clock.delay * FPS)  # one segment and the margin behind the live edge
    assert abs(first - (3 * per_segment - 1 - behind)) <= 3
    assert [i for _, i in after] == list(range(first, 4 * per_segment))  # no freeze waiting for segment 4
    assert max(abs(gap - DT) for gap in intervals(after)) < 1e-5


def test_a_stall_is_not_learnt_as_jitter() -> None:
    clock: StreamClock[int] = StreamClock()
    for i in range(50):  # an even source: no delay
        clock.push(i, i * DT, i * DT)
        clock.pop(i * DT + 1e-9)
    assert clock.delay < 1e-6
    clock.gap()  # declared stalled: nothing came for 3 s
    resumed = 49 * DT + 3.0
    assert not clock.push(49, 49 * DT, resumed)  # a repeat is still stale after the gap
    for n, i in enumerate(range(50, 60)):
        now = resumed + n * DT
        assert clock.push(i, i * DT, now)
        got = clock.pop(now + 1e-9)  # (float rounding of the scripted times)
        assert got is not None and got[0] == i  # shown on arrival, not 3 s later
    assert clock.delay < 1e-6


def test_a_known_burst_length_is_a_floor_that_is_never_forgotten() -> None:
    clock: StreamClock[int] = StreamClock(min_delay_s=2.0, window_s=5.0)
    for i in range(500):  # 20 s of an even source, four windows long
        clock.push(i, i * DT, i * DT)
        clock.pop(i * DT)
    assert clock.delay == pytest.approx(2.2)  # the floor and its margin: no skip ahead after a window
