"""The change measure, the request budget and the send gate, on scripted frames with a fake clock."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest
from samples import sample_frame

from livecam.cost.budget import WINDOW_S, RequestBudget
from livecam.cost.change import ChangeMeter, thumbnail
from livecam.cost.credits import credits_for, is_hosted, processing_time
from livecam.cost.gate import SendGate
from livecam.cost.policy import SendPolicy, default_send_mode, send_policy
from livecam.frames import Frame, Image
from livecam.predictions import Prediction, Predictions


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def noisy(image: Image, rng: np.random.Generator, sigma: float = 2.0) -> Image:
    """``image`` with sensor-like noise, through a JPEG round trip as a camera's stream would be."""
    noise = rng.normal(0.0, sigma, image.shape)
    out = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return np.asarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), np.uint8)


def with_square(image: Image, x: int, y: int, side: int = 40, colour: tuple[int, int, int] = (0, 0, 255)) -> Image:
    out = image.copy()
    cv2.rectangle(out, (x, y), (x + side, y + side), colour, -1)
    return out


@pytest.fixture
def still() -> Image:
    return np.asarray(cv2.resize(sample_frame("vtest.avi", 0), (640, 360), interpolation=cv2.INTER_AREA), np.uint8)


def test_budget_never_exceeds_its_calls_in_any_minute_and_spreads_them_evenly() -> None:
    clock = FakeClock()
    budget = RequestBudget(30, clock)
    allowed: list[float] = []
    for step in range(3000):  # a caller asking every 0.1 s for 300 s
        clock.now = step * 0.1
        if budget.try_spend() == 0:
            allowed.append(clock.now)
    assert len(allowed) >= 140
    for i, t in enumerate(allowed):
        in_window = [u for u in allowed[i:] if u < t + WINDOW_S]
        assert len(in_window) <= 30
    gaps = np.diff(allowed)
    assert gaps.min() >= 2.0 - 1e-9
    assert gaps.max() <= 2.0 + 0.1 + 1e-9


def test_budget_says_how_long_to_wait_and_spends_nothing_meanwhile() -> None:
    clock = FakeClock()
    budget = RequestBudget(6, clock)
    assert budget.try_spend() == 0
    clock.now = 4.0
    assert budget.try_spend() == pytest.approx(6.0)
    assert budget.wait_s() == pytest.approx(6.0)
    clock.now = 10.0
    assert budget.try_spend() == 0


def test_sensor_noise_and_jpeg_are_not_a_change(still: Image) -> None:
    rng = np.random.default_rng(1)
    meter = ChangeMeter()
    reference = thumbnail(0, noisy(still, rng))
    for seq in range(1, 60):
        assert not meter.outside_changed(reference, thumbnail(seq, noisy(still, rng)))


def test_a_small_exposure_step_is_not_a_change(still: Image) -> None:
    meter = ChangeMeter()
    brighter = np.clip(still.astype(np.int16) + 10, 0, 255).astype(np.uint8)
    assert not meter.outside_changed(thumbnail(0, still), thumbnail(1, brighter))


def test_a_new_object_is_a_change_but_not_inside_a_box_being_drawn(still: Image) -> None:
    meter = ChangeMeter()
    reference = thumbnail(0, still)
    appeared = thumbnail(1, with_square(still, 300, 150))
    assert meter.outside_changed(reference, appeared)
    assert not meter.outside_changed(reference, appeared, [(290.0, 140.0, 350.0, 200.0)])


def test_a_box_whose_object_left_has_changed_under_it(still: Image) -> None:
    meter = ChangeMeter()
    with_object = with_square(still, 300, 150, side=60)
    then = thumbnail(0, with_object)
    box = (300.0, 150.0, 360.0, 210.0)
    assert not meter.box_changed(then, thumbnail(1, noisy(with_object, np.random.default_rng(2))), [box])
    assert meter.box_changed(then, thumbnail(2, still), [box])
    assert meter.box_changed(then, thumbnail(3, still), [(700.0, 150.0, 760.0, 210.0)])  # off the picture


class Answers:
    """The newest answer, as the predictions slot would hold it."""

    def __init__(self) -> None:
        self.newest: Predictions | None = None

    def __call__(self) -> Predictions | None:
        return self.newest

    def answer(self, frame: Frame, *boxes: tuple[float, float, float, float]) -> None:
        items = tuple(Prediction(*box, 0.9, "thing") for box in boxes)
        self.newest = Predictions(items=items).for_frame(frame.seq, frame.captured_at, frame.index)


def test_every_mode_with_a_budget_only_spaces_calls(still: Image) -> None:
    clock = FakeClock()
    gate = SendGate(SendPolicy("every", max_per_minute=60), Answers(), clock)
    decisions = []
    for seq in range(10):
        clock.now = seq * 0.25
        decisions.append(gate.decide(Frame(seq, still, clock.now)))
    assert [d.send for d in decisions] == [True, False, False, False, True, False, False, False, True, False]
    assert gate.skipped().budget == 7
    assert gate.skipped().unchanged == 0


