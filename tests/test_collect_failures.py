"""Collecting when saves fail, when a crash left parts of items behind, and when a sidecar is hostile."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from json_view import loose
from samples import sample_frame
from stub_api import StubApi

from livecam.collect import CollectConfig, Collector, items
from livecam.collect.collector import MAX_FAILURES
from livecam.collect.store import ORPHAN_AGE_S, write_item
from livecam.frames import Frame, Image
from livecam.predictions import Predictions

STILL = sample_frame("vtest.avi", 100)


class FailingEncoder:
    """An encoder that always fails, with something that is not an ``OSError``."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, image: Image, quality: int) -> bytes:
        self.calls += 1
        raise UnicodeEncodeError("utf-8", "bad\ud800name", 3, 4, "surrogates not allowed")


def test_a_save_that_fails_in_any_way_removes_what_it_wrote(tmp_path: Path) -> None:
    # The JPEG is written first; the pre-label cannot be encoded.
    with pytest.raises(UnicodeEncodeError):
        write_item(tmp_path, "a", b"jpeg", "<name>bad\ud800name</name>", {})
    with pytest.raises(TypeError):
        write_item(tmp_path, "b", b"jpeg", "<annotation/>", {"not json": object()})
    assert list(tmp_path.iterdir()) == []


def collector(tmp_path: Path, encoder: FailingEncoder, per_minute: int = 0) -> Collector:
    config = CollectConfig(
        tmp_path,
        strategies=("random",),
        random_share=1.0,
        min_difference=0.0,
        queue=32,
        max_per_minute=per_minute,
        max_per_hour=0,
    )
    return Collector(config, source="test", model_id=None, encoder=encoder)


def test_failed_saves_count_against_the_limits(tmp_path: Path) -> None:
    encoder = FailingEncoder()
    failing = collector(tmp_path, encoder, per_minute=3)
    assert failing.start()
    for seq in range(10):
        failing.offer(Frame(seq, STILL, 0.0), Predictions())  # all in the same instant
    failing.close()
    stats = loose(failing.stats())
    assert encoder.calls == 3
    assert stats["collect_skipped"]["limit"] == 7 and stats["collect_dropped"] == 3
    assert stats["collected"] == 0 and list(tmp_path.iterdir()) == []


def test_repeated_failures_stop_collecting_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    encoder = FailingEncoder()
    failing = collector(tmp_path, encoder)
    assert failing.start()
    with caplog.at_level(logging.INFO):
        for seq in range(3 * MAX_FAILURES):
            failing.offer(Frame(seq, STILL, float(seq)), Predictions())
        failing.close()
    assert encoder.calls == MAX_FAILURES
    assert not failing.active
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"{MAX_FAILURES} saves in a row failed" in warnings[0], warnings
    assert "Traceback" not in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_parts_of_items_a_crash_left_are_removed_at_start(tmp_path: Path) -> None:
    old = "20261206-100000-000-abcd-0000{}"
    write_item(tmp_path, old.format(1), b"jpeg", "<annotation/>", {"format": 1})  # complete
    orphans = [f"{old.format(2)}.jpg", f"{old.format(3)}.xml", f"{old.format(4)}.livecam.json"]
    for name in orphans:
        (tmp_path / name).write_bytes(b"left by a crash")
    fresh = tmp_path / "20261206-100000-000-abcd-00005.jpg"  # another process may be writing it now
    mine = tmp_path / "holiday.jpg"  # not livecam's
    for path in (fresh, mine):
        path.write_bytes(b"keep")
    stale = os.stat(tmp_path / orphans[0]).st_mtime - 2 * ORPHAN_AGE_S
    for path in [*tmp_path.iterdir()]:
        if path not in (fresh,):
            os.utime(path, (stale, stale))
    assert collector(tmp_path, FailingEncoder()).start()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(
        [f"{old.format(1)}{suffix}" for suffix in (".jpg", ".xml", ".livecam.json")] + [fresh.name, mine.name]
    )
    assert [i.stem for i in items(tmp_path)] == [old.format(1)]


def deep_sidecar(directory: Path) -> Path:
    write_item(directory, "20261206-100000-000-abcd-00001", b"jpeg", None, {})
    sidecar = directory / "20261206-100000-000-abcd-00001.livecam.json"
    sidecar.write_text("[" * 100_000 + "]" * 100_000)
    return sidecar


def test_a_deeply_nested_sidecar_is_named_not_a_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sidecar = deep_sidecar(tmp_path)
    with caplog.at_level(logging.WARNING):
        started = collector(tmp_path, FailingEncoder())
        assert started.start()
        started.close()
    assert str(sidecar) in caplog.text and "nested too deeply" in caplog.text


def test_run_collect_with_a_deeply_nested_sidecar(tmp_path: Path) -> None:
    sidecar = deep_sidecar(tmp_path)
    with StubApi() as api:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "livecam",
                "run",
                "synthetic:160x120@30",
                "--max-frames",
                "10",
                "--headless",
                "--api-url",
                api.url,
                "--model",
                "t/1",
                "--collect",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert sidecar.name in result.stderr and "nested too deeply" in result.stderr
