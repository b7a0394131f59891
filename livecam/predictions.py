"""Frozen prediction values, parsed and validated from a Roboflow response.

A Roboflow answer gives box centres (``x``, ``y``) and sizes in pixels of the image as sent.
``Predictions.from_roboflow`` turns that into corner boxes, drops what cannot be drawn
(NaN, infinite, inverted or absurd boxes), clips the rest to the image and caps the count, so
nothing downstream ever sees hostile numbers.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from livecam.errors import ResponseError
from livecam.sanitize import MAX_MESSAGE, Secrets, clean_text

if TYPE_CHECKING:
    import supervision as sv

MAX_PREDICTIONS = 300
"""More predictions than this in one answer are cut, keeping the most confident (300 is the
``max_detections`` default of Roboflow's servers, so only a hostile answer has more)."""

MAX_POINTS = 2000
"""Polygon vertices kept per prediction."""

MAX_KEYPOINTS = 256
"""Keypoints kept per prediction (whole-body pose models have 133), so that a hostile answer
cannot make every output line of a frame tens of megabytes."""

_MAX_COORD = 1e6


class Points(Sequence[tuple[float, float]]):
    """Polygon vertices held as one read-only ``(N, 2)`` float64 array.

    It reads like the tuple of ``(x, y)`` pairs it stands for (and compares equal to one), but a
    polygon of 500 vertices is one array instead of 500 tuples: cheap to build from an answer,
    to pass between processes and to draw.
    """

    __slots__ = ("array",)

    def __init__(self, vertices: npt.ArrayLike) -> None:
        array = np.array(vertices, dtype=np.float64).reshape(-1, 2)
        array.flags.writeable = False
        self.array: npt.NDArray[np.float64] = array

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, index: int) -> tuple[float, float]: ...

    @overload
    def __getitem__(self, index: slice) -> Points: ...

    def __getitem__(self, index: int | slice) -> tuple[float, float] | Points:
        if isinstance(index, slice):
            return Points(self.array[index])
        x, y = self.array[index].tolist()
        return (x, y)

    def __iter__(self) -> Iterator[tuple[float, float]]:
        return ((x, y) for x, y in self.array.tolist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Points):
            return bool(np.array_equal(self.array, other.array))
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))  # equal to the tuple of its pairs, so hashed like it

    def __repr__(self) -> str:
        return f"Points({self.array.tolist()!r})"

    def __reduce__(self) -> tuple[type[Points], tuple[npt.NDArray[np.float64]]]:
        return Points, (self.array,)

    def scaled(self, sx: float, sy: float) -> Points:
        """Every vertex multiplied by (sx, sy)."""
        return Points(self.array * np.array([sx, sy]))


@dataclass(frozen=True)
class Keypoint:
    """One keypoint of a pose prediction, in pixels."""

    x: float
    y: float
    confidence: float
    name: str


@dataclass(frozen=True)
class Prediction:
    """One detection with a corner box in pixels.

    Attributes:
        x1, y1, x2, y2: box corners, ``x1 <= x2`` and ``y1 <= y2``.
        confidence: 0..1.
        class_name: the label the model gave.
        class_id: the model's class index, when the server sent it.
        points: polygon vertices for instance segmentation (:class:`Points` when parsed from an
            answer), else empty.
        keypoints: pose keypoints, else empty.
        track_id: the object this box follows across answers (set by motion compensation).
    """

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float
    class_name: str
    class_id: int | None = None
    points: Sequence[tuple[float, float]] = ()
    keypoints: tuple[Keypoint, ...] = ()
    track_id: int | None = None

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def scaled(self, sx: float, sy: float) -> Prediction:
        """The same prediction with every coordinate multiplied by (sx, sy)."""
        return replace(
            self,
            x1=self.x1 * sx,
            y1=self.y1 * sy,
            x2=self.x2 * sx,
            y2=self.y2 * sy,
            points=_scaled_points(self.points, sx, sy),
            keypoints=tuple(replace(k, x=k.x * sx, y=k.y * sy) for k in self.keypoints),
        )


