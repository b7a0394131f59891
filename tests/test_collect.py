"""The collect package: strategies, limits, near-duplicates, the disk floor, VOC, the item store, the collector."""

from __future__ import annotations

import json
import logging
import random
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest
from json_view import loose
from samples import sample_frame

from livecam.collect import STRATEGY_NAMES, CollectConfig, Collector, items, parse_band, parse_strategies
from livecam.collect.dedupe import RecentHashes, difference, fingerprint
from livecam.collect.limits import SaveLimits, TokenBucket
from livecam.collect.store import remove_leftovers, write_item
from livecam.collect.strategies import Chooser, CountChange, Empty, LowConfidence, RandomShare, Vanished
from livecam.collect.voc import voc_xml
from livecam.errors import ConfigError
from livecam.frames import Frame, Image
from livecam.predictions import Prediction, Predictions


def box(confidence: float = 0.9, name: str = "person", x: float = 10) -> Prediction:
    return Prediction(x, 10, x + 50, 80, confidence, name)


def answer(*boxes: Prediction, below: tuple[Prediction, ...] = ()) -> Predictions:
    return Predictions(items=boxes, image_size=(640, 480), below_threshold=below)


# --- strategies -----------------------------------------------------------------------------------


def test_low_confidence_picks_a_box_in_the_band_including_boxes_under_the_display_threshold() -> None:
    strategy = LowConfidence(0.25, 0.55)
    assert strategy.picks(answer(box(0.5)))
    assert strategy.picks(answer(box(0.9), below=(box(0.3),)))
    assert not strategy.picks(answer(box(0.9), box(0.6)))
    assert not strategy.picks(answer(below=(box(0.2),)))
    only_cars = LowConfidence(0.25, 0.55, frozenset({"car"}))
    assert not only_cars.picks(answer(box(0.4, "person")))
    assert only_cars.picks(answer(box(0.4, "car")))


def test_empty_and_vanished_and_count_change_follow_the_answers() -> None:
    empty, vanished, jump = Empty(frozenset({"person"})), Vanished(), CountChange(jump=2)
    sequence = [answer(box()), answer(box(), box(x=100), box(x=200)), answer(), answer(box(name="cat"))]
    assert [empty.picks(a) for a in sequence] == [False, False, True, True]
    assert [vanished.picks(a) for a in sequence] == [False, False, True, False]
    assert [jump.picks(a) for a in sequence] == [False, True, True, False]


def test_classification_answers_are_not_empty() -> None:
    assert not Empty().picks(Predictions(caption="cat 0.93"))


def test_random_picks_about_its_share() -> None:
    strategy = RandomShare(0.1, random.Random(7))
    picked = sum(strategy.picks(answer()) for _ in range(2000))
    assert 140 <= picked <= 260


def test_chooser_asks_every_strategy_so_each_keeps_its_state() -> None:
    config = CollectConfig(Path("x"), strategies=("low-confidence", "vanished"))
    chooser = Chooser.from_config(config)
    assert chooser.pick(answer(box(0.4))) == ("low-confidence",)
    assert chooser.pick(answer()) == ("vanished",)
    assert chooser.pick(answer(box(0.4))) == ("low-confidence",)


def test_config_checks_names_and_combinations() -> None:
    assert parse_strategies("all") == STRATEGY_NAMES
    assert parse_strategies(" Empty, random,empty") == ("empty", "random")
    assert parse_band("25-55") == (0.25, 0.55)
    with pytest.raises(ValueError):
        parse_band("0.3")
    with pytest.raises(ConfigError, match="unknown 'blurry'"):
        CollectConfig(Path("x"), strategies=("blurry",))
    with pytest.raises(ConfigError, match="--collect-classes"):
        CollectConfig(Path("x"), strategies=("classes",))
    assert CollectConfig(Path("x"), strategies=("empty",)).lowest_confidence is None


# --- limits ---------------------------------------------------------------------------------------


