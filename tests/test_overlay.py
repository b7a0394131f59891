"""Pixel tests of livecam.overlay on literal predictions."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecam.frames import Image
from livecam.overlay import (
    AMBER,
    BLACK,
    PALETTE,
    WHITE,
    OverlayStyle,
    PredictionPainter,
    ascii_text,
    class_color,
    draw_hud,
    draw_predictions,
    draw_status,
    text_color_for,
)
from livecam.predictions import Keypoint, Prediction, Predictions

GREEN = (0, 255, 0)
NO_LABELS = OverlayStyle(labels=False, thickness=2, colors={"box": GREEN})


def blank(width: int = 320, height: int = 240, value: int = 0) -> Image:
    return np.full((height, width, 3), value, dtype=np.uint8)


def one(pred: Prediction, caption: str | None = None) -> Predictions:
    return Predictions(items=(pred,), caption=caption)


def test_class_color_is_stable_across_processes() -> None:
    code = "from livecam.overlay import class_color; print(class_color('person'), class_color('car'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == f"{class_color('person')} {class_color('car')}"
    # A literal value pins the mapping, so it cannot silently change between releases.
    assert class_color("person") == (130, 0, 217)
    assert class_color("person") in PALETTE


def test_class_colors_spread_over_the_palette() -> None:
    names = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "dog"]
    assert len({class_color(n) for n in names}) >= 6


def test_text_color_is_readable_on_its_background() -> None:
    assert text_color_for(WHITE) == BLACK
    assert text_color_for(AMBER) == BLACK
    assert text_color_for((0, 255, 255)) == BLACK  # yellow
    assert text_color_for(BLACK) == WHITE
    assert text_color_for((255, 0, 0)) == WHITE  # blue
    assert text_color_for((0, 0, 200)) == WHITE  # dark red


def test_box_edges_have_the_class_colour() -> None:
    image = blank()
    draw_predictions(image, one(Prediction(50.4, 60.6, 150.0, 160.0, 0.9, "box")), NO_LABELS)
    assert tuple(image[100, 50]) == GREEN  # left edge, x rounded from 50.4
    assert tuple(image[61, 100]) == GREEN  # top edge, y rounded from 60.6
    assert tuple(image[100, 150]) == GREEN  # right edge
    assert tuple(image[160, 100]) == GREEN  # bottom edge
    assert tuple(image[100, 100]) == (0, 0, 0)  # inside stays untouched
    assert tuple(image[10, 10]) == (0, 0, 0)


def test_draws_in_place_and_returns_the_same_image() -> None:
    image = blank()
    assert draw_predictions(image, one(Prediction(10, 10, 20, 20, 0.5, "box"))) is image
    assert draw_hud(image, ["x"]) is image
    assert draw_status(image, ["x"]) is image


def test_label_sits_above_the_box() -> None:
    image = blank()
    draw_predictions(
        image, one(Prediction(100, 100, 200, 200, 0.87, "box")), OverlayStyle(colors={"box": GREEN}, thickness=1)
    )
    above = image[80:99, 100:140]
    assert (above == GREEN).all(axis=2).mean() > 0.4  # the filled label background
    assert (above == BLACK).all(axis=2).any()  # with dark text on light green


def test_label_moves_inside_at_the_top_edge() -> None:
    image = blank()
    draw_predictions(
        image, one(Prediction(100, 0, 200, 100, 0.87, "box")), OverlayStyle(colors={"box": GREEN}, thickness=1)
    )
    inside = image[2:15, 102:140]
    assert (inside == GREEN).all(axis=2).mean() > 0.4


def test_label_is_kept_inside_the_image_at_the_right_edge() -> None:
    image = blank()
    draw_predictions(
        image,
        one(Prediction(300, 100, 320, 150, 0.87, "a long class name")),
        OverlayStyle(colors={"a long class name": GREEN}, thickness=1),
    )
    label_rows = image[80:99]
    green_columns = np.flatnonzero((label_rows == GREEN).all(axis=2).any(axis=0))
    assert green_columns.min() < 250  # shifted left so that the whole text is visible
    assert green_columns.max() == 319


def test_no_labels_style_draws_only_the_box() -> None:
    image = blank()
    draw_predictions(image, one(Prediction(100, 100, 200, 200, 0.87, "box")), NO_LABELS)
    assert not image[80:96].any()


def test_box_fully_outside_draws_nothing() -> None:
    image = blank()
    for box in [(-200, -200, -100, -100), (400, 10, 500, 50), (10, 300, 50, 400)]:
        draw_predictions(image, one(Prediction(*box, 0.9, "box")))
    assert not image.any()


def test_partly_outside_box_is_clipped_without_edges_on_the_border() -> None:
    image = blank()
    draw_predictions(image, one(Prediction(-50, -50, 100, 100, 0.9, "box")), NO_LABELS)
    assert tuple(image[50, 100]) == GREEN  # right edge visible
    assert tuple(image[100, 50]) == GREEN  # bottom edge visible
    assert not image[0, 0:90].any()  # the off-image top edge is not smeared on row 0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(*[st.floats(allow_nan=True, allow_infinity=True, width=32)] * 4), max_size=5),
    st.integers(1, 64),
    st.integers(1, 64),
)
def test_hostile_coordinates_never_raise(
    boxes: list[tuple[float, float, float, float]], width: int, height: int
) -> None:
    items = tuple(
        Prediction(
            *box,
            0.5,
            "hostile",
            points=(box[:2], box[2:], (box[0], box[3])),
            keypoints=(Keypoint(box[0], box[1], 1.0, "k"),),
        )
        for box in boxes
    )
    image = blank(width, height)
    draw_predictions(image, Predictions(items=items, caption="cap"))
    draw_hud(image, ["hud line"])
    draw_status(image, ["status line", "second"])


def test_zero_size_box_is_drawn_as_a_dot_not_an_error() -> None:
    image = blank()
    draw_predictions(image, one(Prediction(100, 100, 100, 100, 0.9, "box")), NO_LABELS)
    assert tuple(image[100, 100]) == GREEN


def test_polygon_is_outlined_and_lightly_filled() -> None:
    image = blank(value=100)
    square = ((50.0, 50.0), (150.0, 50.0), (150.0, 150.0), (50.0, 150.0))
    pred = Prediction(40, 40, 160, 160, 0.9, "box", points=square)
    draw_predictions(image, one(pred), OverlayStyle(labels=False, thickness=1, colors={"box": GREEN}))
    assert image[100, 49:52, 1].max() > 230 and image[100, 49:52, 0].min() < 20  # anti-aliased outline
    inside = image[100, 100]
    assert inside[1] > 100 and inside[0] < 100  # tinted towards green, not painted over
    assert tuple(image[100, 200]) == (100, 100, 100)  # outside the polygon's bounds: untouched
    assert tuple(image[45, 100]) == (100, 100, 100)  # between box and polygon: untouched


def test_keypoints_are_dots_and_low_confidence_ones_are_skipped() -> None:
    image = blank()
    pred = Prediction(
        10, 10, 300, 230, 0.9, "box", keypoints=(Keypoint(100, 100, 0.9, "nose"), Keypoint(200, 100, 0.1, "ear"))
    )
    draw_predictions(image, one(pred), NO_LABELS)
    assert tuple(image[100, 100]) == GREEN
    assert not image[95:106, 195:206].any()


def test_caption_is_written_at_the_top_left() -> None:
    image = blank(value=255)
    draw_predictions(image, Predictions(caption="cat 0.93"))
    assert (image[0:20, 0:60] < 200).any()
    assert (image[100:, :] == 255).all()


def test_hud_draws_only_in_its_corner() -> None:
    image = blank(640, 480, value=255)
    draw_hud(image, ["source 30.0 fps | infer 4.8/s", "latency 180 ms"])
    changed = np.argwhere((image != 255).any(axis=2))
    assert len(changed) > 0
    assert changed[:, 0].max() < 80  # a compact panel
    assert changed[:, 1].min() > 320  # in the top-right corner
    left = blank(640, 480, value=255)
    draw_hud(left, ["x"], anchor="top-left")
    assert np.argwhere((left != 255).any(axis=2))[:, 1].max() < 100


def test_status_banner_covers_only_the_bottom() -> None:
    image = blank(640, 480, value=255)
    draw_status(image, ["Detection service unreachable \u2014 retrying in 2 s"])
    changed = np.argwhere((image != 255).any(axis=2))
    assert changed[:, 0].min() > 480 * 2 // 3
    assert changed[:, 1].min() == 0 and changed[:, 1].max() == 639  # across the whole width
    banner = image[470, 600]
    assert banner[2] > 200 and banner[0] < 80  # amber (BGR)


def test_status_with_many_lines_stays_within_a_third() -> None:
    image = blank(640, 480, value=255)
    draw_status(image, [f"problem {i} " * 20 for i in range(20)], severity="error")
    changed = np.argwhere((image != 255).any(axis=2))
    assert changed[:, 0].min() >= 480 - 480 // 3
    assert image[475, 600][2] > image[475, 600][1]  # red


def test_empty_hud_and_status_draw_nothing() -> None:
    image = blank()
    draw_hud(image, [])
    draw_status(image, [])
    assert not image.any()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Camera disconnected \u2014 retrying", "Camera disconnected - retrying"),
        ("caf\u00e9 \u201cquoted\u201d \u2026", 'cafe "quoted" ...'),
        ("\u732b 0.93", "? 0.93"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_ascii_text_replaces_what_hershey_cannot_draw(text: str, expected: str) -> None:
    assert ascii_text(text) == expected


def test_draw_many_boxes_at_720p() -> None:
    image = blank(1280, 720)
    items = tuple(
        Prediction(i * 25.0, i * 13.0, i * 25.0 + 120, i * 13.0 + 90, 0.5, f"class{i % 7}") for i in range(50)
    )
    draw_predictions(image, Predictions(items=items))
    assert tuple(image[700, 1225]) == class_color("class0")  # left edge of the last, clipped box


def test_painter_draws_what_draw_predictions_draws() -> None:
    square = ((50.0, 50.0), (150.0, 50.0), (150.0, 150.0), (50.0, 150.0))
    answer = Predictions(
        items=(
            Prediction(40, 40, 160, 160, 0.9, "box", points=square),
            Prediction(200, 20, 300, 90, 0.6, "other", keypoints=(Keypoint(250, 50, 1.0, "k"),)),
        ),
        caption="cap",
    )
    painter = PredictionPainter()
    background = np.random.default_rng(7).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    expected = draw_predictions(background.copy(), answer)
    for _ in range(2):  # laid out by the first call, reused by the second
        assert np.array_equal(painter.draw(background.copy(), answer), expected)


def test_painter_lays_out_a_new_answer_and_a_new_size_afresh() -> None:
    painter = PredictionPainter(NO_LABELS)
    painter.draw(blank(), one(Prediction(50, 60, 150, 160, 0.9, "box")))
    moved = painter.draw(blank(), one(Prediction(10, 20, 60, 80, 0.9, "box")))
    assert tuple(moved[50, 10]) == GREEN and tuple(moved[100, 50]) == (0, 0, 0)
    answer = one(Prediction(250, 200, 400, 300, 0.9, "box"))
    painter.draw(blank(), answer)
    wider = painter.draw(blank(640, 480), answer)
    assert tuple(wider[250, 400]) == GREEN  # the right edge, outside the first image's width