def _scaled_points(points: Sequence[tuple[float, float]], sx: float, sy: float) -> Sequence[tuple[float, float]]:
    if isinstance(points, Points):
        return points.scaled(sx, sy)
    return tuple((x * sx, y * sy) for x, y in points)


def center_to_corners(x: float, y: float, width: float, height: float) -> tuple[float, float, float, float]:
    """Roboflow's centre box to corners: ``(x - w/2, y - h/2, x + w/2, y + h/2)``."""
    return x - width / 2, y - height / 2, x + width / 2, y + height / 2


@dataclass(frozen=True)
class Predictions:
    """The answer for one frame.

    Attributes:
        items: detections, highest confidence first is not guaranteed (server order is kept).
        image_size: (width, height) of the image the boxes refer to, when known.
        caption: a classification answer ("cat 0.93"), when the model is a classifier.
        frame_seq: sequence number of the frame these were computed on (-1 if none).
        captured_at: capture time of that frame (monotonic seconds).
        frame_index: source index of that frame (:attr:`Frame.index`; -1 if none).
        issues: what validation dropped or clipped, by kind (for logging once per kind).
        below_threshold: boxes under the display threshold, present only when the server was
            asked for lower confidences so that frames can be collected for labelling
            (``--collect`` with ``low-confidence``) or boxes matched between keyframes
            (``annotate --keyframes``); never drawn, served or written out.
    """

    items: tuple[Prediction, ...] = ()
    image_size: tuple[int, int] | None = None
    caption: str | None = None
    frame_seq: int = -1
    captured_at: float = 0.0
    frame_index: int = -1
    issues: frozenset[str] = field(default_factory=frozenset)
    below_threshold: tuple[Prediction, ...] = ()

    def __len__(self) -> int:
        return len(self.items)

    @property
    def seq(self) -> int:
        """Alias of ``frame_seq`` so prediction sets can live in a :class:`~livecam.live.slot.LatestSlot`."""
        return self.frame_seq

    def scaled(self, sx: float, sy: float) -> Predictions:
        """Every box multiplied by (sx, sy), e.g. back from a downsized request to the frame."""
        size = None
        if self.image_size is not None:
            size = (round(self.image_size[0] * sx), round(self.image_size[1] * sy))
        return replace(
            self,
            items=tuple(p.scaled(sx, sy) for p in self.items),
            below_threshold=tuple(p.scaled(sx, sy) for p in self.below_threshold),
            image_size=size,
        )

    def for_frame(self, seq: int, captured_at: float, index: int | None = None) -> Predictions:
        """The same predictions stamped with the frame they were computed on (``index``: its source index)."""
        return replace(self, frame_seq=seq, captured_at=captured_at, frame_index=seq if index is None else index)

    def filtered(self, classes: Iterable[str] | None = None, min_confidence: float = 0.0) -> Predictions:
        """Only the named classes (None: all) at or above ``min_confidence``."""
        wanted = None if classes is None else frozenset(classes)
        items = tuple(
            p for p in self.items if p.confidence >= min_confidence and (wanted is None or p.class_name in wanted)
        )
        below = tuple(p for p in self.below_threshold if wanted is None or p.class_name in wanted)
        return replace(self, items=items, below_threshold=below)

    def split_at(self, min_confidence: float) -> Predictions:
        """Boxes under ``min_confidence`` (0-1) moved from ``items`` to ``below_threshold``."""
        if all(p.confidence >= min_confidence for p in self.items):
            return self
        kept = tuple(p for p in self.items if p.confidence >= min_confidence)
        below = tuple(p for p in self.items if p.confidence < min_confidence)
        return replace(self, items=kept, below_threshold=self.below_threshold + below)

    def to_supervision(self) -> sv.Detections:
        """These boxes as ``supervision.Detections``: ``xyxy``, ``confidence``, ``class_id``,
        ``tracker_id`` (when every box has one) and ``data["class_name"]``.

        A box without a model class id gets one by its class name's first appearance.

        Raises:
            ImportError: supervision is not installed (``pip install supervision``).
        """
        try:
            import supervision as sv
        except ImportError as exc:
            raise ImportError("to_supervision() needs the supervision package: pip install supervision") from exc
        items = self.items
        names: dict[str, int] = {}
        ids = [p.class_id if p.class_id is not None else names.setdefault(p.class_name, len(names)) for p in items]
        tracked = bool(items) and all(p.track_id is not None for p in items)
        return sv.Detections(
            xyxy=np.array([[p.x1, p.y1, p.x2, p.y2] for p in items], dtype=np.float32).reshape(-1, 4),
            confidence=np.array([p.confidence for p in items], dtype=np.float32),
            class_id=np.array(ids, dtype=int),
            tracker_id=np.array([p.track_id for p in items], dtype=int) if tracked else None,
            data={"class_name": np.array([p.class_name for p in items], dtype=str)},
        )

    def hiding(self, *secrets: str | None) -> Predictions:
        """The same answer with each secret (the API key) replaced by ``***`` in every name and the caption.

        The parse worker never sees the key, so the client scrubs what it parsed with this.
        """
        hidden = Secrets(secrets)
        if not hidden:
            return self
        caption = None if self.caption is None else hidden.hide(self.caption)
        items = _hiding_all(self.items, hidden)
        below = _hiding_all(self.below_threshold, hidden)
        if items is self.items and below is self.below_threshold and caption == self.caption:
            return self
        return replace(self, items=items, below_threshold=below, caption=caption)

    def to_roboflow(self) -> dict[str, Any]:
        """This answer in Roboflow's response format (centre boxes), e.g. for a JSON Lines file.

        The result is what ``supervision.Detections.from_inference`` reads.
        """
        data: dict[str, Any] = {"predictions": [prediction_json(p) for p in self.items]}
        if self.image_size is not None:
            data["image"] = {"width": self.image_size[0], "height": self.image_size[1]}
        if self.caption is not None:
            data["caption"] = self.caption
        return data

    @classmethod
    def from_roboflow(cls, data: Any, image_size: tuple[int, int] | None = None) -> Predictions:
        """Parse a Roboflow hosted/inference response body (already JSON-decoded).

        Args:
            data: the decoded JSON. Object detection, instance segmentation, keypoints and
                classification answers are understood.
            image_size: (width, height) of the image that was sent, used to clip boxes when the
                answer lacks an ``image`` field.

        Raises:
            ResponseError: the body is not a prediction answer at all.
        """
        if not isinstance(data, Mapping):
            raise ResponseError(f"expected a JSON object, got {type(data).__name__}")
        size = _image_size(data.get("image")) or image_size
        raw = data.get("predictions")
        if raw is None:
            raise ResponseError("response has no 'predictions' field")
        issues: set[str] = set()
        if isinstance(raw, Mapping):  # multi-label classification
            return cls(caption=_multilabel_caption(data, raw), image_size=size)
        if not isinstance(raw, list):
            raise ResponseError(f"'predictions' is a {type(raw).__name__}, not a list")
        if raw and isinstance(raw[0], Mapping) and "x" not in raw[0] and "class" in raw[0]:
            return cls(caption=_classification_caption(data, raw), image_size=size)
        if len(raw) > MAX_PREDICTIONS:
            # Cut before parsing: parsing and drawing thousands of boxes would starve the display.
            issues.add("too many predictions")
            raw = heapq.nlargest(MAX_PREDICTIONS, raw, key=_confidence_key)
        items = []
        for entry in raw:
            pred = _parse_one(entry, size, issues)
            if pred is not None:
                items.append(pred)
        return cls(items=tuple(items), image_size=size, issues=frozenset(issues))


