"""The bundled model's precisions, the onnxruntime seam and its OpenCV fallback, and loading once."""

from __future__ import annotations

from typing import Any

import pytest
from samples import sample_frame

from livecam.detector import PRECISIONS, detector_factory
from livecam.detector.bundled import bundled_model
from livecam.detector.onnx_graph import graph_inputs
from livecam.detector.runtime import import_onnxruntime
from livecam.errors import ConfigError
from livecam.predictions import Prediction


class CountingLoader:
    """Imports onnxruntime and counts how often a model was opened with it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        return import_onnxruntime()


def no_onnxruntime() -> Any:
    raise ImportError("No module named 'onnxruntime'")


def iou(a: Prediction, b: Prediction) -> float:
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    inter = max(0.0, w) * max(0.0, h)
    return inter / (a.width * a.height + b.width * b.height - inter)


def test_every_precision_is_shipped_with_the_same_input() -> None:
    for precision in PRECISIONS:
        dims = graph_inputs(bundled_model(precision))[0].dims
        assert dims[1:] == (3, 416, 416)
    assert graph_inputs(bundled_model("int8"))[0].dims[0] is None  # batch dimension left symbolic
    assert len(bundled_model("int8")) < len(bundled_model("fp32")) * 0.6
    with pytest.raises(ConfigError, match="unknown precision"):
        bundled_model("int4")  # type: ignore[arg-type]


def test_int8_finds_the_people_fp32_finds_on_a_plaza_frame() -> None:
    image = sample_frame("vtest.avi", 100)
    fp32 = detector_factory(precision="fp32")().detect(image, 0.4, 0.5, 100).items
    int8_factory = detector_factory(precision="int8")
    assert int8_factory.description == "bundled NanoDet int8 on onnxruntime"
    int8 = int8_factory().detect(image, 0.4, 0.5, 100).items
    people = [p for p in int8 if p.class_name == "person"]
    assert len(people) >= 2
    reference = [p for p in fp32 if p.class_name == "person"]
    found = sum(any(iou(want, got) >= 0.5 for got in people) for want in reference)
    assert found >= 0.8 * len(reference)


def test_default_is_int8_and_fp16_runs() -> None:
    assert detector_factory().description == "bundled NanoDet int8 on onnxruntime"
    fp16 = detector_factory(precision="fp16")
    assert fp16.description == "bundled NanoDet fp16 on onnxruntime"
    assert any(p.class_name == "person" for p in fp16().detect(sample_frame("vtest.avi", 100), 0.4, 0.5, 100).items)


def test_missing_onnxruntime_falls_back_to_opencv() -> None:
    factory = detector_factory(precision="int8", load_onnxruntime=no_onnxruntime)
    assert factory.description == "bundled NanoDet int8 on opencv"
    assert any(p.class_name == "person" for p in factory().detect(sample_frame("vtest.avi", 100), 0.4, 0.5, 100).items)


def test_asking_for_onnxruntime_when_it_is_missing_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="onnxruntime cannot be imported.*--backend opencv"):
        detector_factory(backend="onnxruntime", load_onnxruntime=no_onnxruntime)


def test_the_model_is_loaded_once_at_start_up() -> None:
    loader = CountingLoader()
    make = detector_factory(precision="int8", load_onnxruntime=loader)
    assert loader.calls == 1
    first = make()
    assert loader.calls == 1  # the detector built to check the model is the first one handed out
    second = make()
    assert loader.calls == 2 and second is not first


def test_precision_is_refused_for_a_users_model(tmp_path: Any) -> None:
    model = tmp_path / "mine.onnx"
    model.write_bytes(bundled_model("fp32"))
    with pytest.raises(ConfigError, match="--precision int8 chooses a variant of the bundled model"):
        detector_factory(model, precision="int8")
    assert detector_factory(model).description == f"{model} on onnxruntime"
