"""Keyframe annotation: the picker, the placing of boxes between keyframes, and the engine's output."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from livecam.annotate.engine import AnnotateOptions, Annotator
from livecam.annotate.jsonl import JsonLinesWriter
from livecam.annotate.keyframes import (
    MAX_GAP,
    TRACK_CONFIDENCE,
    Key,
    KeyframePicker,
    Placed,
    Segment,
    asking_for_tracks,
    parse_keyframes,
    place_between,
)
from livecam.client import ApiConfig
from livecam.errors import ConfigError
from livecam.frames import Image
from livecam.motion.carrier import BoxCarrier
from livecam.predictions import Prediction, Predictions

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from bench_support.blobs import THINGS, corners, detect_blobs, frame_score, scene_frames  # noqa: E402
from frame_io import FrameList, ListOutput  # noqa: E402


def answer(image: Image) -> Predictions:
    height, width = image.shape[:2]
    return Predictions.from_roboflow(
        {"image": {"width": width, "height": height}, "predictions": detect_blobs(image)}, image_size=(width, height)
    )


def boxes(predictions: Predictions) -> list[dict[str, object]]:
    return [
        {
            "x": (p.x1 + p.x2) / 2,
            "y": (p.y1 + p.y2) / 2,
            "width": p.x2 - p.x1,
            "height": p.y2 - p.y1,
            "class": p.class_name,
        }
        for p in predictions.items
    ]


@pytest.fixture(scope="module")
def moving() -> list[Image]:
    return [image for _, image in scene_frames(still_s=0.0, moving_s=1.0, cycles=1)]


def test_keyframe_choices_parse() -> None:
    assert parse_keyframes("auto") == "auto"
    assert parse_keyframes("8") == 8
    for bad in ("1", "0", "x", "-3"):
        with pytest.raises(ValueError):
            parse_keyframes(bad)


def test_every_nth_frame_and_the_last_are_keyframes(moving: list[Image]) -> None:
    picker = KeyframePicker(5, total=12)
    assert [i for i in range(12) if picker.is_key(i, moving[i])] == [0, 5, 10, 11]


def test_auto_sends_at_least_every_max_gap_frames_on_a_still_scene() -> None:
    still = [image for _, image in scene_frames(still_s=2.0, moving_s=0.0, cycles=1)]
    picker = KeyframePicker("auto", total=len(still))
    keys = [i for i, image in enumerate(still) if picker.is_key(i, image)]
    assert keys[0] == 0 and keys[-1] == len(still) - 1
    assert all(0 < b - a <= MAX_GAP for a, b in zip(keys, keys[1:], strict=False))


def test_auto_sends_a_keyframe_at_a_scene_cut(moving: list[Image]) -> None:
    picker = KeyframePicker("auto")
    cut = 255 - moving[3]
    frames = [moving[0], moving[1], moving[2], cut, cut]
    assert [picker.is_key(i, image) for i, image in enumerate(frames)] == [True, False, False, True, False]


def test_boxes_between_two_keyframes_follow_their_objects(moving: list[Image]) -> None:
    first, last = 0, 12
    placed = place_between(
        Key(first, moving[first], answer(moving[first])),
        moving[first + 1 : last],
        Key(last, moving[last], answer(moving[last])),
    )
    assert len(placed) == last - first - 1
    assert all(p.k0 == first and p.k1 == last for p in placed)
    for offset, place in enumerate(placed, start=first + 1):
        truth = detect_blobs(moving[offset])
        assert len(place.predictions.items) == len(truth)
        assert frame_score(truth, boxes(place.predictions)) > 0.8, offset


def test_placing_beats_repeating_the_first_keyframe(moving: list[Image]) -> None:
    first, last = 0, 12
    placed = place_between(
        Key(first, moving[first], answer(moving[first])), moving[1:last], Key(last, moving[last], answer(moving[last]))
    )
    held = boxes(answer(moving[first]))
    for offset, place in enumerate(placed[5:], start=6):
        truth = detect_blobs(moving[offset])
        assert frame_score(truth, boxes(place.predictions)) > frame_score(truth, held)


def test_an_object_seen_on_one_side_only_makes_the_keyframes_disagree(moving: list[Image]) -> None:
    before = answer(moving[0])
    after = answer(moving[8])
    gone = Predictions(items=after.items[:-1], image_size=after.image_size)
    carrier = BoxCarrier()
    assert Segment(Key(0, moving[0], before), moving[1:8], Key(8, moving[8], after), carrier).agrees()
    assert not Segment(Key(0, moving[0], before), moving[1:8], Key(8, moving[8], gone), carrier).agrees()


@pytest.fixture(scope="module")
def still() -> list[Image]:
    return [image for _, image in scene_frames(still_s=0.44, moving_s=0.0, cycles=1)]  # 11 frames


def one_box(image: Image, confidence: float) -> Prediction:
    """The first blob of ``image`` at ``confidence``."""
    return replace(answer(image).items[0], confidence=confidence)


def drawn(placed: list[Placed]) -> list[int]:
    """How many boxes each placed frame draws."""
    return [len(p.predictions.items) for p in placed]


def test_a_box_under_the_threshold_on_one_keyframe_is_drawn_nearer_the_other(still: list[Image]) -> None:
    # 0.60 on the first keyframe, 0.25 on the second: the interpolated confidence falls below
    # 0.40 after 0.2 / 0.35 of the way, so the first 5 of the 9 frames between draw it.
    sure, unsure = one_box(still[0], 0.60), one_box(still[10], 0.25)
    placed = place_between(
        Key(0, still[0], Predictions(items=(sure,))),
        still[1:10],
        Key(10, still[10], Predictions(below_threshold=(unsure,))),
    )
    assert drawn(placed) == [1] * 5 + [0] * 4
    assert all(p.predictions.below_threshold == () for p in placed)
    first = placed[0].predictions.items[0]
    assert first.confidence == pytest.approx(0.60 - 0.35 * 0.1)
    assert frame_score(boxes(Predictions(items=(sure,))), boxes(placed[0].predictions)) > 0.95


def test_the_display_threshold_decides_where_an_interpolated_box_is_drawn(still: list[Image]) -> None:
    first = Key(0, still[0], Predictions(items=(one_box(still[0], 0.60),)))
    last = Key(10, still[10], Predictions(below_threshold=(one_box(still[10], 0.25),)))
    placed = Segment(first, still[1:10], last, BoxCarrier(), shown=0.3).placed()
    assert drawn(placed) == [1] * 8 + [0]


def test_a_box_seen_on_one_side_only_fades_towards_the_other(still: list[Image]) -> None:
    box = one_box(still[0], 0.80)
    gone = place_between(Key(0, still[0], Predictions(items=(box,))), still[1:10], Key(10, still[10], Predictions()))
    assert drawn(gone) == [1] * 5 + [0] * 4  # 0.8 x (1 - w) >= 0.4 up to halfway
    new = place_between(Key(0, still[0], Predictions()), still[1:10], Key(10, still[10], Predictions(items=(box,))))
    assert drawn(new) == [0] * 4 + [1] * 5


def test_a_box_is_kept_whole_before_a_keyframe_whose_request_failed(still: list[Image]) -> None:
    box = one_box(still[0], 0.80)
    placed = place_between(Key(0, still[0], Predictions(items=(box,))), still[1:10], Key(10, still[10], None))
    assert drawn(placed) == [1] * 9


def test_keyframes_ask_for_boxes_under_the_display_threshold() -> None:
    api = ApiConfig("http://127.0.0.1:9", "a/1", confidence=40.0)
    assert asking_for_tracks(api, None) is api
    assert asking_for_tracks(api, "auto").lowest_confidence == TRACK_CONFIDENCE * 100
    assert asking_for_tracks(api, 4).asked_confidence == TRACK_CONFIDENCE * 100
    collecting_lower = replace(api, lowest_confidence=10.0)
    assert asking_for_tracks(collecting_lower, 4).lowest_confidence == 10.0
    low = replace(api, confidence=15.0)
    assert asking_for_tracks(low, 4) is low


def test_after_the_last_keyframe_boxes_are_carried_forward(moving: list[Image]) -> None:
    placed = place_between(Key(0, moving[0], answer(moving[0])), moving[1:6], None)
    assert all(p.k1 is None for p in placed)
    assert all(len(p.predictions.items) == len(THINGS) for p in placed)


class BlobDetector:
    """Answers with the blobs of the frame it is given, and counts the calls."""

    calls = 0
    lock = threading.Lock()

    def detect(self, image: Image, stop: threading.Event) -> Predictions:
        with BlobDetector.lock:
            BlobDetector.calls += 1
        return answer(image)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("choice", [4, "auto"])
def test_annotate_writes_every_frame_in_order_with_placed_boxes(
    choice: int | str, moving: list[Image], tmp_path: Path
) -> None:
    BlobDetector.calls = 0
    frames = [image.copy() for image in moving[:20]]  # the engine draws on the frames it writes
    truths = [detect_blobs(image) for image in frames]
    output = ListOutput()
    jsonl = JsonLinesWriter(tmp_path / "out.jsonl")
    annotator = Annotator(
        FrameList(frames),
        output,
        BlobDetector,
        AnnotateOptions(in_flight=2, keyframes=choice),
        threading.Event(),
        jsonl=jsonl,
    )
    result = annotator.run()
    jsonl.close()
    assert result.frames_written == len(frames)
    assert output.indices == list(range(len(frames)))
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(len(frames)))
    placed = [r for r in records if "from_keyframes" in r]
    sent = [r for r in records if "from_keyframes" not in r]
    assert result.sent == len(sent) == BlobDetector.calls
    assert placed and all(k0 < r["frame"] < k1 for r in placed for k0, k1 in [r["from_keyframes"]])
    if choice == 4:
        assert [r["frame"] for r in sent] == [0, 4, 8, 12, 16, 19]
    for r in records:
        assert frame_score(truths[r["frame"]], r["predictions"]) > 0.8, r["frame"]
    assert corners(records[0]["predictions"][0])


class UnsureDetector(BlobDetector):
    """Sees the red blob under the display threshold only (as a server asked for lower boxes answers)."""

    def detect(self, image: Image, stop: threading.Event) -> Predictions:
        found = answer(image)
        sure = tuple(p for p in found.items if p.class_name != "red")
        unsure = tuple(replace(p, confidence=0.3) for p in found.items if p.class_name == "red")
        return replace(found, items=sure, below_threshold=unsure)


def test_boxes_under_the_threshold_are_never_written(moving: list[Image], tmp_path: Path) -> None:
    frames = [image.copy() for image in moving[:20]]
    jsonl = JsonLinesWriter(tmp_path / "out.jsonl")
    annotator = Annotator(
        FrameList(frames), ListOutput(), UnsureDetector, AnnotateOptions(keyframes=4), threading.Event(), jsonl=jsonl
    )
    assert annotator.run().frames_written == len(frames)
    jsonl.close()
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [len(r["predictions"]) for r in records] == [len(THINGS) - 1] * len(frames)
    assert not any(p["class"] == "red" for r in records for p in r["predictions"])


def test_keyframes_and_every_are_not_given_together() -> None:
    with pytest.raises(ConfigError, match="--keyframes and --every"):
        AnnotateOptions(every=2, keyframes=4)


def test_the_offline_evaluation_runs_at_its_tiny_scale(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_support" / "keyframes_eval.py"), "--tiny"]
        + ["--cache", str(tmp_path), "--json", str(tmp_path / "figures.json")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,  # a bound for a hung child, not a speed target
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["bikes.mp4 --keyframes 3"]["calls"] == 11  # frames 0, 3, ..., 27 and the last, 29
    assert "| bikes.mp4 | --keyframes auto |" in done.stdout
