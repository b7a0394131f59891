"""Offline evaluation of ``annotate --keyframes`` on the sample footage, without a run per idea.

The embedded model's answer for every frame is asked once, down to a low confidence, and cached
as JSON; truth for a frame is its answer at the display threshold (0.40), as ``annotate`` of every
frame gives it. Each way of choosing keyframes and placing the frames between them is then played
over the decoded frames with livecam's own :class:`~livecam.annotate.keyframes.KeyframePicker`
and :class:`~livecam.annotate.keyframes.Segment`, the frame halfway between two disagreeing
keyframes asked as the annotate engine asks it, and scored as ``scripts/bench.py cost`` scores
(:func:`bench_support.blobs.frame_score`), against ``--every N`` at the same number of calls (read
off the line between the two N around it).

    .venv/bin/python scripts/bench_support/keyframes_eval.py --cache /tmp/kf-cache
    .venv/bin/python scripts/bench_support/keyframes_eval.py --tiny   # 30 frames of bikes.mp4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_support.blobs import at_calls, bracketing_shares, frame_score, mean  # noqa: E402 - run as a script, beside its package
from bench_support.common import SAMPLES, table  # noqa: E402
from livecam.annotate.keyframes import TRACK_CONFIDENCE, Key, KeyframePicker, Keyframes, Segment  # noqa: E402
from livecam.client import DetectionClient  # noqa: E402
from livecam.connection import ApiSettings  # noqa: E402
from livecam.frames import Image  # noqa: E402
from livecam.motion.carrier import BoxCarrier  # noqa: E402
from livecam.predictions import Prediction, Predictions  # noqa: E402
from livecam.public.serve import connect  # noqa: E402

LOWEST = 0.05
"""The confidence the cached answers go down to."""
THRESHOLD = 0.40
"""The display threshold: a frame's truth is its answer at this confidence."""
CLIPS = ("bikes.mp4", "vtest.avi")
SHARES = (3, 4, 6, 8)
"""Call budgets: one call per this many frames."""

Raw = list[list[Prediction]]
"""Every frame's boxes down to :data:`LOWEST`."""
Shown = list[Predictions | None]
Strategy = Callable[[Sequence[Image], "Ask"], tuple[Shown, int]]


def read_frames(video: Path, limit: int | None = None) -> list[Image]:
    """The decoded frames of ``video`` (the first ``limit``)."""
    capture = cv2.VideoCapture(str(video))
    frames: list[Image] = []
    try:
        while limit is None or len(frames) < limit:
            ok, image = capture.read()
            if not ok:
                break
            frames.append(np.asarray(image, np.uint8))
    finally:
        capture.release()
    return frames


def ask_all(frames: Sequence[Image]) -> Raw:
    """The embedded model's answer for each frame, down to :data:`LOWEST`, through livecam's client."""
    raw: Raw = []
    with connect(ApiSettings()) as api:
        client = DetectionClient(dataclasses.replace(api, lowest_confidence=LOWEST * 100))
        try:
            for image in frames:
                answer = client.detect(image)
                raw.append([*answer.items, *answer.below_threshold])
        finally:
            client.close()
    return raw


def cached_answers(video: Path, frames: Sequence[Image], cache: Path) -> Raw:
    """:func:`ask_all`, kept in ``cache`` between runs."""
    path = cache / f"{video.name}.{len(frames)}.json"
    if path.exists():
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [[Prediction(x1, y1, x2, y2, confidence, name) for x1, y1, x2, y2, confidence, name in f] for f in rows]
    raw = ask_all(frames)
    rows = [[[p.x1, p.y1, p.x2, p.y2, p.confidence, p.class_name] for p in frame] for frame in raw]
    cache.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")
    return raw


@dataclasses.dataclass(frozen=True)
class Ask:
    """The answers the model would give, at a chosen lowest confidence."""

    raw: Raw
    lowest: float = THRESHOLD

    def __call__(self, index: int) -> Predictions:
        boxes = self.raw[index]
        items = tuple(p for p in boxes if p.confidence >= THRESHOLD)
        below = tuple(p for p in boxes if self.lowest <= p.confidence < THRESHOLD)
        return Predictions(items=items, below_threshold=below)


def every(n: int) -> Strategy:
    """``--every N``: each frame shows the answer of the last frame sent."""

    def play(frames: Sequence[Image], ask: Ask) -> tuple[Shown, int]:
        shown: Shown = []
        answer = Predictions()
        for index in range(len(frames)):
            if index % n == 0:
                answer = ask(index)
            shown.append(answer)
        return shown, (len(frames) + n - 1) // n

    return play


