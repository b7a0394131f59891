"""The box carrier, the track matcher and the compensator on generated frames (no video, no threads)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from livecam.frames import Frame, Image
from livecam.live.motion import MotionThread
from livecam.live.slot import LatestSlot
from livecam.motion import BoxCarrier, Compensator, FrameRing, Shift, TrackMatcher, iou
from livecam.motion.compensator import Carried, clipped
from livecam.motion.ring import Grey
from livecam.predictions import Prediction, Predictions
from livecam.stats import MotionStats

WIDTH, HEIGHT = 640, 360
SIDE = 60


def _texture(seed: int, size: int, contrast: int) -> Image:
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 256, (size // 8 + 1, size // 8 + 1), np.uint8)
    tile = cv2.GaussianBlur(np.kron(cells, np.ones((8, 8), np.uint8))[:size, :size], (5, 5), 0)
    grey = (128 + (tile.astype(np.int16) - 128) * contrast // 255).astype(np.uint8)
    return np.dstack([grey, grey, grey])


BACKGROUND = _texture(1, WIDTH, 40)[:HEIGHT, :WIDTH]
OBJECT = _texture(2, SIDE, 255)


def scene(*corners: tuple[int, int]) -> Image:
    """The textured background with the textured square at each top-left corner (clipped)."""
    image = BACKGROUND.copy()
    for x, y in corners:
        x1, y1, x2, y2 = max(0, x), max(0, y), min(WIDTH, x + SIDE), min(HEIGHT, y + SIDE)
        if x1 < x2 and y1 < y2:
            image[y1:y2, x1:x2] = OBJECT[y1 - y : y2 - y, x1 - x : x2 - x]
    return image


def box(x: float, y: float, name: str = "thing") -> Prediction:
    return Prediction(x, y, x + SIDE, y + SIDE, 0.9, name)


def answer(seq: int, *boxes: Prediction) -> Predictions:
    return Predictions(items=boxes).for_frame(seq, 0.0, seq)


def grey_pair(a: Image, b: Image) -> tuple[Grey, Grey]:
    ring = FrameRing(4, long_side=WIDTH)
    return ring.add(0, a), ring.add(1, b)


@pytest.mark.parametrize("shift", [(7, 0), (0, -5), (12, 9), (-20, 15)])
def test_a_known_shift_is_measured(shift: tuple[int, int]) -> None:
    dx, dy = shift
    prev, nxt = grey_pair(scene((200, 150)), scene((200 + dx, 150 + dy)))
    [found] = BoxCarrier().shifts(prev, nxt, [(200, 150, 200 + SIDE, 150 + SIDE)])
    assert found is not None
    assert found == pytest.approx((dx, dy), abs=0.3)


def test_a_static_scene_gives_no_shift() -> None:
    image = scene((300, 100))
    prev, nxt = grey_pair(image, image.copy())
    assert BoxCarrier().shifts(prev, nxt, [(300, 100, 360, 160), (10, 10, 80, 80)]) == [(0.0, 0.0), (0.0, 0.0)]


def test_a_plain_box_has_no_shift() -> None:
    flat = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    prev, nxt = grey_pair(flat, flat)
    assert BoxCarrier().shifts(prev, nxt, [(100, 100, 200, 200)]) == [None]


def _run(
    compensator: Compensator, positions: list[tuple[int, int]], answers: dict[int, Predictions]
) -> list[Carried | None]:
    results = []
    newest: Predictions | None = None
    for index, corner in enumerate(positions):
        newest = answers.get(index, newest)
        results.append(compensator.step(index, scene(corner), newest))
    return results


def test_boxes_follow_a_bounce_from_an_old_answer() -> None:
    # Right at 8 px a frame, bouncing off x = 400 at frame 10; the answer is for frame 2 and
    # arrives at frame 6, then nothing new comes until the end.
    xs = [100 + 8 * i if i <= 10 else 180 - 8 * (i - 10) for i in range(21)]
    xs = [min(x, 400) for x in xs]
    positions = [(x, 150) for x in xs]
    late = answer(2, box(xs[2], 150))
    results = _run(Compensator(30, long_side=WIDTH), positions, {6: late})
    for index in range(6, 21):
        carried = results[index]
        assert carried is not None
        [drawn] = carried.items
        assert iou(drawn, box(xs[index], 150)) > 0.8, index


def test_a_box_whose_object_leaves_stays_at_its_last_place() -> None:
    positions = [(WIDTH - SIDE - 10 + 15 * i, 200) for i in range(12)]  # gone after frame 5
    results = _run(Compensator(30, long_side=WIDTH), positions, {0: answer(0, box(positions[0][0], 200))})
    last = results[-1]
    assert last is not None
    [drawn] = last.items
    before = results[-2]
    assert before is not None
    assert drawn.x1 == pytest.approx(before.items[0].x1)  # no motion estimated: it stays
    assert drawn.x1 > WIDTH - SIDE  # it went to the edge with its object first
    assert clipped(last.items, WIDTH, HEIGHT) == () or clipped(last.items, WIDTH, HEIGHT)[0].x2 == WIDTH


def test_a_static_scene_does_not_drift() -> None:
    positions = [(250, 120)] * 60
    results = _run(Compensator(30, long_side=320), positions, {0: answer(0, box(250, 120))})
    assert results[-1] is not None
    drawn = results[-1].items[0]
    assert (drawn.x1, drawn.y1, drawn.x2, drawn.y2) == (250, 120, 250 + SIDE, 120 + SIDE)


def test_the_display_can_draw_ahead_by_the_last_velocity() -> None:
    positions = [(100 + 6 * i, 100) for i in range(6)]
    results = _run(Compensator(30, long_side=WIDTH), positions, {0: answer(0, box(100, 100))})
    carried = results[-1]
    assert carried is not None
    assert carried.ahead(2)[0].x1 == pytest.approx(positions[-1][0] + 12, abs=0.6)


def test_matcher_keeps_ids_across_answers() -> None:
    matcher = TrackMatcher()
    first = matcher.assign((), (box(10, 10, "a"), box(200, 10, "a"), box(10, 200, "b")))
    assert [p.track_id for p in first] == [1, 2, 3]
    moved = (box(205, 12, "a"), box(14, 198, "b"), box(12, 11, "a"))
    second = matcher.assign(first, moved)
    assert [p.track_id for p in second] == [2, 3, 1]
    assert matcher.tracks_started == 3


def test_matcher_is_class_aware_and_starts_new_tracks() -> None:
    matcher = TrackMatcher()
    first = matcher.assign((), (box(10, 10, "cat"),))
    second = matcher.assign(first, (box(10, 10, "dog"), box(400, 10, "cat")))
    assert [p.track_id for p in second] == [2, 3]


def test_matcher_remembers_a_track_one_answer_missed() -> None:
    matcher = TrackMatcher(memory=2)
    first = matcher.assign((), (box(10, 10), box(300, 10)))
    second = matcher.assign(first, (box(10, 10),))
    third = matcher.assign(second, (box(12, 10), box(302, 10)))
    assert [p.track_id for p in third] == [1, 2]


def test_matcher_gives_crossing_objects_the_greater_overlap() -> None:
    # Documented: when boxes of one class cross, the id follows the greater overlap.
    matcher = TrackMatcher()
    first = matcher.assign((), (box(100, 100), box(130, 100)))
    second = matcher.assign(first, (box(128, 100), box(102, 100)))
    assert [p.track_id for p in second] == [2, 1]


def test_the_ring_halves_frames_and_keeps_the_newest() -> None:
    ring = FrameRing(3, long_side=480)
    for index in range(5):
        ring.add(index, np.zeros((1080, 1920, 3), np.uint8))
    assert ring.size == (480, 270) and ring.scale == 0.25
    assert ring.path(0, 10) == [2, 3, 4] and ring.get(1) is None and ring.newest == 4


def test_a_late_answer_is_carried_in_a_bounded_number_of_steps() -> None:
    calls: list[int] = []

    class Counting(BoxCarrier):
        def shifts(
            self,
            prev: Grey,
            nxt: Grey,
            boxes: Sequence[tuple[float, float, float, float]],
            priors: Sequence[Shift] = (),
        ) -> list[Shift]:
            calls.append(len(boxes))
            return super().shifts(prev, nxt, boxes, priors)

    compensator = Compensator(30, long_side=WIDTH, carrier=Counting(), catch_up_steps=5)
    positions = [(100 + 2 * i, 100) for i in range(31)]  # 12 px per step of 6 frames
    results = _run(compensator, positions[:30], {})
    assert results[-1] is None
    calls.clear()
    carried = compensator.step(30, scene(positions[30]), answer(0, box(100, 100)))
    assert carried is not None and len(calls) <= 6
    assert iou(carried.items[0], box(*positions[30])) > 0.8


class MotionRun:
    """A motion thread over its own slots, stopped and joined (bounded) when the block ends."""

    def __init__(self) -> None:
        self.frames: LatestSlot[Frame] = LatestSlot()
        self.predictions: LatestSlot[Predictions] = LatestSlot()
        self.carried: LatestSlot[Carried] = LatestSlot()
        self.stop = threading.Event()
        self.thread = MotionThread(
            self.frames, self.predictions, self.stop, Compensator(30, long_side=WIDTH), self.carried
        )

    def __enter__(self) -> MotionRun:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.frames.close()
        assert self.thread.join(5)

    def show(self, index: int, x: int, seen: int) -> Carried:
        """Put frame ``index`` with the object at ``x``; the carried boxes published after ``seen``."""
        self.frames.put(Frame(index, scene((x, 100)), 0.0))
        got = self.carried.wait_newer(seen, timeout=10)
        assert got is not None and got.index == index
        return got


def test_motion_thread_publishes_carried_boxes() -> None:
    with MotionRun() as run:
        run.predictions.put(answer(0, box(100, 100)))
        seen = -1
        for index in range(4):
            got = run.show(index, 100 + 5 * index, seen)
            seen = got.seq
        assert got.items[0].x1 == pytest.approx(115, abs=1)
    section = run.thread.stats(MotionStats(enabled=True))
    assert section.tracks_started == 1 and section.cost_ms.p50 is not None


def test_an_answer_with_too_many_boxes_is_drawn_as_detected() -> None:
    compensator = Compensator(30, long_side=WIDTH, max_boxes=2)
    many = answer(0, box(10, 10), box(100, 10), box(200, 10))
    carried = compensator.step(0, scene((10, 10)), many)
    assert carried is not None and not carried.compensated
    assert carried.items == many.items and carried.ahead(2) == many.items
    assert compensator.tracks_started == 0


def test_an_answer_between_frames_is_carried_to_the_newest_frame_at_once() -> None:
    with MotionRun() as run:
        run.predictions.put(answer(0, box(100, 100)))
        seen = -1
        for index in range(3):
            seen = run.show(index, 100 + 5 * index, seen).seq
        # The thread is now idle at frame 2. An answer for frame 1 arrives and no frame follows:
        # it is carried to frame 2 at once, not at the next frame.
        run.predictions.put(answer(1, box(105, 100)))
        got = run.carried.wait_newer(seen, timeout=10)
        assert got is not None and got.index == 2 and got.answer.frame_index == 1
        assert got.items[0].x1 == pytest.approx(110, abs=1)
