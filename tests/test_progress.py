import io

import pytest

from livecam.progress import Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("seconds,text", [(0, "0:00"), (75, "1:15"), (3725, "1:02:05"), (-3, "0:00")])
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_plain_lines_at_intervals_when_not_a_terminal() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(100, stream, tty=False, interval=5.0, clock=clock)
    for done in range(1, 51):
        clock.now += 0.2  # 5 frames per second
        progress.update(done, failed=done // 25)
    progress.finish()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert len(lines) == 3  # the first update, 5 s later, and the end
    assert lines[-1] == "50/100 frames (50%), 5.0 fps, ETA 0:10, 2 failed"


def test_one_refreshing_bar_on_a_terminal() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(10, stream, tty=True, clock=clock)
    for done in range(1, 11):
        clock.now += 0.5
        progress.update(done)
    progress.finish()
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("[" + "#" * 24 + "]")
    assert "10/10 frames (100%), 2.0 fps" in last and "0 failed" in last


def test_shorter_lines_overwrite_longer_ones() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(None, stream, tty=True, clock=clock)
    clock.now += 1
    progress.update(1000, failed=123)
    clock.now += 1
    progress.update(1001)
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) >= len(first)


def test_unknown_total_has_no_percentage_or_eta() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = Progress(None, stream, tty=False, clock=clock)
    clock.now += 2
    progress.update(10)
    assert stream.getvalue() == "10 frames, 5.0 fps, 0 failed\n"


def test_rate_follows_the_last_seconds() -> None:
    clock = Clock()
    progress = Progress(1000, io.StringIO(), tty=False, clock=clock)
    for done in range(1, 101):  # 10 fps for 10 s ...
        clock.now += 0.1
        progress.update(done)
    for done in range(101, 401):  # ... then 50 fps for 6 s
        clock.now += 0.02
        progress.update(done)
    assert progress.rate() == pytest.approx(50, rel=0.05)


def test_asks_the_stream_whether_it_is_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:

            return True

    stream = Tty()
    Progress(5, stream).update(1)
    assert stream.getvalue().startswith("\r[")