def keyframes(choice: Keyframes, segment: type[Segment] = Segment, lowest: float = TRACK_CONFIDENCE) -> Strategy:
    """``--keyframes``: the picker's keyframes, refined (``auto``) and placed as the engine does."""

    def play(frames: Sequence[Image], ask: Ask) -> tuple[Shown, int]:
        ask = dataclasses.replace(ask, lowest=lowest)
        picker = KeyframePicker(choice, len(frames))
        carrier = BoxCarrier()
        shown: Shown = [None] * len(frames)
        calls = 0

        def sent(index: int) -> Key:
            nonlocal calls
            calls += 1
            answer = ask(index)
            shown[index] = Predictions(items=answer.items)
            return Key(index, frames[index], answer)

        def fill(first: Key, between: list[int], last: Key | None) -> None:
            if not between:
                return
            part = segment(first, [frames[i] for i in between], last, carrier, THRESHOLD)
            half = part.split_at() if choice == "auto" else None
            if half is not None:
                here = sent(between[half])
                fill(first, between[:half], here)
                fill(here, between[half + 1 :], last)
                return
            for index, place in zip(between, part.placed(), strict=True):
                shown[index] = place.predictions

        key: Key | None = None
        between: list[int] = []
        for index, image in enumerate(frames):
            if not picker.is_key(index, image):
                between.append(index)
                continue
            here = sent(index)
            if key is not None:
                fill(key, between, here)
            between = []
            key = here
        if key is not None:
            fill(key, between, None)
        return shown, calls

    return play


def as_json(predictions: Predictions | None) -> list[dict[str, Any]]:
    return [] if predictions is None else list(predictions.to_roboflow()["predictions"])


def score(shown: Shown, truth: Sequence[list[dict[str, Any]]]) -> float:
    """Mean per-frame score of ``shown`` against ``truth``."""
    return mean([frame_score(t, as_json(s)) for s, t in zip(shown, truth, strict=True)])


def evaluate(
    clips: dict[str, tuple[list[Image], Raw]], strategies: dict[str, Strategy]
) -> tuple[list[list[Any]], dict[str, Any]]:
    """Each strategy on each clip, against ``--every N`` at the two N around its calls and the score
    ``--every`` would have at exactly its calls (on the line between those two)."""
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    for clip, (frames, raw) in clips.items():
        ask = Ask(raw)
        truth = [as_json(ask(i)) for i in range(len(frames))]
        held: dict[int, tuple[int, float]] = {}
        for name, strategy in strategies.items():
            started = time.perf_counter()
            shown, calls = strategy(frames, ask)
            value = score(shown, truth)
            ns = bracketing_shares(len(frames), calls)
            for n in ns:
                if n not in held:
                    played, made = every(n)(frames, ask)
                    held[n] = (made, score(played, truth))
            same = at_calls(calls, [held[n] for n in ns])
            around = " / ".join(f"{n}: {held[n][0]} calls, {held[n][1]:.2f}" for n in sorted(set(ns)))
            rows.append([clip, name, calls, calls / len(frames), value, around, same, value - same])
            data[f"{clip} {name}"] = {
                "calls": calls,
                "iou": value,
                "every": {n: held[n] for n in ns},
                "every_iou": same,
            }
            print(f"{clip} {name}: {calls} calls, {value:.3f} vs {same:.3f} ({time.perf_counter() - started:.1f} s)")
    return rows, data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/livecam-keyframes-eval"), help="answers kept here")
    parser.add_argument("--tiny", action="store_true", help="30 frames of bikes.mp4 (proves it works)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    names = CLIPS[:1] if args.tiny else CLIPS
    limit = 30 if args.tiny else None
    clips: dict[str, tuple[list[Image], Raw]] = {}
    for name in names:
        frames = read_frames(SAMPLES / name, limit)
        clips[name] = (frames, cached_answers(SAMPLES / name, frames, args.cache))
    strategies: dict[str, Strategy] = {"--keyframes auto": keyframes("auto")}
    for n in (3,) if args.tiny else SHARES:
        strategies[f"--keyframes {n}"] = keyframes(n)
    rows, data = evaluate(clips, strategies)
    headers = ["clip", "placement", "calls", "share", "mean IoU", "--every N around", "--every at its calls", "gain"]
    print(table(headers, rows))
    if args.json is not None:
        args.json.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
