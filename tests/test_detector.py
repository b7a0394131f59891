"""The ONNX detector: real detections from the bundled model, decoding, layouts, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from samples import sample_frame

from livecam.detector import Detector, coco_names, detector_factory, load_detector
from livecam.detector.bundled import bundled_model
from livecam.detector.nanodet import decode_head
from livecam.detector.onnx_graph import graph_inputs
from livecam.errors import ConfigError
from livecam.frames import Image


def frame(name: str, index: int) -> Image:
    return sample_frame(name, index)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return detector_factory()()


def test_finds_people_in_the_plaza(detector: Detector) -> None:
    image = frame("vtest.avi", 100)
    answer = detector.detect(image, 0.4, 0.5, 100)
    assert answer.image_size == (768, 576)
    found = answer.items
    people = [d for d in found if d.class_name == "person"]
    assert len(people) >= 2
    height, width = image.shape[:2]
    for d in found:
        assert 0 <= d.x1 < d.x2 <= width and 0 <= d.y1 < d.y2 <= height
        assert d.confidence >= 0.4
    assert [d.confidence for d in found] == sorted((d.confidence for d in found), reverse=True)


def test_finds_vehicles_or_cyclists_on_the_street(detector: Detector) -> None:
    names = {d.class_name for i in (30, 120, 200) for d in detector.detect(frame("bikes.mp4", i), 0.35, 0.5, 100).items}
    assert names & {"car", "bicycle", "truck", "bus", "motorcycle"}


def test_a_blank_frame_gives_few_or_none(detector: Detector) -> None:
    assert len(detector.detect(np.full((480, 640, 3), 127, np.uint8), 0.4, 0.5, 100)) <= 1


def test_limits_and_thresholds(detector: Detector) -> None:
    image = frame("vtest.avi", 100)
    assert len(detector.detect(image, 0.1, 0.5, 2)) == 2
    assert detector.detect(image, 0.1, 0.5, 0).items == ()
    assert all(d.confidence >= 0.6 for d in detector.detect(image, 0.6, 0.5, 100).items)


def test_bundled_model_metadata(detector: Detector) -> None:
    assert detector.input_size == (416, 416)
    assert detector.class_names == coco_names()
    assert len(coco_names()) == 80 and coco_names()[9] == "traffic light"
    assert graph_inputs(bundled_model())[0].dims == (1, 3, 416, 416)


def test_backends_agree() -> None:
    pytest.importorskip("onnxruntime")
    image = frame("vtest.avi", 100)
    a = load_detector(bundled_model(), backend="opencv").detect(image, 0.4, 0.5, 100).items
    b = load_detector(bundled_model(), backend="onnxruntime").detect(image, 0.4, 0.5, 100).items
    assert [d.class_name for d in a] == [d.class_name for d in b]
    assert np.allclose([[d.x1, d.y1, d.x2, d.y2] for d in a], [[d.x1, d.y1, d.x2, d.y2] for d in b], atol=0.5)


def test_decode_head_expectation_and_cell_centre() -> None:
    columns, stride, bins = 4, 8, 11
    scores = np.zeros((columns * columns, 3), np.float32)
    scores[6, 2] = 0.9  # row 1, column 2: centre (20, 12)
    logits = np.full((columns * columns, 4, bins), -50.0, np.float32)
    logits[6, :, 1] = 50.0  # every side one bin away: 1 * stride
    logits[6, 2] = [-50.0] * 9 + [50.0, 50.0]  # right side: half at bin 9, half at bin 10 -> 9.5 bins
    boxes, confidences, ids = decode_head(scores, logits.reshape(-1, 4 * bins), stride, columns, 0.5)
    assert ids.tolist() == [2] and confidences.tolist() == pytest.approx([0.9])
    assert boxes[0].tolist() == pytest.approx([12, 4, 20 + 9.5 * 8, 20])


def tiny_yolov8(tmp_path: Path, outputs: np.ndarray, size: int = 64) -> Path:
    """A graph with the YOLOv8 export layout whose output is ``outputs`` whatever the input."""
    onnx = pytest.importorskip("onnx", reason="building a test graph needs the onnx package (test-only)")
    from onnx import TensorProto, helper, numpy_helper

    channels, anchors = outputs.shape[1:]
    nodes = [
        helper.make_node("ReduceSum", ["images"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
        helper.make_node("Add", ["constant", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, channels, anchors])],
        [
            numpy_helper.from_array(outputs.astype(np.float32), "constant"),
            numpy_helper.from_array(np.zeros((), np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def test_yolov8_layout_with_class_names(tmp_path: Path) -> None:
    # Two anchors in 64x64 input pixels: (cx, cy, w, h, score cat, score dog).
    rows = np.array([[32, 16, 20, 10, 0.9, 0.1], [10, 50, 8, 8, 0.2, 0.7]], np.float32)
    model = tiny_yolov8(tmp_path, rows.T[None])
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    found = (
        detector_factory(model, names, backend="opencv")().detect(np.zeros((64, 128, 3), np.uint8), 0.5, 0.5, 10).items
    )
    assert [(d.class_name, d.class_id) for d in found] == [("cat", 0), ("dog", 1)]
    assert [found[0].x1, found[0].y1, found[0].x2, found[0].y2] == pytest.approx([44, 11, 84, 21])
    assert [found[1].x1, found[1].y1, found[1].x2, found[1].y2] == pytest.approx([12, 46, 28, 54])


def test_yolov8_needs_names_unless_coco_sized(tmp_path: Path) -> None:
    model = tiny_yolov8(tmp_path, np.zeros((1, 6, 3), np.float32))
    with pytest.raises(ConfigError, match="--classes"):
        detector_factory(model, backend="opencv")
    wrong = tmp_path / "three.txt"
    wrong.write_text("a\nb\nc\n")
    with pytest.raises(ConfigError, match="3 names but the model has 2"):
        detector_factory(model, wrong, backend="opencv")


def test_unknown_layout_is_a_config_error(tmp_path: Path) -> None:
    model = tiny_yolov8(tmp_path, np.zeros((1, 3, 3), np.float32))
    with pytest.raises(ConfigError, match="unrecognised model layout"):
        detector_factory(model, backend="opencv")


def test_not_a_model_is_a_config_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 definitely not protobuf \xff" * 10)
    with pytest.raises(ConfigError):
        detector_factory(junk)
    with pytest.raises(ConfigError, match="cannot read the model"):
        detector_factory(tmp_path / "missing.onnx")
