"""Pure drawing on BGR images: detection boxes and labels, polygons, keypoints, HUD, status banner.

Every function draws in place on the image it is given and returns that same image, so callers
decide when to copy (``draw_predictions(frame.image.copy(), predictions)``). Nothing here keeps
state between calls. Translucent fills touch only the bounding rectangle of what they fill, so
drawing 50 labelled boxes on a 720p frame costs about a millisecond.

Usage::

    canvas = frame.image.copy()
    draw_predictions(canvas, predictions, OverlayStyle(show_confidence=False))
    draw_hud(canvas, ["source 30.0 fps", "infer 4.8/s"])
    draw_status(canvas, board.lines())
"""

from __future__ import annotations

import math
import unicodedata
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from livecam.frames import Image
from livecam.predictions import Prediction, Predictions

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


def class_color(name: str) -> Color:
    """The colour of a class: the same for the same name in every run and process."""
    return PALETTE[zlib.crc32(name.encode("utf-8")) % len(PALETTE)]


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
    coordinates never raise; what is outside is simply not drawn.

    Returns:
        ``image``, drawn on in place.
    """
    style = style or OverlayStyle()
    height, width = image.shape[:2]
    thickness = style.thickness or _auto_thickness(width, height)
    font_scale = style.font_scale or _auto_font_scale(width, height)
    for pred in predictions.items:
        box = _pixel_box(pred, width, height, thickness)
        if box is None:
            continue
        color = style.colors.get(pred.class_name) or (
            track_color(pred.track_id)
            if style.show_track_id and pred.track_id is not None
            else class_color(pred.class_name)
        )
        if pred.points:
            _draw_polygon(image, pred.points, color, thickness, style.fill_opacity)
        cv2.rectangle(image, box[:2], box[2:], color, thickness, cv2.LINE_AA)
        if pred.keypoints:
            radius = thickness + 1
            for kp in pred.keypoints:
                if kp.confidence >= style.keypoint_confidence and _inside(kp.x, kp.y, width, height):
                    cv2.circle(image, (round(kp.x), round(kp.y)), radius, color, -1, cv2.LINE_AA)
        if style.labels and (text := label_text(pred, style)):
            _draw_label(image, ascii_text(text), box, color, font_scale)
    if predictions.caption:
        _draw_caption(image, ascii_text(predictions.caption), font_scale * 1.3)
    return image


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


def _pixel_box(pred: Prediction, width: int, height: int, margin: int) -> tuple[int, int, int, int] | None:
    """The box rounded once to pixels and clipped just outside the image; None when invisible."""
    coords = (pred.x1, pred.y1, pred.x2, pred.y2)
    if not all(math.isfinite(c) for c in coords):
        return None
    x1, y1, x2, y2 = (
        min(coords[0], coords[2]),
        min(coords[1], coords[3]),
        max(coords[0], coords[2]),
        max(coords[1], coords[3]),
    )
    if x2 < 0 or y2 < 0 or x1 > width - 1 or y1 > height - 1:
        return None
    # Clipping a little outside the image keeps off-image edges from being drawn on the border.
    lo_x, lo_y, hi_x, hi_y = -margin - 1, -margin - 1, width + margin, height + margin
    return (
        round(min(max(x1, lo_x), hi_x)),
        round(min(max(y1, lo_y), hi_y)),
        round(min(max(x2, lo_x), hi_x)),
        round(min(max(y2, lo_y), hi_y)),
    )


def _draw_label(image: Image, text: str, box: tuple[int, int, int, int], color: Color, scale: float) -> None:
    height, width = image.shape[:2]
    thickness = 2 if scale >= 0.8 else 1
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = 3
    label_w, label_h = text_w + 2 * pad, text_h + baseline + 2 * pad
    x1, y1 = box[0], box[1]
    top = y1 - label_h if y1 - label_h >= 0 else max(y1, 0)
    top = min(top, height - label_h)
    left = min(max(x1, 0), width - label_w)
    left, top = max(left, 0), max(top, 0)
    cv2.rectangle(image, (left, top), (left + label_w - 1, top + label_h - 1), color, -1)
    cv2.putText(
        image, text, (left + pad, top + pad + text_h), _FONT, scale, text_color_for(color), thickness, cv2.LINE_AA
    )


def _draw_caption(image: Image, text: str, scale: float) -> None:
    thickness = 2 if scale >= 0.8 else 1
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = 6
    height, width = image.shape[:2]
    _blend_rect(image, 0, 0, min(width, text_w + 2 * pad), min(height, text_h + baseline + 2 * pad), BLACK, 0.6)
    cv2.putText(image, text, (pad, pad + text_h), _FONT, scale, WHITE, thickness, cv2.LINE_AA)


def _draw_polygon(
    image: Image, points: Sequence[tuple[float, float]], color: Color, thickness: int, opacity: float
) -> None:
    height, width = image.shape[:2]
    pts = np.array(points, dtype=np.float64)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return
    # Far-away vertices are pulled in so the int32 conversion and fillPoly stay cheap and safe.
    pts = np.clip(pts, -width, 2 * width).round().astype(np.int32)
    x0, y0 = max(int(pts[:, 0].min()), 0), max(int(pts[:, 1].min()), 0)
    x1, y1 = min(int(pts[:, 0].max()) + 1, width), min(int(pts[:, 1].max()) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return
    if opacity > 0:
        roi = image[y0:y1, x0:x1]
        filled = roi.copy()
        cv2.fillPoly(filled, [pts - np.array([x0, y0], dtype=np.int32)], color, cv2.LINE_AA)
        cv2.addWeighted(filled, opacity, roi, 1 - opacity, 0, dst=roi)
    cv2.polylines(image, [pts], True, color, thickness, cv2.LINE_AA)


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