def test_token_bucket_allows_a_burst_then_the_steady_rate() -> None:
    bucket = TokenBucket(10, 60.0)
    assert sum(bucket.take(0.0) for _ in range(15)) == 10
    assert not bucket.take(5.9)
    assert bucket.take(6.0)
    assert sum(bucket.take(600.0) for _ in range(15)) == 10  # refilled to capacity, not beyond


def test_save_limits_take_from_every_bucket_or_none() -> None:
    limits = SaveLimits(per_minute=3, per_hour=4, total=6)
    assert [limits.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert limits.take(60.0)  # the minute refilled; the hour had one left
    assert not limits.take(120.0)  # the hour is spent although the minute is not
    assert limits.take(1800.0)
    assert limits.saved == 5
    later = SaveLimits(per_minute=0, per_hour=0, total=6, already=5)
    assert later.take(0.0) and later.exhausted and not later.take(1.0)
    later.give_back()  # the reserved save did not happen
    assert not later.exhausted and later.take(2.0)


def test_a_given_back_reservation_refunds_the_rate_too() -> None:
    limits = SaveLimits(per_minute=1, per_hour=0, total=0)
    assert limits.take(0.0) and not limits.take(0.0)
    limits.give_back()
    assert limits.take(0.0)


# --- near-duplicates ------------------------------------------------------------------------------


def seen_again(image: Image, rng: np.random.Generator, sigma: float = 2.0) -> Image:
    """``image`` as a camera sees it again: sensor noise, then a JPEG re-encode."""
    noise = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    noisy = np.clip(image + noise, 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return cast(Image, cv2.imdecode(data, cv2.IMREAD_COLOR))


def test_fingerprint_ignores_noise_and_brightness_but_not_a_different_scene() -> None:
    plaza = sample_frame("vtest.avi", 100)
    rng = np.random.default_rng(0)
    brighter = cast(Image, cv2.add(plaza, np.full_like(plaza, 25)))
    street = sample_frame("bikes.mp4", 100)
    base = fingerprint(plaza)
    threshold = CollectConfig(Path("x")).min_difference
    assert difference(base, fingerprint(seen_again(plaza, rng, sigma=6))) < threshold
    assert difference(base, fingerprint(brighter)) < threshold
    assert difference(base, fingerprint(street)) > 5 * threshold
    later = sample_frame("vtest.avi", 160)  # six seconds on: people have moved
    assert difference(base, fingerprint(later)) > threshold
    recent = RecentHashes(keep=2, min_difference=threshold)
    recent.add(base)
    assert recent.near(fingerprint(seen_again(plaza, rng))) and not recent.near(fingerprint(street))


def test_fingerprint_sees_the_same_picture_at_another_resolution() -> None:
    plaza = sample_frame("vtest.avi", 100)
    bigger = fingerprint(cast(Image, cv2.resize(plaza, (1536, 1152))))
    assert difference(bigger, fingerprint(plaza)) < CollectConfig(Path("x")).min_difference


def saves(stills: list[Image], readings: list[str]) -> int:
    """How many of 300 noisy copies of ``stills`` (in turn) the collector's near-duplicate rule
    saves, each copy seen by the model as the next of ``readings``."""
    rng = np.random.default_rng(3)
    recent = RecentHashes(keep=64, min_difference=CollectConfig(Path("x")).min_difference)
    saved = 0
    for i in range(300):
        value, seen = fingerprint(seen_again(stills[i % len(stills)], rng)), readings[i % len(readings)]
        if not recent.near(value, seen):
            recent.add(value, seen)
            saved += 1
    return saved


@pytest.mark.slow
def test_300_noisy_frames_of_one_still_picture_are_saved_once_per_model_reading() -> None:
    still = cast(Image, cv2.resize(sample_frame("vtest.avi", 100), (640, 360)))
    # Three ways the model reads the picture, in turn: a different reading is no duplicate.
    assert saves([still], ["person:3", "person:4", "dog:1,person:3"]) == 3


@pytest.mark.slow
def test_300_noisy_frames_of_a_plain_wall_are_saved_once() -> None:
    ys, xs = np.mgrid[0:360, 0:640].astype(np.float32)
    lit = np.clip(110 + 30 * xs / 640 + 10 * ys / 360, 0, 255).astype(np.uint8)  # lit from one side
    assert saves([cast(Image, np.dstack([lit, lit, lit]))], [""]) == 1


# --- VOC and the store ----------------------------------------------------------------------------


def test_voc_xml_holds_size_names_and_clipped_whole_pixel_boxes() -> None:
    text = voc_xml("a.jpg", (640, 480), [Prediction(-5.2, 10.4, 100.6, 500, 0.8, "café <&>"), box()])
    root = ET.fromstring(text)
    assert root.findtext("filename") == "a.jpg"
    assert (root.findtext("size/width"), root.findtext("size/height")) == ("640", "480")
    objects = root.findall("object")
    assert [o.findtext("name") for o in objects] == ["café <&>", "person"]
    first = objects[0].find("bndbox")
    assert first is not None
    assert [first.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")] == ["0", "10", "101", "480"]


def test_an_item_is_complete_only_with_its_sidecar_and_crash_leftovers_are_removed(tmp_path: Path) -> None:
    write_item(tmp_path, "a", b"jpeg", "<annotation/>", {"x": 1})
    write_item(tmp_path, "b", b"jpeg", None, {"x": 2})
    (tmp_path / "c.jpg").write_bytes(b"no sidecar yet")
    (tmp_path / ".d.jpg.tmp").write_bytes(b"torn")
    found = items(tmp_path)
    assert [i.stem for i in found] == ["a", "b"]
    assert found[0].annotation is not None and found[1].annotation is None
    assert remove_leftovers(tmp_path) == 1
    assert not (tmp_path / ".d.jpg.tmp").exists()


def test_a_failed_write_leaves_no_half_item(tmp_path: Path) -> None:
    (tmp_path / "a.livecam.json").mkdir()  # the sidecar cannot replace a folder
    with pytest.raises(OSError):
        write_item(tmp_path, "a", b"jpeg", "<annotation/>", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.livecam.json"]


# --- the collector --------------------------------------------------------------------------------


def full_hd(index: int) -> Image:
    return cast(Image, cv2.resize(sample_frame("bikes.mp4", index), (1920, 1080)))


class GatedEncoder:
    """An encoder that waits for ``gate`` (to hold the writer thread) and says when it started."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()

    def encode(self, image: Image, quality: int) -> bytes:
        self.started.set()
        assert self.gate.wait(10)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return bytes(data.tobytes())


def test_collector_saves_the_full_resolution_frame_its_prelabel_and_a_sidecar(tmp_path: Path) -> None:
    config = CollectConfig(tmp_path / "out", strategies=("low-confidence",))
    collector = Collector(config, source="rtsp://cam.local/live?api_key=SECRET", model_id="birds/3")
    assert collector.start()
    frame = Frame(7, full_hd(0), captured_at=1.0)
    collector.offer(frame, answer(box(0.9), below=(box(0.3, "car"),)))
    collector.offer(Frame(8, full_hd(200), 2.0), answer(box(0.9)))  # nothing in the band
    collector.close()
    assert collector.stats()["collected"] == 1
    (item,) = items(config.directory)
    saved = cv2.imread(str(item.image))
    assert saved is not None and saved.shape == (1080, 1920, 3)
    assert item.annotation is not None
    names = [o.findtext("name") for o in ET.parse(item.annotation).getroot().findall("object")]
    assert names == ["person", "car"]
    sidecar = json.loads(item.sidecar.read_text())
    assert sidecar["strategies"] == ["low-confidence"] and sidecar["model"] == "birds/3"
    assert sidecar["frame"] == 7 and sidecar["width"] == 1920
    assert sidecar["below_threshold"][0]["class"] == "car"
    assert "SECRET" not in item.sidecar.read_text()


def test_offer_returns_at_once_and_counts_what_the_full_queue_drops(tmp_path: Path) -> None:
    encoder = GatedEncoder()
    config = CollectConfig(tmp_path, strategies=("random",), random_share=1.0, queue=2, min_difference=0.0)
    collector = Collector(config, source="test", model_id=None, encoder=encoder)
    assert collector.start()
    collector.offer(Frame(0, full_hd(0), 0.0), answer())
    assert encoder.started.wait(10)  # the writer holds frame 0; the queue is empty again
    for seq in range(1, 6):
        collector.offer(Frame(seq, full_hd(seq * 40), float(seq)), answer())
    assert collector.stats()["collect_dropped"] == 3  # two wait in the queue
    encoder.gate.set()
    collector.close()
    stats = loose(collector.stats())
    assert stats["collected"] == 3 and stats["collected_by_strategy"] == {"random": 3}


def test_near_duplicates_of_recent_saves_are_skipped_even_after_a_restart(tmp_path: Path) -> None:
    config = CollectConfig(tmp_path, strategies=("empty",), max_per_minute=0, max_per_hour=0, queue=32)
    still = sample_frame("vtest.avi", 100)
    rng = np.random.default_rng(1)
    for run in range(2):
        collector = Collector(config, source="test", model_id=None)
        assert collector.start()
        for seq in range(20):
            noisy = np.clip(still.astype(np.int16) + rng.normal(0, 4, still.shape), 0, 255).astype(np.uint8)
            collector.offer(Frame(seq, noisy, float(seq)), answer())
        collector.close()
        stats = loose(collector.stats())
        assert stats["collected"] == (1 if run == 0 else 0)
        assert stats["collect_skipped"]["duplicate"] == (19 if run == 0 else 20)
    assert len(items(tmp_path)) == 1


def test_max_total_counts_what_the_folder_already_holds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for stem in ("a", "b"):
        write_item(tmp_path, stem, b"jpeg", None, {})
    config = CollectConfig(tmp_path, strategies=("empty",), max_total=2)
    with caplog.at_level(logging.INFO):
        assert not Collector(config, source="test", model_id=None).start()
    assert "already holds 2 items" in caplog.text


def test_unwritable_folder_is_one_error_and_offers_are_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    collector = Collector(CollectConfig(blocker / "collect"), source="test", model_id=None)
    with caplog.at_level(logging.WARNING):
        assert not collector.start()
        for seq in range(5):
            collector.offer(Frame(seq, full_hd(0), float(seq)), answer(box(0.4)))
        collector.close()
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and "cannot write to" in errors[0].getMessage()
    assert collector.stats()["collected"] == 0 and not collector.active


def test_disk_floor_stops_collecting_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    free = [10 * 1024 * 1024 * 1024]
    config = CollectConfig(tmp_path, strategies=("random",), random_share=1.0, min_free_mb=100, min_difference=0.0)
    collector = Collector(config, source="test", model_id=None, free_space=lambda _path: free[0])
    assert collector.start()
    collector.offer(Frame(0, full_hd(0), 0.0), answer())
    collector.close()
    assert collector.stats()["collected"] == 1
    free[0] = 50 * 1024 * 1024
    collector = Collector(config, source="test", model_id=None, free_space=lambda _path: free[0])
    with caplog.at_level(logging.WARNING):
        assert not collector.start()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"collection stopped: only 50 MB free for {tmp_path}, under the --collect-min-free-mb floor of 100 MB; "
        "the video goes on"
    ]


def test_a_new_detection_in_a_parked_scene_is_not_a_duplicate(tmp_path: Path) -> None:
    config = CollectConfig(
        tmp_path, strategies=("random",), random_share=1.0, max_per_minute=0, max_per_hour=0, queue=8
    )
    collector = Collector(config, source="test", model_id=None)
    assert collector.start()
    still = sample_frame("vtest.avi", 100)
    answers = [answer(), answer(), answer(box()), answer(box()), answer(box(), box(name="car"))]
    for seq, found in enumerate(answers):
        collector.offer(Frame(seq, still, float(seq)), found)
    collector.close()
    assert loose(collector.stats())["collected"] == 3  # nothing; a person; a person and a car
    assert loose(collector.stats())["collect_skipped"]["duplicate"] == 2
