"""Answers parsed in the worker process: the same result and the same errors as in the calling
thread, caps applied, a dead worker replaced, nothing left running after close, no key inside;
and the embedded server in its own process, gone with its context."""

from __future__ import annotations

import json
import os
import pickle
import signal
from pathlib import Path
from typing import Any

import pytest
import requests
from faults.probes import child_pids

from livecam.errors import ResponseError
from livecam.parsing import AnswerParser, NotJson, parse_body
from livecam.predictions import MAX_POINTS, MAX_PREDICTIONS, Points, Predictions
from livecam.server.process import ServerProcess

SIZE = (640, 360)


def box(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "x": 20 + (i * 7) % 600,
        "y": 20 + (i * 13) % 320,
        "width": 10,
        "height": 12,
        "confidence": 0.3 + (i % 70) / 100,
        "class": f"c{i % 5}",
        "class_id": i % 5,
        **extra,
    }


def polygon(n: int, x: float = 100.0, y: float = 100.0) -> list[dict[str, float]]:
    return [{"x": x + (j % 40), "y": y + (j % 30) / 2} for j in range(n)]


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


BODIES: dict[str, bytes] = {
    "12 000 boxes": body({"image": {"width": 640, "height": 360}, "predictions": [box(i) for i in range(12_000)]}),
    "300 polygons": body({"predictions": [box(i, points=polygon(500, i % 600, i % 300)) for i in range(300)]}),
    "keypoints": body(
        {"predictions": [box(1, keypoints=[{"x": 3, "y": 4, "confidence": 0.9, "class": "nose"}, {"x": "a"}])]}
    ),
    "classification": body({"top": "cat", "confidence": 0.93, "predictions": [{"class": "cat", "confidence": 0.93}]}),
    "hostile values": b'{"predictions": [{"x": NaN, "y": 1, "width": 5, "height": 5, "confidence": 0.9},'
    b'{"x": 10, "y": 10, "width": 5, "height": 5, "confidence": Infinity, "class": "ok",'
    b'"points": [{"x": NaN, "y": 1}, {"x": 1, "y": 2}, {"x": "3", "y": 4}, {"x": 1e300, "y": 0}]}]}',
    "huge integers": body({"predictions": [box(2, x=10**30), box(3)]}),
}
MALFORMED: dict[str, bytes] = {
    "not json": b"<html>maintenance</html>",
    "cut off": b'{"predictions": [{"x": 1',
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
    "a list": b"[1, 2, 3]",
    "no predictions": b'{"image": {"width": 640, "height": 360}}',
    "predictions not a list": b'{"predictions": "none"}',
}


@pytest.fixture
def parser() -> Any:
    with AnswerParser(inline_limit=0) as worker:  # every body goes to the worker
        yield worker


def outcome(parse: Any, data: bytes) -> tuple[str, str]:
    try:
        parse(data, SIZE)
    except NotJson:
        return ("NotJson", "")
    except ResponseError as exc:
        return ("ResponseError", str(exc))
    return ("ok", "")


@pytest.mark.parametrize("name", list(BODIES))
def test_the_worker_gives_what_the_calling_thread_gives(name: str, parser: AnswerParser) -> None:
    expected = parse_body(BODIES[name], SIZE)
    assert parser.parse(BODIES[name], SIZE) == expected
    assert parser.starts == 1 and parser.pid is not None


def test_caps_are_applied_in_the_worker(parser: AnswerParser) -> None:
    many = parser.parse(BODIES["12 000 boxes"], SIZE)
    assert len(many.items) == MAX_PREDICTIONS and "too many predictions" in many.issues
    assert min(p.confidence for p in many.items) >= 0.98  # the most confident kept (171 of each value)
    long = body({"predictions": [box(1, points=polygon(MAX_POINTS * 3))]})
    (kept,) = parser.parse(long, SIZE).items
    assert isinstance(kept.points, Points) and len(kept.points) == MAX_POINTS


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_bodies_give_the_same_errors(name: str, parser: AnswerParser) -> None:
    inline = outcome(parse_body, MALFORMED[name])
    assert inline[0] != "ok"
    assert outcome(parser.parse, MALFORMED[name]) == inline
    assert parser.parse(BODIES["keypoints"], SIZE) == parse_body(BODIES["keypoints"], SIZE)  # still answering


def test_a_dead_worker_is_replaced(parser: AnswerParser) -> None:
    parser.parse(BODIES["keypoints"], SIZE)
    first = parser.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    try:
        parser.parse(BODIES["keypoints"], SIZE)
    except ResponseError as exc:  # the kill landed while the request was on its way: retryable
        assert exc.retryable
    assert parser.parse(BODIES["keypoints"], SIZE) == parse_body(BODIES["keypoints"], SIZE)
    assert parser.starts == 2 and parser.pid not in (None, first)


def test_nothing_runs_after_close_and_later_bodies_parse_in_process() -> None:
    parser = AnswerParser(inline_limit=0)
    parser.parse(BODIES["keypoints"], SIZE)
    pid = parser.pid
    assert pid is not None and pid in child_pids()
    parser.close()
    assert pid not in child_pids()
    assert parser.parse(BODIES["keypoints"], SIZE) == parse_body(BODIES["keypoints"], SIZE)
    assert parser.starts == 1 and parser.pid is None


def test_small_bodies_never_start_a_worker() -> None:
    with AnswerParser() as parser:
        parser.parse(BODIES["keypoints"], SIZE)
        assert parser.starts == 0


def test_the_key_never_reaches_the_worker(monkeypatch: pytest.MonkeyPatch, parser: AnswerParser) -> None:
    monkeypatch.setenv("ROBOFLOW_API_KEY", "rf_worker_SECRET_77")
    parser.parse(BODIES["keypoints"], SIZE)
    pid = parser.pid
    assert pid is not None
    for name in ("environ", "cmdline"):
        assert b"rf_worker_SECRET_77" not in Path(f"/proc/{pid}/{name}").read_bytes()


def test_points_read_like_the_tuple_of_pairs() -> None:
    pairs = ((1.0, 2.0), (3.5, 4.0), (5.0, 6.0))
    points = Points(pairs)
    assert points == pairs and pairs == points and tuple(points) == pairs
    assert points[1] == (3.5, 4.0) and points[1:] == pairs[1:] and len(points) == 3
    assert hash(points) == hash(pairs)
    assert points.scaled(2, 10) == ((2.0, 20.0), (7.0, 40.0), (10.0, 60.0))
    assert pickle.loads(pickle.dumps(points)) == points
    assert not points.array.flags.writeable


def test_vertices_are_checked_the_same_one_by_one_and_all_at_once() -> None:
    fast = Predictions.from_roboflow({"predictions": [box(1, points=[{"x": 1, "y": 2}, {"x": 1e7, "y": 1}])]})
    slow = Predictions.from_roboflow({"predictions": [box(1, points=[{"x": 1, "y": 2}, {"x": "1", "y": 1}])]})
    assert fast.items[0].points == slow.items[0].points == ((1.0, 2.0),)
    assert "bad polygon point" in fast.issues and "bad polygon point" in slow.issues


def test_the_embedded_server_process_answers_and_ends_with_its_context() -> None:
    before = child_pids()
    with ServerProcess() as server:
        pid = server.pid
        assert pid is not None and pid in child_pids()
        assert requests.get(f"{server.url}/healthz", timeout=10).ok
    assert child_pids() <= before
