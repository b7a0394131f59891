"""Pure drawing on BGR images: detection boxes and labels, polygons, keypoints, HUD, status banner.

Every function draws in place on the image it is given and returns that same image, so callers
decide when to copy (``draw_predictions(frame.image.copy(), predictions)``). Nothing here keeps
state between calls but :class:`PredictionPainter`, which remembers the layout of the last
answer it drew. Translucent fills touch only the bounding rectangle of what they fill, so
drawing 300 labelled boxes on a 720p frame costs a few milliseconds.

Usage::

    canvas = frame.image.copy()
    draw_predictions(canvas, predictions, OverlayStyle(show_confidence=False))
    draw_hud(canvas, ["source 30.0 fps", "infer 4.8/s"])
    draw_status(canvas, board.lines())
"""

from __future__ import annotations

import functools
import unicodedata
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from livecam.frames import Image
from livecam.predictions import Points, Prediction, Predictions

Color = tuple[int, int, int]
"""A BGR colour."""

PALETTE: tuple[Color, ...] = (
    (0, 0, 255),
    (83, 255, 64),
    (217, 0, 43),
    (54, 103, 217),
    (102, 255, 0),
    (255, 64, 159),
    (0, 130, 217),
    (168, 217, 54),
    (255, 0, 204),
    (64, 236, 255),
    (217, 217, 0),
    (200, 54, 217),
    (0, 255, 204),
    (255, 198, 64),
    (130, 0, 217),
    (54, 217, 135),
    (255, 102, 0),
    (121, 64, 255),
    (0, 217, 43),
    (217, 70, 54),
)
"""Distinct saturated BGR colours that :func:`class_color` picks from."""

BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)
AMBER: Color = (0, 176, 255)
RED: Color = (40, 40, 210)

MAX_AGE_S = 3.0
"""Detections older than this (seconds) are hidden rather than drawn stale, unless told otherwise."""

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_ASCII_REPLACEMENTS = {
    "\u2014": "-",
    "\u2013": "-",
    "\u2012": "-",
    "\u2212": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2026": "...",
    "\u00d7": "x",
    "\u00b0": " deg",
    "\u00b5": "u",
    "\u00a0": " ",
    "\u2192": "->",
    "\u2190": "<-",
}


@dataclass(frozen=True)
class OverlayStyle:
    """How predictions are drawn.

    Attributes:
        labels: draw the "class 0.87" label of each box.
        thickness: box line thickness in pixels; None scales it with the image size.
        font_scale: Hershey font scale of labels; None scales it with the image size.
        colors: per-class BGR colour overrides; other classes get :func:`class_color`.
        show_class: start labels with the class name.
        show_confidence: append the confidence to labels.
        show_track_id: append the ``#id`` of the object's track to labels (with motion compensation)
            and colour each tracked object its own way (classes with a colour in ``colors`` keep it).
        keypoint_confidence: keypoints below this confidence are not drawn.
        fill_opacity: opacity of the fill inside segmentation polygons (0 disables it).
    """

    labels: bool = True
    thickness: int | None = None
    font_scale: float | None = None
    colors: Mapping[str, Color] = field(default_factory=dict)
    show_class: bool = True
    show_confidence: bool = True
    show_track_id: bool = False
    keypoint_confidence: float = 0.5
    fill_opacity: float = 0.25


@functools.lru_cache(maxsize=1024)
def class_color(name: str) -> Color:
    """The colour of a class: the same for the same name in every run and process; never raises."""
    # surrogatepass: any str has bytes to hash, even one holding a lone surrogate.
    return PALETTE[zlib.crc32(name.encode("utf-8", "surrogatepass")) % len(PALETTE)]


def track_color(track_id: int) -> Color:
    """The colour of one tracked object: the same for its whole track."""
    return PALETTE[(track_id * 7) % len(PALETTE)]


