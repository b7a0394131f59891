import math

import pytest

from livecam.errors import ResponseError
from livecam.predictions import MAX_PREDICTIONS, Predictions, center_to_corners


def box(**over: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "x": 100.0,
        "y": 50.0,
        "width": 40,
        "height": 20,
        "confidence": 0.8,
        "class": "car",
        "class_id": 2,
    }
    entry.update(over)
    return entry


def test_center_to_corners_is_centre_based() -> None:
    assert center_to_corners(100, 50, 40, 20) == (80, 40, 120, 60)


def test_object_detection_response() -> None:
    data = {"inference_id": "u", "time": 0.03, "image": {"width": 640, "height": 480}, "predictions": [box()]}
    preds = Predictions.from_roboflow(data)
    assert preds.image_size == (640, 480)
    (p,) = preds.items
    assert (p.x1, p.y1, p.x2, p.y2) == (80, 40, 120, 60)
    assert (p.class_name, p.class_id, p.confidence) == ("car", 2, 0.8)
    assert not preds.issues


def test_old_hosted_answer_without_optional_fields() -> None:
    preds = Predictions.from_roboflow(
        {"predictions": [{"x": 10, "y": 10, "width": 4, "height": 4, "confidence": 0.5, "class": "dog"}]}
    )
    assert preds.items[0].class_id is None
    assert preds.image_size is None


def test_segmentation_points_and_keypoints() -> None:
    data = {
        "image": {"width": 200, "height": 200},
        "predictions": [
            box(
                points=[{"x": 80, "y": 40}, {"x": 120, "y": 40}, {"x": 100, "y": 60}],
                keypoints=[
                    {"x": 90, "y": 45, "confidence": 0.9, "class_id": 0, "class": "nose"},
                    {"x": 95, "y": 45, "confidence": 0.8, "class_name": "eye"},
                ],
            )
        ],
    }
    (p,) = Predictions.from_roboflow(data).items
    assert p.points == ((80, 40), (120, 40), (100, 60))
    assert [k.name for k in p.keypoints] == ["nose", "eye"]


def test_classification_becomes_caption() -> None:
    data = {
        "predictions": [
            {"class": "cat", "class_id": 0, "confidence": 0.93},
            {"class": "dog", "class_id": 1, "confidence": 0.07},
        ],
        "top": "cat",
        "confidence": 0.93,
    }
    preds = Predictions.from_roboflow(data)
    assert preds.caption == "cat 0.93" and not preds.items


def test_multilabel_classification_caption() -> None:
    data = {
        "predictions": {"cat": {"confidence": 0.9, "class_id": 0}, "dog": {"confidence": 0.7, "class_id": 1}},
        "predicted_classes": ["cat", "dog"],
    }
    assert Predictions.from_roboflow(data).caption == "cat, dog"


@pytest.mark.parametrize(
    "bad",
    [
        box(x=math.nan),
        box(y=math.inf),
        box(width=-5),
        box(height=0),
        box(x="12"),
        box(width=True),
        box(x=1e30),
        "not an object",
        None,
    ],
)
def test_hostile_boxes_are_dropped_not_raised(bad: object) -> None:
    preds = Predictions.from_roboflow({"image": {"width": 640, "height": 480}, "predictions": [bad, box()]})
    assert len(preds) == 1
    assert preds.issues


def test_boxes_are_clipped_to_the_image() -> None:
    preds = Predictions.from_roboflow(
        {"image": {"width": 100, "height": 100}, "predictions": [box(x=0, y=0, width=50, height=50), box(x=500, y=500)]}
    )
    (p,) = preds.items
    assert (p.x1, p.y1, p.x2, p.y2) == (0, 0, 25, 25)
    assert preds.issues == {"box outside the image"}


def test_confidence_clamped_and_label_bounded() -> None:
    (p,) = Predictions.from_roboflow({"predictions": [box(confidence=7, **{"class": "x" * 500})]}).items
    assert p.confidence == 1.0 and len(p.class_name) == 64


def test_thousands_of_predictions_are_capped_keeping_the_best() -> None:
    many = [box(confidence=i / 20000) for i in range(10000)]
    preds = Predictions.from_roboflow({"predictions": many})
    assert len(preds) == MAX_PREDICTIONS
    assert min(p.confidence for p in preds.items) >= (10000 - MAX_PREDICTIONS) / 20000


@pytest.mark.parametrize("body", [[], "x", 3, {"message": "error"}, {"predictions": "nope"}])
def test_not_a_prediction_answer_raises(body: object) -> None:
    with pytest.raises(ResponseError):
        Predictions.from_roboflow(body)


def test_scaled_maps_back_to_frame_pixels() -> None:
    preds = Predictions.from_roboflow({"image": {"width": 320, "height": 180}, "predictions": [box()]})
    big = preds.scaled(4, 4)
    assert big.image_size == (1280, 720)
    assert (big.items[0].x1, big.items[0].y2) == (320, 240)


def test_filtered_by_class_and_confidence() -> None:
    preds = Predictions.from_roboflow({"predictions": [box(), box(**{"class": "dog"}), box(confidence=0.1)]})
    assert [p.class_name for p in preds.filtered({"car"}, 0.5).items] == ["car"]


def test_to_roboflow_round_trips() -> None:
    data = {
        "image": {"width": 640, "height": 480},
        "predictions": [box(points=[{"x": 80, "y": 40}, {"x": 120, "y": 60}, {"x": 90, "y": 55}])],
    }
    preds = Predictions.from_roboflow(data)
    again = Predictions.from_roboflow(preds.to_roboflow())
    assert again == preds
    out = preds.to_roboflow()["predictions"][0]
    assert (out["x"], out["y"], out["width"], out["height"], out["class_id"]) == (100, 50, 40, 20, 2)
