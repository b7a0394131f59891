"""Read the input tensors of an ONNX model without the ``onnx`` package.

Only the few protobuf fields needed to learn the input name and shape are decoded; everything
else (nodes, weights) is skipped by length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from livecam.errors import ConfigError

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MODEL_GRAPH, _GRAPH_INITIALIZER, _GRAPH_INPUT = 7, 5, 11
_VALUE_NAME, _VALUE_TYPE, _TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM, _DIM_VALUE = 1, 2, 1, 2, 1, 1
_INITIALIZER_NAME = 8


@dataclass(frozen=True)
class GraphInput:
    """A graph input: its name and dims (``None`` where the graph leaves a dim symbolic)."""

    name: str
    dims: tuple[int | None, ...]


def graph_inputs(model: bytes) -> list[GraphInput]:
    """The real inputs of an ONNX model (weights listed as inputs by old exporters excluded).

    Raises:
        ConfigError: the bytes are not an ONNX model.
    """
    try:
        graph = next((v for f, v in _fields(model) if f == _MODEL_GRAPH and isinstance(v, bytes)), None)
        if graph is None:
            raise ConfigError("not an ONNX model (no graph); export the model to .onnx")
        weights: set[str] = set()
        inputs: list[GraphInput] = []
        for field, value in _fields(graph):
            if field == _GRAPH_INITIALIZER and isinstance(value, bytes):
                weights.update(_text(v) for f, v in _fields(value) if f == _INITIALIZER_NAME)
            elif field == _GRAPH_INPUT and isinstance(value, bytes):
                inputs.append(_value_info(value))
    except (IndexError, ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the ONNX graph ({exc}); is the file a complete .onnx model?") from exc
    return [i for i in inputs if i.name not in weights]


def _value_info(data: bytes) -> GraphInput:
    name, dims = "", []
    for field, value in _fields(data):
        if field == _VALUE_NAME:
            name = _text(value)
        elif field == _VALUE_TYPE and isinstance(value, bytes):
            dims = _dims(value)
    return GraphInput(name, tuple(dims))


def _dims(type_proto: bytes) -> list[int | None]:
    dims: list[int | None] = []
    for field, tensor in _fields(type_proto):
        if field != _TYPE_TENSOR or not isinstance(tensor, bytes):
            continue
        for f2, shape in _fields(tensor):
            if f2 != _TENSOR_SHAPE or not isinstance(shape, bytes):
                continue
            for f3, dim in _fields(shape):
                if f3 == _SHAPE_DIM and isinstance(dim, bytes):
                    value = next((v for f, v in _fields(dim) if f == _DIM_VALUE and isinstance(v, int)), None)
                    dims.append(value if value is not None and value > 0 else None)
    return dims


def _text(value: int | bytes) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield field, value
        elif wire == _LEN:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield field, data[pos : pos + length]
            pos += length
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