def _hiding_all(items: tuple[Prediction, ...], secrets: Secrets) -> tuple[Prediction, ...]:
    """``items`` itself when no name holds a secret (the common case: a substring test a name)."""
    changed = False
    result = []
    for p in items:
        if secrets.found_in(p.class_name) or any(secrets.found_in(k.name) for k in p.keypoints):
            changed = True
            p = replace(
                p,
                class_name=secrets.hide(p.class_name),
                keypoints=tuple(replace(k, name=secrets.hide(k.name)) for k in p.keypoints),
            )
        result.append(p)
    return tuple(result) if changed else items


def prediction_json(p: Prediction, *, shapes: bool = True) -> dict[str, Any]:
    """One box in Roboflow's answer format (centre, size, confidence, class), the one serialiser of a box.

    Args:
        shapes: with ``class_id``, ``track_id`` (when set), polygon ``points`` and ``keypoints``, as
            in an answer; without them, the box alone with its ``track_id`` (null when untracked),
            as the boxes log writes it.
    """
    entry: dict[str, Any] = {
        "x": round((p.x1 + p.x2) / 2, 2),
        "y": round((p.y1 + p.y2) / 2, 2),
        "width": round(p.width, 2),
        "height": round(p.height, 2),
        "confidence": round(p.confidence, 4),
        "class": p.class_name,
    }
    if not shapes:
        entry["track_id"] = p.track_id
        return entry
    if p.class_id is not None:
        entry["class_id"] = p.class_id
    if p.track_id is not None:
        entry["track_id"] = p.track_id
    if p.points:
        entry["points"] = [{"x": round(x, 2), "y": round(y, 2)} for x, y in p.points]
    if p.keypoints:
        entry["keypoints"] = [
            {"x": round(k.x, 2), "y": round(k.y, 2), "confidence": round(k.confidence, 4), "class": k.name}
            for k in p.keypoints
        ]
    return entry


