"""Run an ONNX graph: onnxruntime (a dependency of livecam), or OpenCV's DNN module where it is missing.

onnxruntime ran the bundled NanoDet about twice as fast as ``cv2.dnn`` on 2 cores, and runs the
int8 variant at all well (BENCHMARKS.md, ``scripts/bench.py model``), so ``auto`` takes it
whenever it can be imported; a platform without an onnxruntime wheel still works, slower.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from livecam.errors import ConfigError

log = logging.getLogger(__name__)

Array = npt.NDArray[np.float32]
Backend = Literal["auto", "opencv", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = ("auto", "opencv", "onnxruntime")

DEFAULT_THREADS = 0
"""onnxruntime intra-op threads per model worker; 0 is onnxruntime's own choice (one per core).
Chosen by ``scripts/bench.py model`` (1 vs 2 threads) and ``server`` (two workers)."""

OnnxRuntimeLoader = Callable[[], Any]
"""Returns the ``onnxruntime`` module or raises ImportError; the seam tests use to simulate its absence."""


def import_onnxruntime() -> Any:
    """The installed ``onnxruntime`` module.

    Raises:
        ImportError: it is not installed or its native library does not load.
    """
    return importlib.import_module("onnxruntime")


class Runner(Protocol):
    """One loaded graph; not thread-safe."""

    name: str

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph outputs, in the order ``run`` returns them."""
        ...

    def run(self, blob: Array) -> list[Array]:
        """Every output for one input blob (a batch of one or more images)."""
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
    """A graph run by onnxruntime on the CPU.

    Args:
        model: the ONNX file's bytes.
        ort: the ``onnxruntime`` module.
        threads: intra-op threads (0: onnxruntime's default, one per core).
    """

    name = "onnxruntime"

    def __init__(self, model: bytes, ort: Any, threads: int = DEFAULT_THREADS) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # Full graph optimisation fuses the int8 model's QDQ pairs into integer kernels; the
        # basic level ran it 2-4x slower (BENCHMARKS.md).
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
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


_warned: set[str] = set()


def open_runner(
    model: bytes,
    backend: Backend = "auto",
    threads: int = DEFAULT_THREADS,
    load_onnxruntime: OnnxRuntimeLoader = import_onnxruntime,
) -> Runner:
    """A runner for ``model`` on the chosen backend.

    Args:
        model: the ONNX file's bytes.
        backend: ``auto`` (onnxruntime, or OpenCV where onnxruntime cannot be imported),
            ``opencv`` or ``onnxruntime``.
        threads: onnxruntime intra-op threads (0: one per core); OpenCV uses its own pool.
        load_onnxruntime: imports onnxruntime.

    Raises:
        ConfigError: the model cannot be loaded, or onnxruntime was asked for but cannot be imported.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend != "opencv":
        try:
            ort = load_onnxruntime()
        except ImportError as exc:
            if backend == "onnxruntime":
                raise ConfigError(
                    f"onnxruntime cannot be imported ({exc}); pip install onnxruntime, or use --backend opencv"
                ) from exc
            reason = str(exc)
            if reason not in _warned:
                _warned.add(reason)
                log.warning("onnxruntime cannot be imported (%s); running the model on OpenCV's DNN (slower)", exc)
        else:
            return OnnxRuntimeRunner(model, ort, threads)
    return OpenCVRunner(model)
