"""Load an ONNX detector and recognise its layout (NanoDet or YOLOv8) from the graph itself."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from livecam.detector.bundled import DEFAULT_PRECISION, Precision, bundled_model
from livecam.detector.classes import coco_names, read_names
from livecam.detector.nanodet import Head, NanoDetDetector
from livecam.detector.onnx_graph import graph_inputs
from livecam.detector.runtime import (
    DEFAULT_THREADS,
    Array,
    Backend,
    OnnxRuntimeLoader,
    Runner,
    import_onnxruntime,
    open_runner,
)
from livecam.detector.types import Detector
from livecam.errors import ConfigError

_DEFAULT_SIZE = 640
_MAX_BINS = 64


class DetectorFactory:
    """Builds a fresh detector for each worker thread; the first call returns the one built to check the model.

    Use :func:`detector_factory` to make one.
    """

    def __init__(self, first: Detector, build: _Build, description: str) -> None:
        self._first: Detector | None = first
        self._build = build
        self._lock = threading.Lock()
        self.description = description
        """What runs, e.g. ``bundled NanoDet int8 on onnxruntime``."""

    def __call__(self) -> Detector:
        with self._lock:
            first, self._first = self._first, None
        return first if first is not None else self._build()


class _Build:
    def __init__(
        self,
        model: bytes,
        names: Sequence[str] | None,
        backend: Backend,
        threads: int,
        load_onnxruntime: OnnxRuntimeLoader,
    ) -> None:
        self._args = (model, names, backend, threads, load_onnxruntime)
        self.engine: str = backend
        """The backend the last detector runs on."""

    def __call__(self) -> Detector:
        model, names, backend, threads, load_onnxruntime = self._args
        runner = open_runner(model, backend, threads, load_onnxruntime)
        self.engine = runner.name
        return detector_for(model, runner, names)


def detector_factory(
    model_path: Path | None = None,
    classes_path: Path | None = None,
    backend: Backend = "auto",
    precision: Precision | None = None,
    threads: int = DEFAULT_THREADS,
    load_onnxruntime: OnnxRuntimeLoader = import_onnxruntime,
) -> DetectorFactory:
    """A function that builds a fresh detector for one worker thread.

    The model is read, loaded and checked once, here, so configuration errors surface before
    serving; the detector built for that is the factory's first answer, so it is never loaded twice.

    Args:
        model_path: an ONNX file, or None for the bundled COCO NanoDet.
        classes_path: class names, one a line; needed for a user's model unless it has 80 classes
            (then the COCO names are used).
        backend: see :func:`~livecam.detector.runtime.open_runner`.
        precision: which variant of the bundled model (None: :data:`DEFAULT_PRECISION`); a user's
            model runs as exported, so a precision with ``model_path`` is refused.
        threads: onnxruntime intra-op threads per detector (0: one per core).
        load_onnxruntime: imports onnxruntime (a test seam).

    Raises:
        ConfigError: unreadable file, unknown layout, class names that do not fit, or a precision
            asked of a user's model.
    """
    if model_path is None:
        chosen = precision or DEFAULT_PRECISION
        model = bundled_model(chosen)
        what = f"bundled NanoDet {chosen}"
    else:
        if precision is not None:
            raise ConfigError(
                f"--precision {precision} chooses a variant of the bundled model; {model_path} runs as "
                "exported (quantise it with onnxruntime.quantization to make an int8 file)"
            )
        try:
            model = model_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the model {model_path}: {exc}; give a path to an .onnx file") from exc
        what = str(model_path)
    names = read_names(classes_path) if classes_path is not None else None
    build = _Build(model, names, backend, threads, load_onnxruntime)
    first = build()
    return DetectorFactory(first, build, f"{what} on {build.engine}")


def load_detector(
    model: bytes,
    names: Sequence[str] | None = None,
    backend: Backend = "auto",
    threads: int = DEFAULT_THREADS,
    load_onnxruntime: OnnxRuntimeLoader = import_onnxruntime,
) -> Detector:
    """A detector for the ONNX ``model`` bytes (see :func:`detector_factory`)."""
    return detector_for(model, open_runner(model, backend, threads, load_onnxruntime), names)


def detector_for(model: bytes, runner: Runner, names: Sequence[str] | None = None) -> Detector:
    """A detector running ``model`` (its bytes give the input size) on ``runner``; a test run tells the layout."""
    from livecam.detector.yolov8 import YoloV8Detector

    size = _input_size(model)
    outputs = runner.run(np.zeros((1, 3, size[1], size[0]), np.float32))
    shapes = [o.shape for o in outputs]
    if len(shapes) == 1 and len(shapes[0]) == 3 and shapes[0][0] == 1 and shapes[0][1] > 4:
        return YoloV8Detector(runner, size, _names(names, shapes[0][1] - 4))
    heads = _nanodet_heads(outputs, size, names)
    if heads is not None:
        return NanoDetDetector(runner, size, heads, _names(names, shapes[heads[0].scores][2]))
    raise ConfigError(
        f"unrecognised model layout (outputs {[list(s) for s in shapes]} for input {list(size)}); "
        "livecam serves NanoDet (score/distribution pairs per stride) and YOLOv8 exports "
        "(one [1, 4+classes, anchors] output)"
    )


def _input_size(model: bytes) -> tuple[int, int]:
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise ConfigError(f"the model has {len(inputs)} inputs; a detector with one image input is needed")
    dims = inputs[0].dims
    if len(dims) != 4 or dims[1] not in (3, None):
        raise ConfigError(f"the model input {inputs[0].name} has shape {list(dims)}; expected [1, 3, H, W]")
    return dims[3] or _DEFAULT_SIZE, dims[2] or _DEFAULT_SIZE


def _nanodet_heads(
    outputs: Sequence[Array], size: tuple[int, int], names: Sequence[str] | None
) -> tuple[Head, ...] | None:
    shapes = [o.shape for o in outputs]
    if not shapes or len(shapes) % 2 or any(len(s) != 3 or s[0] != 1 for s in shapes):
        return None
    by_cells: dict[int, list[int]] = {}
    for index, shape in enumerate(shapes):
        by_cells.setdefault(shape[1], []).append(index)
    heads = []
    for cells, pair in by_cells.items():
        columns = math.isqrt(cells)
        if len(pair) != 2 or columns * columns != cells or size[0] % columns or size[0] != size[1]:
            return None
        scores, boxes = _split_pair(pair, outputs, names)
        if scores is None or boxes is None:
            return None
        heads.append(Head(size[0] // columns, scores, boxes))
    heads.sort(key=lambda h: h.stride)
    return tuple(heads)


def _split_pair(
    pair: list[int], outputs: Sequence[Array], names: Sequence[str] | None
) -> tuple[int | None, int | None]:
    """Which of two same-stride outputs holds scores and which the box distributions.

    Distributions are ``4 x bins`` unbounded logits; scores are sigmoid outputs in 0..1 (or,
    when class names are given, exactly one column per name).
    """

    def is_boxes(i: int) -> bool:
        columns = int(outputs[i].shape[2])
        return columns % 4 == 0 and 2 <= columns // 4 <= _MAX_BINS

    def is_scores(i: int) -> bool:
        if names is not None:
            return int(outputs[i].shape[2]) == len(names)
        return bool(outputs[i].min() >= 0.0 and outputs[i].max() <= 1.0)

    a, b = pair
    for scores, boxes in ((a, b), (b, a)):
        if is_scores(scores) and is_boxes(boxes) and not (is_scores(boxes) and is_boxes(scores)):
            return scores, boxes
    return None, None


def _names(names: Sequence[str] | None, count: int) -> tuple[str, ...]:
    if names is None:
        if count == 80:
            return coco_names()
        raise ConfigError(f"the model has {count} classes; give their names with --classes names.txt")
    if len(names) != count:
        raise ConfigError(f"the class names file has {len(names)} names but the model has {count} classes")
    return tuple(names)