def _confidence_key(entry: Any) -> float:
    if isinstance(entry, Mapping):
        confidence = _finite(entry.get("confidence"))
        if confidence is not None:
            return confidence
    return -math.inf


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) and abs(number) <= _MAX_COORD else None


def _image_size(image: Any) -> tuple[int, int] | None:
    if not isinstance(image, Mapping):
        return None
    w, h = _finite(image.get("width")), _finite(image.get("height"))
    if w is None or h is None or w < 1 or h < 1:
        return None
    return int(w), int(h)


def _parse_one(entry: Any, size: tuple[int, int] | None, issues: set[str]) -> Prediction | None:
    if not isinstance(entry, Mapping):
        issues.add("prediction is not an object")
        return None
    x, y, w, h = (_finite(entry.get(k)) for k in ("x", "y", "width", "height"))
    if x is None or y is None or w is None or h is None:
        issues.add("missing or non-finite box")
        return None
    if w <= 0 or h <= 0:
        issues.add("empty or negative box")
        return None
    x1, y1, x2, y2 = center_to_corners(x, y, w, h)
    if size is not None:
        width, height = size
        cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        if cx1 >= cx2 or cy1 >= cy2:
            issues.add("box outside the image")
            return None
        x1, y1, x2, y2 = cx1, cy1, cx2, cy2
    confidence = _finite(entry.get("confidence"))
    if confidence is None:
        issues.add("missing confidence")
        confidence = 0.0
    confidence = min(1.0, max(0.0, confidence))
    name = entry.get("class", entry.get("class_name"))
    class_id = _class_id(entry.get("class_id"))
    return Prediction(
        x1=x1,
        y1=y1,
        x2=x2,
        y2=y2,
        confidence=confidence,
        class_name=_label(name, class_id),
        class_id=class_id if isinstance(class_id, int) else None,
        points=_points(entry.get("points"), issues),
        keypoints=_keypoints(entry.get("keypoints"), issues),
    )


