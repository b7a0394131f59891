"""The one gate for strings from answers, and what relies on it: drawing, VOC, the log filter."""

from __future__ import annotations

import io
import json
import logging
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from livecam.collect.voc import voc_xml
from livecam.logsafe import SafeLogFilter
from livecam.overlay import PALETTE, class_color, draw_predictions
from livecam.parsing import AnswerParser
from livecam.parsing.child import answer
from livecam.predictions import MAX_KEYPOINTS, Prediction, Predictions
from livecam.sanitize import MAX_NAME, clean_text, for_log, hide_secrets

KEY = "rfKEY_0123456789abcdef"
HOSTILE = ["bad\ud800name", "ctl\x00\x1b[2J\x07", "\u2028line\u2029", "x" * 100_000, KEY, "x" * 50 + KEY]


def answer_with(*names: object, keypoint: object = "nose", class_id: object = 0) -> dict[str, object]:
    return {
        "image": {"width": 100, "height": 100},
        "predictions": [
            {
                "x": 50,
                "y": 50,
                "width": 10,
                "height": 10,
                "confidence": 0.9,
                "class": name,
                "class_id": class_id,
                "keypoints": [{"x": 1, "y": 1, "confidence": 1, "class": keypoint}],
            }
            for name in names
        ],
    }


def assert_clean(text: str) -> None:
    assert len(text) <= MAX_NAME
    assert not any(0xD800 <= ord(c) <= 0xDFFF or ord(c) < 0x20 or c in "\x7f\u2028\u2029" for c in text), ascii(text)
    text.encode("utf-8")


def test_clean_text_replaces_removes_caps_and_hides() -> None:
    assert clean_text("bad\ud800name\x1b[2J") == "bad\ufffdname[2J"
    assert clean_text("a" * 1_000_000) == "a" * (MAX_NAME - 1) + "\u2026"
    assert clean_text(f"key {KEY}!", secrets=[KEY]) == "key ***!"
    # A key cut in half by the cap does not show its first half either.
    assert hide_secrets(clean_text("x" * 50 + KEY), [KEY]) == "x" * 50 + "***\u2026"


def test_for_log_escapes_instead_of_removing() -> None:
    assert for_log("a\nb\x1b[2J\ud800") == "a\\x0ab\\x1b[2J\ufffd"
    assert for_log("ok\u202egnp.exe") == "ok\\u202egnp.exe"  # no right-to-left override on the terminal


def test_invisible_reordering_marks_are_removed_but_joiners_kept() -> None:
    assert clean_text("\u202eevil\u2066x\u2069\u200f\ufeff") == "evilx"
    assert clean_text("\U0001f468\u200d\U0001f469") == "\U0001f468\u200d\U0001f469"


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_every_name_from_an_answer_passes_the_gate(name: str) -> None:
    predictions = Predictions.from_roboflow(answer_with(name, keypoint=name)).hiding(KEY)
    (p,) = predictions.items
    for text in (p.class_name, p.keypoints[0].name):
        assert_clean(text)
        assert KEY[:8] not in text


def test_class_ids_as_text_are_read_or_cleaned() -> None:
    digits = Predictions.from_roboflow(answer_with(None, class_id="7")).items[0]
    assert digits.class_id == 7 and digits.class_name == "class 7"
    hostile = Predictions.from_roboflow(answer_with(None, class_id="7\ud800\x1b" + "9" * 500)).items[0]
    assert hostile.class_id is None
    assert_clean(hostile.class_name.removeprefix("class "))


def test_captions_pass_the_gate() -> None:
    single = {"predictions": [{"class": "cat\ud800\x1b", "confidence": 0.9}], "top": "cat\ud800\x1b" * 100}
    multi = {"predictions": {"a\x00" * 1000: {"confidence": 0.9}}, "predicted_classes": ["a\x00" * 1000, "\ud800"]}
    for data in (single, multi):
        caption = Predictions.from_roboflow(data).caption
        assert caption is not None
        caption.encode("utf-8")
        assert "\x00" not in caption and "\x1b" not in caption and len(caption) <= 300


def test_the_parse_worker_cleans_and_the_parent_hides_the_key() -> None:
    body = json.dumps(answer_with(*HOSTILE, keypoint="k" * 100_000)).encode()
    kind, parsed = answer(body, None)  # what the worker process sends back
    assert kind == "ok"
    with AnswerParser(inline_limit=1) as parser:
        for predictions in (parsed, parser.parse(body, None)):
            hidden = predictions.hiding(KEY)
            for p in hidden.items:
                assert_clean(p.class_name)
                assert KEY[:8] not in p.class_name
                assert all(len(k.name) <= MAX_NAME for k in p.keypoints)


def test_keypoints_are_capped_per_prediction() -> None:
    data = answer_with("pose")
    data["predictions"][0]["keypoints"] = [{"x": 1, "y": 1, "class": "k"}] * (MAX_KEYPOINTS * 10)  # type: ignore[index]
    predictions = Predictions.from_roboflow(data)
    assert len(predictions.items[0].keypoints) == MAX_KEYPOINTS
    assert "too many keypoints" in predictions.issues


def test_hiding_without_a_key_in_any_name_copies_nothing() -> None:
    predictions = Predictions.from_roboflow(answer_with("person", "car"))
    assert predictions.hiding(KEY) is predictions
    assert predictions.hiding(None) is predictions


def test_class_color_and_drawing_never_raise() -> None:
    for name in ["bad\ud800name", "\udfff", "", "\x00"]:
        assert class_color(name) in PALETTE
    image = np.zeros((60, 80, 3), np.uint8)
    raw = Prediction(5, 5, 40, 40, 0.9, "bad\ud800name\x00\x1b")  # built directly, not through the gate
    draw_predictions(image, Predictions(items=(raw,), caption="cap\ud800\x00"))
    assert image.any()


def test_voc_is_well_formed_xml_for_any_name() -> None:
    names = ["a\x00b", "\x1b[2J", "bad\ud800", "\ufffe\uffff", "<&>\"'", "\x0b\x0c", ""]
    predictions = [Prediction(1, 1, 9, 9, 0.5, name) for name in names]
    text = voc_xml("f\x00.jpg", (10, 10), predictions)
    root = ET.fromstring(text.encode("utf-8"))
    got = [obj.findtext("name") for obj in root.iter("object")]
    assert got == ["ab", "[2J", "bad", "object", "<&>\"'", "object", "object"]


def log_line(message: str, *args: object, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SafeLogFilter(KEY))
    logger = logging.getLogger("test.logsafe")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.warning(message, *args, exc_info=(type(exc), exc, exc.__traceback__) if exc else None)
    return stream.getvalue()


def test_a_server_message_cannot_forge_a_log_line_or_clear_the_terminal() -> None:
    forged = "boom\n12:00:00 ERROR livecam: injected\x1b[2J\x1b[H\r"
    text = log_line("server said %s for %s", forged, f"http://u:pw@h/x?api_key={KEY}&token=T")
    assert text.count("\n") == 1
    assert "\x1b" not in text and "\r" not in text
    assert "ERROR livecam: injected" in text  # still there to read, on the same line
    assert KEY not in text and "pw@" not in text and "token=T" not in text


def test_a_traceback_stays_readable_and_cannot_forge_a_line() -> None:
    try:
        raise ValueError(f"bad\nERROR livecam: injected {KEY}")
    except ValueError as exc:
        text = log_line("failed", exc=exc)
    lines = text.splitlines()
    assert lines[0] == "WARNING test.logsafe: failed"
    assert all(line.startswith("    ") for line in lines[1:]) and len(lines) > 2
    assert KEY not in text
