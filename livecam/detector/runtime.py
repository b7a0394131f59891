"""Run an ONNX graph: OpenCV's DNN module by default, onnxruntime when it is installed.

onnxruntime is optional; on a 2-core machine it ran the bundled NanoDet faster than
``cv2.dnn`` (see the README), so it is preferred whenever it can be imported.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from livecam.errors import ConfigError

Array = npt.NDArray[np.float32]
Backend = Literal["auto", "opencv", "onnxruntime"]


class Runner(Protocol):
    """One loaded graph; not thread-safe."""

    name: str

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph outputs, in the order ``run`` returns them."""
        ...

    def run(self, blob: Array) -> list[Array]:
        """Every output for one input blob."""
        ...


class OpenCVRunner:
    """A graph run by ``cv2.dnn``."""

    name = "opencv"

    def __init__(self, model: bytes) -> None:
        try:
            self._net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
        except cv2.error as exc:
            raise ConfigError(f"OpenCV cannot load this ONNX model: {exc}".strip()) from exc
        self._outputs = tuple(self._net.getUnconnectedOutLayersNames())

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._outputs

    def run(self, blob: Array) -> list[Array]:
        self._net.setInput(blob)
        return [np.asarray(o, np.float32) for o in self._net.forward(list(self._outputs))]


class OnnxRuntimeRunner:
    """A graph run by onnxruntime on the CPU."""

    name = "onnxruntime"

    def __init__(self, model: bytes, ort: Any, threads: int = 0) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Spinning intra-op threads would steal the cores the HTTP threads need between runs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise ConfigError(f"onnxruntime cannot load this ONNX model: {exc}") from exc
        self._input = self._session.get_inputs()[0].name
        self._outputs = tuple(o.name for o in self._session.get_outputs())

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._outputs

    def run(self, blob: Array) -> list[Array]:
        outputs: Sequence[Any] = self._session.run(list(self._outputs), {self._input: blob})
        return [np.asarray(o, np.float32) for o in outputs]


def open_runner(model: bytes, backend: Backend = "auto") -> Runner:
    """The fastest available runner for ``model``.

    Args:
        model: the ONNX file's bytes.
        backend: ``auto`` (onnxruntime when importable, else OpenCV), ``opencv`` or ``onnxruntime``.

    Raises:
        ConfigError: the model cannot be loaded, or onnxruntime was asked for but is missing.
    """
    if backend != "opencv":
        try:
            ort = importlib.import_module("onnxruntime")
        except ImportError as exc:
            if backend == "onnxruntime":
                raise ConfigError(
                    "onnxruntime is not installed; pip install onnxruntime or use the opencv backend"
                ) from exc
        else:
            return OnnxRuntimeRunner(model, ort)
    return OpenCVRunner(model)
