#!/usr/bin/env python3
"""Make the bundled model's precision variants once: fp16 and int8, written to livecam/models/.

    .venv/bin/python scripts/quantize_model.py       # both variants into livecam/models/, then check them
    .venv/bin/python scripts/quantize_model.py --mode dynamic --only int8 --out /tmp/q   # compare dynamic

After writing, each file is checked against the fp32 model: ms per frame (onnxruntime, whole
detect()) and agreement on the held-out frames (as ``scripts/bench.py model`` measures it).

The shipped ``nanodet-416.onnx`` stores fp16 weights that a Cast turns into fp32 at load time
(so it computes in fp32). Each variant starts from that graph with the Casts folded into fp32
weights, NanoDet's ``Pad(-inf)`` + ``MaxPool`` folded into one padded MaxPool, and the batch
dimension made symbolic (``N``, so several images can run as one batch):

- ``nanodet-416-int8.onnx``: static QDQ quantisation (uint8 activations, int8 per-channel
  weights, min/max calibration) on frames of sample_videos/ (:data:`CALIBRATION`; the frames
  after them are held out for the agreement figures of ``scripts/bench.py model``); the three
  head convolutions stay fp32. ``--mode dynamic`` makes the dynamically quantised file instead,
  for comparison: onnxruntime ran it about 6x slower than fp32 here (ConvInteger has no fast
  kernel), so it is not shipped.
- ``nanodet-416-fp16.onnx``: computes in fp16 (inputs and outputs stay fp32).

Needs the ``onnx`` package (``pip install -e '.[test]'``); livecam itself does not.
"""

from __future__ import annotations

# isort: off
import checkout_venv  # noqa: F401  (first: it may start this script again under .venv/bin/python)

# isort: on
import argparse
import hashlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from bench_support.calibration import CALIBRATION

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "livecam" / "models"
SAMPLES = REPO / "sample_videos"
SOURCE = MODELS / "nanodet-416.onnx"


def fp32_graph(source: Path) -> Any:
    """The model with every fp16 initialiser that feeds a Cast turned into the fp32 tensor it gives."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    kept = []
    for node in graph.node:
        source_name = node.input[0] if node.op_type == "Cast" and node.input else ""
        if source_name in initializers and initializers[source_name].data_type == onnx.TensorProto.FLOAT16:
            weights = numpy_helper.to_array(initializers[source_name]).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(weights, node.output[0]))
            continue
        kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    fold_padded_pool(model)
    used = {name for node in graph.node for name in node.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for init in unused:
        graph.initializer.remove(init)
    return model


def fold_padded_pool(model: Any) -> None:
    """Turn ``Pad(-inf)`` + ``MaxPool`` into one MaxPool with ``pads`` (which pads with -inf itself).

    The -inf tensor between them has no finite quantisation range: calibrating it gives NaN
    scales and an int8 model that finds nothing.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    for pool in [n for n in graph.node if n.op_type == "MaxPool"]:
        pad = producers.get(pool.input[0])
        if pad is None or pad.op_type != "Pad" or len(pad.input) < 3:
            continue
        value, pads = initializers.get(pad.input[2]), initializers.get(pad.input[1])
        if value is None or pads is None or not np.isneginf(value).all() or pads[[0, 1, 4, 5]].any():
            continue
        if any(a.name == "pads" for a in pool.attribute):
            continue
        pool.input[0] = pad.input[0]
        pool.attribute.append(onnx.helper.make_attribute("pads", [int(p) for p in pads[[2, 3, 6, 7]]]))
        graph.node.remove(pad)