def test_a_still_scene_is_asked_once_per_refresh_period(still: Image) -> None:
    clock = FakeClock()
    answers = Answers()
    gate = SendGate(SendPolicy("changes", refresh_s=5.0), answers, clock)
    rng = np.random.default_rng(3)
    sent = []
    for seq in range(25 * 30):  # 30 s at 25 fps
        clock.now = seq / 25
        frame = Frame(seq, noisy(still, rng) if seq % 10 == 0 else still, clock.now)
        if gate.decide(frame).send:
            sent.append(clock.now)
            answers.answer(frame)
    assert sent[0] == 0.0
    assert len(sent) <= 1 + 30 / 5
    assert all(b - a >= 5.0 - 1e-9 for a, b in zip(sent, sent[1:], strict=False))
    assert gate.reasons.get("refresh", 0) == len(sent) - 1


def test_an_object_appearing_in_a_still_scene_is_sent_on_the_next_frame(still: Image) -> None:
    clock = FakeClock()
    answers = Answers()
    gate = SendGate(SendPolicy("changes", refresh_s=60.0), answers, clock)
    first = Frame(0, still, 0.0)
    assert gate.decide(first).send
    answers.answer(first)
    for seq in range(1, 10):
        clock.now = seq / 25
        assert not gate.decide(Frame(seq, still, clock.now)).send
    clock.now = 10 / 25
    decision = gate.decide(Frame(10, with_square(still, 400, 100), clock.now))
    assert decision.send and decision.reason == "changed"


def test_a_boxed_object_that_moves_away_is_sent_without_motion_compensation(still: Image) -> None:
    clock = FakeClock()
    answers = Answers()
    gate = SendGate(SendPolicy("changes", refresh_s=60.0), answers, clock)
    first = Frame(0, with_square(still, 200, 150, side=60), 0.0)
    assert gate.decide(first).send
    answers.answer(first, (200.0, 150.0, 260.0, 210.0))
    clock.now = 0.04
    assert not gate.decide(Frame(1, with_square(still, 200, 150, side=60), clock.now)).send
    clock.now = 0.08
    moved = gate.decide(Frame(2, with_square(still, 260, 150, side=60), clock.now))
    assert moved.send and moved.reason in {"changed", "box"}


def test_a_failed_call_is_retried_on_the_next_frame(still: Image) -> None:
    clock = FakeClock()
    gate = SendGate(SendPolicy("changes", refresh_s=60.0), Answers(), clock)
    assert gate.decide(Frame(0, still, 0.0)).send
    clock.now = 0.04
    assert not gate.decide(Frame(1, still, clock.now)).send
    gate.failed()
    clock.now = 0.08
    assert gate.decide(Frame(2, still, clock.now)).reason == "retry"


def test_credits_follow_the_published_formula() -> None:
    assert credits_for(None) == pytest.approx(0.1 / 500)
    assert credits_for(0.05) == pytest.approx(0.1 / 500)
    assert credits_for(0.3) == pytest.approx(0.3 / 500)
    assert processing_time({"x-processing-time": "0.25"}) == 0.25
    assert processing_time({"x-processing-time": "nan"}) is None
    assert processing_time({}) is None
    assert is_hosted("https://serverless.roboflow.com")
    assert is_hosted("https://detect.roboflow.com/")
    assert not is_hosted("http://127.0.0.1:9001")
    assert not is_hosted("https://roboflow.com.evil.example")


def test_policy_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="send mode"):
        SendPolicy("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refresh"):
        SendPolicy("changes", refresh_s=0)
    with pytest.raises(ValueError, match="budget"):
        SendPolicy("changes", max_per_minute=0)


def test_the_kiosk_file_and_flags_choose_what_is_sent(tmp_path: Path) -> None:
    from livecam.cli.kiosk import add_arguments, live_config, load_kiosk_config

    path = tmp_path / "kiosk.toml"
    path.write_text('[api]\nsend = "changes"\nrefresh = 12\nmax-requests-per-minute = 20\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = live_config(load_kiosk_config(parser.parse_args(["--config", str(path)])), ["http://127.0.0.1:9001"])
    assert config.send == SendPolicy("changes", 12.0, 20)
    flags = parser.parse_args(["--config", str(path), "--send", "every"])
    assert live_config(load_kiosk_config(flags), ["http://127.0.0.1:9001"]).send.mode == "every"


def test_the_default_is_changes_only_for_roboflows_hosted_api() -> None:
    assert default_send_mode(["https://serverless.roboflow.com"]) == "changes"
    assert default_send_mode(["http://127.0.0.1:9001"]) == "every"
    assert send_policy(None, 5.0, None, ["https://detect.roboflow.com"]).mode == "changes"
    assert send_policy("every", 5.0, None, ["https://detect.roboflow.com"]).mode == "every"