def _class_id(value: Any) -> int | str | None:
    """A class index as sent: a whole number, digits given as text read as one, other text cleaned."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = _name(value)
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else (text or None)
    return None


def _label(name: Any, class_id: int | str | None) -> str:
    text = _name(name)
    if text:
        return text
    if class_id is not None:
        return f"class {class_id}"
    return "object"


_NUMBER_TYPES = frozenset((int, float))


def _points(raw: Any, issues: set[str]) -> Points | tuple[()]:
    if not isinstance(raw, list) or not raw:
        return ()
    raw = raw[:MAX_POINTS]
    try:
        # The common case in one pass and one array: every vertex an object with numeric x and y.
        coords = [c for point in raw for c in (point["x"], point["y"])]
        if not set(map(type, coords)) <= _NUMBER_TYPES:
            raise TypeError("not all numbers")
        array = np.array(coords, dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, IndexError, OverflowError):
        return _points_one_by_one(raw, issues)
    valid = (np.abs(array) <= _MAX_COORD).all(axis=1)  # NaN compares False, so it is dropped too
    if not valid.all():
        issues.add("bad polygon point")
        array = array[valid]
    return Points(array) if len(array) else ()


def _points_one_by_one(raw: list[Any], issues: set[str]) -> Points | tuple[()]:
    points = []
    for point in raw:
        if isinstance(point, Mapping):
            px, py = _finite(point.get("x")), _finite(point.get("y"))
            if px is not None and py is not None:
                points.append((px, py))
                continue
        issues.add("bad polygon point")
    return Points(points) if points else ()


def _keypoints(raw: Any, issues: set[str]) -> tuple[Keypoint, ...]:
    if not isinstance(raw, list):
        return ()
    if len(raw) > MAX_KEYPOINTS:
        issues.add("too many keypoints")
        raw = raw[:MAX_KEYPOINTS]
    keypoints = []
    for point in raw:
        if isinstance(point, Mapping):
            px, py = _finite(point.get("x")), _finite(point.get("y"))
            conf = _finite(point.get("confidence"))
            if px is not None and py is not None:
                name = point.get("class", point.get("class_name", ""))
                keypoints.append(Keypoint(px, py, 1.0 if conf is None else conf, _name(name)))
                continue
        issues.add("bad keypoint")
    return tuple(keypoints)


def _name(value: Any) -> str:
    """A class or keypoint name from an answer through the one gate (short names cached: they repeat)."""
    if not isinstance(value, str):
        return ""
    return _short_name(value) if len(value) <= _CACHED_NAME else clean_text(value)


_CACHED_NAME = 128


@functools.lru_cache(maxsize=1024)
def _short_name(text: str) -> str:
    return clean_text(text)


def _classification_caption(data: Mapping[str, Any], raw: list[Any]) -> str | None:
    top = data.get("top")
    conf = _finite(data.get("confidence"))
    if isinstance(top, str) and conf is not None:
        return f"{_name(top)} {conf:.2f}"
    best = max(
        (p for p in raw if isinstance(p, Mapping) and _finite(p.get("confidence")) is not None),
        key=lambda p: float(p["confidence"]),
        default=None,
    )
    if best is None or not isinstance(best.get("class"), str):
        return None
    return f"{_name(best['class'])} {float(best['confidence']):.2f}"


def _multilabel_caption(data: Mapping[str, Any], raw: Mapping[str, Any]) -> str | None:
    chosen = data.get("predicted_classes")
    names = [c for c in chosen if isinstance(c, str)] if isinstance(chosen, list) else []
    if not names:
        names = [k for k, v in raw.items() if isinstance(v, Mapping) and (_finite(v.get("confidence")) or 0) >= 0.5]
    return clean_text(", ".join(_name(n) for n in names[:8]), limit=MAX_MESSAGE) or None