def batch_dynamic(model: Any) -> Any:
    """The same graph with a symbolic batch dimension ``N`` (reshape targets copy the batch size)."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    for value in [*graph.input, *graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    del graph.value_info[:]
    initializers = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in initializers:
            continue
        shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
        if shape[0] == 1:
            shape[0] = 0  # 0: copy the input's batch size
            initializers[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    onnx.checker.check_model(model)
    return model


def frames(name: str, start: int, stop: int, step: int) -> Iterator[np.ndarray]:
    """Frames ``range(start, stop, step)`` of a sample video (BGR)."""
    capture = cv2.VideoCapture(str(SAMPLES / name))
    try:
        for index in range(stop):
            ok, image = capture.read()
            if not ok:
                raise SystemExit(f"{name} ended at frame {index}; expected at least {stop}")
            if index >= start and (index - start) % step == 0:
                yield image
    finally:
        capture.release()


def calibration_blobs() -> list[np.ndarray]:
    """The calibration frames, preprocessed exactly as the detector does."""
    from livecam.detector.nanodet import preprocess

    return [
        preprocess(image, (416, 416))
        for name, (start, stop, step) in CALIBRATION.items()
        for image in frames(name, start, stop, step)
    ]


def quantize(fp32_path: Path, out: Path, mode: str) -> None:
    """int8 weights (per channel) and, for ``static``, uint8 activations calibrated on sample frames."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = fp32_path.with_name("prepared.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    if mode == "dynamic":
        quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=True)
        return

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self, blobs: list[np.ndarray]) -> None:
            self._items = iter(blobs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            blob = next(self._items, None)
            return None if blob is None else {"input_1:0": blob}

    import onnx

    graph = onnx.load(str(prepared)).graph
    split_inputs = {n.input[0] for n in graph.node if n.op_type == "Split"}
    # The three head convolutions (each split into class scores and box distributions) stay in
    # float: it cost no measurable time and raised agreement with fp32 (0.975 -> 0.988 held out).
    heads = [n.name for n in graph.node if n.op_type == "Conv" and n.output[0] in split_inputs]
    blobs = calibration_blobs()
    print(f"calibrating on {len(blobs)} frames", flush=True)
    quantize_static(
        str(prepared),
        str(out),
        Reader(blobs),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        nodes_to_exclude=heads,
    )


def to_fp16(model: Any) -> Any:
    """fp16 arithmetic inside, fp32 at the input and outputs."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, keep_io_types=True)
    return topologically_sorted(converted)


def topologically_sorted(model: Any) -> Any:
    """The graph's nodes in an order where each one comes after the nodes whose outputs it reads."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        runnable = [n for n in pending if all(name in ready for name in n.input)]
        if not runnable:
            raise SystemExit("the converted graph has a cycle or a dangling input")
        for node in runnable:
            ready.update(node.output)
            ordered.append(node)
        pending = [n for n in pending if n not in runnable]
    del graph.node[:]
    graph.node.extend(ordered)
    return model


def sha256(path: Path) -> str:
    """The file's SHA-256, for livecam/models/NOTICE."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    """Write the chosen variants to ``--out`` and print their sizes and hashes."""
    import onnx

    parser = argparse.ArgumentParser(description="Make the bundled model's int8 and fp16 variants.")
    parser.add_argument("--mode", choices=("static", "dynamic"), default="static", help="int8 quantisation")
    parser.add_argument("--only", choices=("int8", "fp16", "fp32"), help="make just this variant")
    parser.add_argument("--out", type=Path, default=MODELS, help="folder for the files (default livecam/models)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as scratch:
        fp32 = batch_dynamic(fp32_graph(SOURCE))
        fp32_path = Path(scratch) / "fp32.onnx"
        onnx.save(fp32, str(fp32_path))
        if args.only in (None, "int8"):
            out = args.out / "nanodet-416-int8.onnx"
            quantize(fp32_path, out, args.mode)
            written.append(out)
        if args.only in (None, "fp16"):
            out = args.out / "nanodet-416-fp16.onnx"
            onnx.save(to_fp16(onnx.load(str(fp32_path))), str(out))
            written.append(out)
        if args.only == "fp32":
            out = args.out / "nanodet-416-fp32.onnx"
            onnx.save(fp32, str(out))
            written.append(out)
    for path in written:
        onnx.checker.check_model(str(path))
        print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, sha256 {sha256(path)}")
        print(f"  {check(path.read_bytes())}", flush=True)
    return 0


def check(model: bytes) -> str:
    """Speed and agreement of ``model`` against the fp32 model on the held-out frames."""
    from bench_support.model import agreement, detect_all, frame_sets, timed

    from livecam.detector import Detector, bundled_model, load_detector

    held_out = frame_sets("quick")["held out"]
    figures = []
    for name, data in (("fp32", bundled_model("fp32")), ("this file", model)):
        detector = load_detector(data, backend="onnxruntime")

        def detect(i: int, d: Detector = detector) -> object:
            return detect_all(d, [held_out[i]])

        speed = timed(detect, len(held_out), 3.0)
        figures.append((name, speed["p50_ms"], detect_all(detector, held_out)))
    share, count = agreement(figures[0][2], figures[1][2])
    return (
        f"detect() p50 {figures[1][1]:.1f} ms vs fp32 {figures[0][1]:.1f} ms; finds {share:.3f} of fp32's "
        f"{count} detections on {len(held_out)} held-out frames"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
