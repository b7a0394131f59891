"""A hostile Roboflow-format API on 127.0.0.1: answers whose strings attack whatever reads them.

    with hostile_api() as api:      # a StubApi (tests/stub_api.py) with the hostile script
        run livecam against api.url with --api-key KEY

Every answer (valid JSON) holds a class name with a lone UTF-16 surrogate, one with control
characters and ANSI escapes, the API key echoed back as a class name (in the box and, cut by
the length cap, at the end of a long one), a box under the display threshold with a surrogate,
keypoints with 200 KB names, and each third request is a 500 whose message carries a newline,
a forged log line and a terminal-clearing escape. The answer is large, so it is parsed in the
parse worker process, which never has the key.
"""

from __future__ import annotations

import itertools
import json

from stub_api import Reply, Seen, StubApi

SURROGATE = "bad\ud800name"
CONTROLS = "ctl\x00\x1b[31mred\x1b[0m\x07\x7f"
FORGED = "boom\n12:00:00 ERROR livecam: injected\x1b[2J\x1b[H"
HUGE = 200_000


def hostile_answer(seen: Seen) -> Reply:
    """The hostile answer for one request (a 500 with a forged log line every third one)."""
    width, height = seen.image_size or (640, 480)
    key = seen.query.get("api_key", "")
    if next(_answers) % 3 == 2:
        return Reply(500, json.dumps({"message": FORGED}).encode())

    def box(name: str, x: float, confidence: float = 0.9, **extra: object) -> dict[str, object]:
        shape = {"x": x, "y": height / 2, "width": width / 8, "height": height / 4, "confidence": confidence}
        return shape | {"class": name, "class_id": 0} | extra

    keypoints = [{"x": width / 2, "y": height / 2, "confidence": 0.9, "class": "k" * HUGE} for _ in range(3)]
    predictions = [
        box(SURROGATE, width * 0.15),
        box(CONTROLS, width * 0.35),
        box(key, width * 0.55),
        box("x" * 50 + key, width * 0.75),
        box("pose", width * 0.5, keypoints=keypoints),
        box(SURROGATE, width * 0.9, confidence=0.45),  # under the default 40 % + band: collected
        {"x": 5, "y": 5, "width": 4, "height": 4, "confidence": 0.8, "class_id": "7\ud800"},
    ]
    return Reply(body=json.dumps({"image": {"width": width, "height": height}, "predictions": predictions}).encode())


_answers = itertools.count()  # next() on a count is atomic: safe from the stub's threads


def hostile_api() -> StubApi:
    """A :class:`StubApi` answering :func:`hostile_answer` (use it as a context manager)."""
    return StubApi(script=hostile_answer)