def label_text(pred: Prediction, style: OverlayStyle) -> str:
    """A box's label: its class, then its confidence and ``#track`` when the style asks for them."""
    parts = [pred.class_name] if style.show_class else []
    if style.show_confidence:
        parts.append(f"{pred.confidence:.2f}")
    if style.show_track_id and pred.track_id is not None:
        parts.append(f"#{pred.track_id}")
    return " ".join(parts)


def text_color_for(background: Color) -> Color:
    """Black or white, whichever reads better on ``background`` (BGR)."""
    b, g, r = background
    luminance = 0.299 * r + 0.587 * g + 0.114 * b
    return BLACK if luminance >= 140 else WHITE


def ascii_text(text: str) -> str:
    """``text`` reduced to what OpenCV's Hershey fonts can draw (printable ASCII).

    Dashes and quotes become their ASCII look-alikes, accents are dropped ("café" -> "cafe"),
    anything else unprintable becomes "?".
    """
    replaced = "".join(_ASCII_REPLACEMENTS.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFKD", replaced)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        out.append(ch if " " <= ch <= "~" else "?")
    return "".join(out)


def draw_predictions(image: Image, predictions: Predictions, style: OverlayStyle | None = None) -> Image:
    """Draw boxes, labels, polygons, keypoints and a classification caption on ``image``.

    Coordinates are in the image's pixels (scale the predictions first when they were computed
    on a resized copy). Boxes partly or fully outside the image, zero-size boxes and non-finite
    coordinates never raise; what is outside is simply not drawn. To draw one answer on many
    frames, use a :class:`PredictionPainter`, which lays it out once.

    Returns:
        ``image``, drawn on in place.
    """
    height, width = image.shape[:2]
    return _layout(predictions, width, height, style or OverlayStyle()).draw(image)


class PredictionPainter:
    """Draws answers as :func:`draw_predictions` does, laying out each answer only once.

    A live display shows one answer on every frame until the next arrives; working out its
    pixels, colours and labels once instead of on every frame halves what drawing a 300-polygon
    answer costs. Use one painter per thread.

    Args:
        style: how predictions are drawn.
    """

    def __init__(self, style: OverlayStyle | None = None) -> None:
        self.style = style or OverlayStyle()
        self._last: tuple[Predictions, tuple[int, int], _Drawing] | None = None

    def draw(self, image: Image, predictions: Predictions) -> Image:
        """Draw ``predictions`` on ``image`` in place and return it."""
        height, width = image.shape[:2]
        last = self._last
        if last is None or last[0] is not predictions or last[1] != (width, height):
            last = (predictions, (width, height), _layout(predictions, width, height, self.style))
            self._last = last
        return last[2].draw(image)


@dataclass(frozen=True)
class _Drawing:
    """One answer laid out on images of one size: OpenCV's arguments, ready to draw on any frame.

    Drawing takes few OpenCV calls: the outlines of one colour in one call, the polygon fills in
    one blend, each label pasted from a small cache of rendered labels. Every OpenCV call gives
    up the interpreter lock and must win it back, so on a busy process 300 boxes drawn one call
    at a time took longer than a frame.
    """

    dots: tuple[tuple[tuple[int, int], int, Color], ...]
    fills: tuple[tuple[Color, tuple[npt.NDArray[np.int32], ...]], ...]
    fill_rect: tuple[int, int, int, int] | None
    fill_opacity: float
    polygon_outlines: tuple[tuple[Color, tuple[npt.NDArray[np.int32], ...]], ...]
    polygon_edge: int
    box_outlines: tuple[tuple[Color, tuple[npt.NDArray[np.int32], ...]], ...]
    thickness: int
    labels: tuple[tuple[Image, int, int], ...]
    caption: tuple[str, float] | None

    def draw(self, image: Image) -> Image:
        for center, radius, color in self.dots:
            cv2.circle(image, center, radius, color, -1, cv2.LINE_AA)
        if self.fill_rect is not None:
            _fill_polygons(image, self.fills, self.fill_rect, self.fill_opacity)
        for color, shapes in self.polygon_outlines:
            cv2.polylines(image, shapes, True, color, self.polygon_edge, cv2.LINE_AA)
        for color, shapes in self.box_outlines:
            # Axis-aligned edges on whole pixels gain nothing from anti-aliasing, which costs four times as much.
            cv2.polylines(image, shapes, True, color, self.thickness, cv2.LINE_8)
        for sprite, top, left in self.labels:
            image[top : top + sprite.shape[0], left : left + sprite.shape[1]] = sprite
        if self.caption is not None:
            _draw_caption(image, *self.caption)
        return image


def _layout(predictions: Predictions, width: int, height: int, style: OverlayStyle) -> _Drawing:
    thickness = style.thickness or _auto_thickness(width, height)
    font_scale = style.font_scale or _auto_font_scale(width, height)
    boxes = _pixel_boxes(predictions.items, width, height, thickness)
    outlines: dict[Color, list[int]] = {}
    shapes: list[tuple[Color, Sequence[tuple[float, float]]]] = []
    dots: list[tuple[tuple[int, int], int, Color]] = []
    labels: list[tuple[Image, int, int]] = []
    last_use: dict[Color, int] = {}
    for index, (pred, box) in enumerate(zip(predictions.items, boxes.tolist(), strict=True)):
        if box[0] > box[2]:  # not visible
            continue
        color = style.colors.get(pred.class_name) or (
            track_color(pred.track_id)
            if style.show_track_id and pred.track_id is not None
            else class_color(pred.class_name)
        )
        last_use[color] = index
        if pred.points:
            shapes.append((color, pred.points))
        outlines.setdefault(color, []).append(index)
        if pred.keypoints:
            radius = thickness + 1
            dots.extend(
                ((round(kp.x), round(kp.y)), radius, color)
                for kp in pred.keypoints
                if kp.confidence >= style.keypoint_confidence and _inside(kp.x, kp.y, width, height)
            )
        if style.labels and (text := label_text(pred, style)):
            label = _placed_label(_label_sprite(text, color, font_scale), box[0], box[1], width, height)
            if label is not None:
                labels.append(label)
    polygons: dict[Color, list[npt.NDArray[np.int32]]] = {}
    for (color, _), pixels in zip(shapes, _polygon_pixels([p for _, p in shapes], width, height), strict=True):
        if pixels is not None:
            polygons.setdefault(color, []).append(pixels)
    fill_rect = _span(polygons.values(), width, height) if polygons and style.fill_opacity > 0 else None
    # The colour of the latest box goes on top, as when each box was drawn in turn.
    corners = boxes[:, _CORNERS]  # (n, 4, 2): each box as the closed outline cv2.rectangle draws
    return _Drawing(
        dots=tuple(dots),
        fills=tuple((color, tuple(found)) for color, found in polygons.items()),
        fill_rect=fill_rect,
        fill_opacity=style.fill_opacity,
        polygon_outlines=tuple((c, tuple(polygons[c])) for c in sorted(polygons, key=last_use.__getitem__)),
        # A thick anti-aliased line costs about ten times as much per vertex as a thin one, and a
        # polygon has hundreds: with the automatic thickness its outline is one pixel (the fill shows it).
        polygon_edge=1 if style.thickness is None else thickness,
        box_outlines=tuple((c, tuple(corners[outlines[c]])) for c in sorted(outlines, key=last_use.__getitem__)),
        thickness=thickness,
        labels=tuple(labels),
        caption=(ascii_text(predictions.caption), font_scale * 1.3) if predictions.caption else None,
    )


def draw_hud(image: Image, lines: Sequence[str], anchor: Literal["top-left", "top-right"] = "top-right") -> Image:
    """Draw a compact semi-transparent panel of text lines in a top corner.

    The default corner is the top right, so the panel never hides a classification caption
    or the labels of boxes at the top-left.

    Returns:
        ``image``, drawn on in place.
    """
    if not lines:
        return image
    height, width = image.shape[:2]
    scale = max(0.45, _auto_font_scale(width, height) * 0.8)
    texts = [ascii_text(line) for line in lines]
    sizes = [cv2.getTextSize(t, _FONT, scale, 1) for t in texts]
    line_h = max(s[0][1] + s[1] for s in sizes) + 4
    pad = 6
    panel_w = min(width, max(s[0][0] for s in sizes) + 2 * pad)
    panel_h = min(height, line_h * len(texts) + 2 * pad)
    x0 = 0 if anchor == "top-left" else width - panel_w
    _blend_rect(image, x0, 0, x0 + panel_w, panel_h, BLACK, 0.55)
    for i, text in enumerate(texts):
        baseline_y = pad + (i + 1) * line_h - 4
        cv2.putText(image, text, (x0 + pad, baseline_y), _FONT, scale, WHITE, 1, cv2.LINE_AA)
    return image


def draw_status(image: Image, lines: Sequence[str], severity: Literal["warning", "error"] = "warning") -> Image:
    """Draw a banner of status lines across the bottom of ``image``.

    The banner is amber with black text for warnings, red with white text for errors, and is
    never taller than a third of the image: lines that do not fit are left out, and long lines
    are cut with "...".

    Returns:
        ``image``, drawn on in place.
    """
    if not lines:
        return image
    height, width = image.shape[:2]
    scale = _auto_font_scale(width, height)
    thickness = 2 if scale >= 0.8 else 1
    (_, text_h), baseline = cv2.getTextSize("Ag", _FONT, scale, thickness)
    pad = max(4, text_h // 2)
    line_h = text_h + baseline + pad
    fit = max(1, (height // 3 - pad) // line_h)
    texts = [_fit_width(ascii_text(line), width - 2 * pad, scale, thickness) for line in lines[:fit]]
    banner_h = min(height, line_h * len(texts) + pad)
    background = AMBER if severity == "warning" else RED
    _blend_rect(image, 0, height - banner_h, width, height, background, 0.85)
    ink = text_color_for(background)
    for i, text in enumerate(texts):
        y = height - banner_h + pad + text_h + i * line_h
        cv2.putText(image, text, (pad, y), _FONT, scale, ink, thickness, cv2.LINE_AA)
    return image


def _auto_thickness(width: int, height: int) -> int:
    return max(1, round(min(width, height) / 360))


def _auto_font_scale(width: int, height: int) -> float:
    return max(0.45, min(width, height) / 1200)


def _inside(x: float, y: float, width: int, height: int) -> bool:
    return 0 <= x < width and 0 <= y < height


_CORNERS = np.array(((0, 1), (2, 1), (2, 3), (0, 3)))
"""Indices into ``(x1, y1, x2, y2)`` of a box's corners, in drawing order."""


def _pixel_boxes(items: Sequence[Prediction], width: int, height: int, margin: int) -> npt.NDArray[np.int32]:
    """Every box rounded once to pixels and clipped just outside the image, as ``(n, 4)`` int32.

    An invisible box (off the image, or with a non-finite coordinate) gets ``x1 > x2``.
    """
    coords = np.array([(p.x1, p.y1, p.x2, p.y2) for p in items], dtype=np.float64).reshape(-1, 4)
    finite = np.isfinite(coords).all(axis=1)
    coords[~finite] = 0.0
    x1 = np.minimum(coords[:, 0], coords[:, 2])
    x2 = np.maximum(coords[:, 0], coords[:, 2])
    y1 = np.minimum(coords[:, 1], coords[:, 3])
    y2 = np.maximum(coords[:, 1], coords[:, 3])
    visible = finite & (x2 >= 0) & (y2 >= 0) & (x1 <= width - 1) & (y1 <= height - 1)
    # Clipping a little outside the image keeps off-image edges from being drawn on the border.
    lo_x, lo_y, hi_x, hi_y = -margin - 1, -margin - 1, width + margin, height + margin
    clipped = (np.clip(x1, lo_x, hi_x), np.clip(y1, lo_y, hi_y), np.clip(x2, lo_x, hi_x), np.clip(y2, lo_y, hi_y))
    boxes: npt.NDArray[np.int32] = np.rint(np.stack(clipped, axis=1)).astype(np.int32)
    boxes[~visible] = (1, 0, 0, 0)
    return boxes


@functools.lru_cache(maxsize=2048)
def _label_sprite(text: str, color: Color, scale: float) -> Image:
    """The label ("person 0.87") rendered once on its filled background; pasted where it belongs."""
    text = ascii_text(text)
    thickness = 2 if scale >= 0.8 else 1
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = 3
    sprite = np.full((text_h + baseline + 2 * pad, text_w + 2 * pad, 3), color, np.uint8)
    cv2.putText(sprite, text, (pad, pad + text_h), _FONT, scale, text_color_for(color), thickness, cv2.LINE_AA)
    sprite.flags.writeable = False
    return sprite


def _placed_label(sprite: Image, x1: int, y1: int, width: int, height: int) -> tuple[Image, int, int] | None:
    """The label above the box's top-left corner, or inside the box at the top edge, kept in the image.

    Returns the part of ``sprite`` that shows and its top and left, or None if none shows.
    """
    label_h, label_w = sprite.shape[:2]
    top = y1 - label_h if y1 - label_h >= 0 else max(y1, 0)
    top = min(top, height - label_h)
    left = min(max(x1, 0), width - label_w)
    left, top = max(left, 0), max(top, 0)
    shown_h, shown_w = min(label_h, height - top), min(label_w, width - left)
    if shown_h <= 0 or shown_w <= 0:
        return None
    return sprite[:shown_h, :shown_w], top, left


def _draw_caption(image: Image, text: str, scale: float) -> None:
    thickness = 2 if scale >= 0.8 else 1
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = 6
    height, width = image.shape[:2]
    _blend_rect(image, 0, 0, min(width, text_w + 2 * pad), min(height, text_h + baseline + 2 * pad), BLACK, 0.6)
    cv2.putText(image, text, (pad, pad + text_h), _FONT, scale, WHITE, thickness, cv2.LINE_AA)


def _polygon_pixels(
    polygons: Sequence[Sequence[tuple[float, float]]], width: int, height: int, cell: int = 2
) -> list[npt.NDArray[np.int32] | None]:
    """Each polygon's vertices in pixels, ready for OpenCV; None for one that cannot show.

    All polygons are converted together (a few array operations per frame, not per polygon).
    Vertices within the same ``cell`` pixels square as the one before are drawn as one: a
    500-vertex outline of a small object is sub-pixel dense, and each segment of an anti-aliased
    line costs about as much as a long one.
    """
    if not polygons:
        return []
    arrays = [p.array if isinstance(p, Points) else _vertex_array(p) for p in polygons]
    counts = np.array([len(a) for a in arrays])
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    every = np.concatenate(arrays)
    out: list[npt.NDArray[np.int32] | None] = [None] * len(arrays)
    if len(every) == 0:
        return out
    if np.isfinite(every).all():  # always so for parsed answers: one check for the lot
        finite = np.ones(len(every), dtype=bool)
    else:
        finite = np.isfinite(every[:, 0]) & np.isfinite(every[:, 1])
        every = np.where(finite[:, None], every, 0.0)
    # Far-away vertices are pulled in so the int32 conversion and fillPoly stay cheap and safe.
    pixels = np.ascontiguousarray(np.clip(every, -width, 2 * width).round().astype(np.int32))
    cells = (pixels // cell).view(np.int64).ravel()  # one number per vertex: compared in one pass
    nonempty = counts > 0
    moved = np.empty(len(pixels), dtype=bool)
    moved[0] = True
    np.not_equal(cells[1:], cells[:-1], out=moved[1:])
    moved[starts[nonempty]] = True
    usable = np.zeros(len(arrays), dtype=bool)
    usable[nonempty] = np.logical_and.reduceat(finite, starts[nonempty]) & (counts[nonempty] >= 3)
    lo = np.zeros((len(arrays), 2), dtype=np.int32)
    hi = np.zeros((len(arrays), 2), dtype=np.int32)
    lo[nonempty] = np.minimum.reduceat(pixels, starts[nonempty])
    hi[nonempty] = np.maximum.reduceat(pixels, starts[nonempty])
    visible = usable & (hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < width) & (lo[:, 1] < height)
    kept_counts = np.zeros(len(arrays), dtype=np.int64)
    kept_counts[nonempty] = np.add.reduceat(moved, starts[nonempty])
    ends = np.cumsum(kept_counts).tolist()
    kept = pixels[moved]
    for i in np.flatnonzero(visible).tolist():
        out[i] = kept[ends[i] - kept_counts[i] : ends[i]]
    return out


def _vertex_array(points: Sequence[tuple[float, float]]) -> npt.NDArray[np.float64]:
    try:
        array = np.array(points, dtype=np.float64)
    except (TypeError, ValueError):
        return np.zeros((0, 2))
    return array if array.ndim == 2 and array.shape[1] == 2 else np.zeros((0, 2))


def _span(
    polygons: Iterable[Sequence[npt.NDArray[np.int32]]], width: int, height: int
) -> tuple[int, int, int, int] | None:
    """The rectangle ``(x0, y0, x1, y1)`` of a ``width`` x ``height`` image that the polygons cover; None if empty."""
    every = np.concatenate([p for shapes in polygons for p in shapes])
    x0, y0 = max(int(every[:, 0].min()), 0), max(int(every[:, 1].min()), 0)
    x1, y1 = min(int(every[:, 0].max()) + 1, width), min(int(every[:, 1].max()) + 1, height)
    return None if x0 >= x1 or y0 >= y1 else (x0, y0, x1, y1)


def _fill_polygons(
    image: Image,
    polygons: Sequence[tuple[Color, Sequence[npt.NDArray[np.int32]]]],
    rect: tuple[int, int, int, int],
    opacity: float,
) -> None:
    """Blend every polygon's fill over ``image`` at ``opacity``, within ``rect``, the rectangle they span."""
    x0, y0, x1, y1 = rect
    roi = image[y0:y1, x0:x1]
    filled = roi.copy()
    for color, shapes in polygons:
        cv2.fillPoly(filled, list(shapes), color, cv2.LINE_8, offset=(-x0, -y0))  # the outline covers its edge
    cv2.addWeighted(filled, opacity, roi, 1 - opacity, 0, dst=roi)


def _blend_rect(image: Image, x0: int, y0: int, x1: int, y1: int, color: Color, opacity: float) -> None:
    """Blend a filled rectangle over ``image[y0:y1, x0:x1]`` at ``opacity``."""
    roi = image[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
    if roi.size == 0:
        return
    cv2.addWeighted(roi, 1 - opacity, np.full_like(roi, color), opacity, 0, dst=roi)


def _fit_width(text: str, max_width: int, scale: float, thickness: int) -> str:
    """``text`` cut with "..." so that it is at most ``max_width`` pixels wide."""
    width = cv2.getTextSize(text, _FONT, scale, thickness)[0][0]
    if width <= max_width:
        return text
    keep = max(0, len(text) * max_width // max(width, 1) - 3)
    while keep > 0 and cv2.getTextSize(text[:keep] + "...", _FONT, scale, thickness)[0][0] > max_width:
        keep -= 1
    return text[:keep] + "..."
