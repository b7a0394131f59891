"""The bundled COCO NanoDet in its three precisions, and which one runs by default."""

from __future__ import annotations

from importlib import resources
from typing import Literal

from livecam.errors import ConfigError

Precision = Literal["int8", "fp16", "fp32"]
PRECISIONS: tuple[Precision, ...] = ("int8", "fp16", "fp32")

DEFAULT_PRECISION: Precision = "int8"
"""On onnxruntime int8 ran 2-2.5x the frames/s of fp32 and found 97-99 % of fp32's detections
(same class, IoU >= 0.5) on the sample footage and on frames held out of its calibration
(``scripts/bench.py model``; BENCHMARKS.md)."""

_FILES: dict[Precision, str] = {
    "fp32": "nanodet-416.onnx",  # fp16-stored weights cast to fp32 at load: computes in fp32
    "fp16": "nanodet-416-fp16.onnx",
    "int8": "nanodet-416-int8.onnx",
}


def bundled_model(precision: Precision = "fp32") -> bytes:
    """The bundled NanoDet COCO model's ONNX bytes in ``precision`` (the variants are made by
    ``scripts/quantize_model.py``).

    Raises:
        ConfigError: an unknown precision.
    """
    if precision not in _FILES:
        raise ConfigError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return resources.files("livecam.models").joinpath(_FILES[precision]).read_bytes()
