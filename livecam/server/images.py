"""Turn a request body into a BGR image: base64 text, ``data:`` URLs, multipart ``file`` parts."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from dataclasses import dataclass

import cv2
import numpy as np

from livecam.frames import Image
from livecam.server.errors import HttpError
from livecam.server.imagesize import header_size

_DATA_URL = re.compile(rb"^data:[\w/+.-]*(;[\w=.-]+)*;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


def image_bytes_from_body(body: bytes, content_type: str) -> bytes:
    """The encoded image inside a legacy-route body.

    Raises:
        HttpError: 400 for an empty body, raw bytes, or text that is not base64.
    """
    if not body.strip():
        raise HttpError(400, "the request body is empty; send the image as base64 text or a multipart 'file' part")
    if content_type.lower().startswith("multipart/form-data"):
        return _multipart_file(body, content_type)
    return decode_base64(body)


def decode_base64(text: bytes | str) -> bytes:
    """Bytes from base64 text, tolerating a ``data:image/...;base64,`` prefix, quotes, line breaks,
    URL-encoding and the URL-safe alphabet.

    Raises:
        HttpError: 400 when the text is not base64.
    """
    raw = text.encode("latin-1", "replace") if isinstance(text, str) else text
    raw = raw.strip()
    try:
        # Plain padded base64 (what clients send) needs none of the tolerant clean-up below,
        # whose whitespace scan alone costs more than the decoding.
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        data = _tolerant_base64(raw)
    if not data:
        raise HttpError(400, "the base64 text decodes to nothing; send an encoded image")
    return data


def _tolerant_base64(raw: bytes) -> bytes:
    if raw.startswith(b'"'):
        raw = _json_string(raw)
    if b"%" in raw:
        raw = urllib.parse.unquote_to_bytes(raw)
    raw = _WHITESPACE.sub(b"", _DATA_URL.sub(b"", raw))
    if b"-" in raw or b"_" in raw:
        raw = raw.replace(b"-", b"+").replace(b"_", b"/")
    raw += b"=" * (-len(raw) % 4)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HttpError(
            400,
            "the body is not base64 text; send the image base64-encoded "
            "(raw image bytes belong in a multipart 'file' part)",
        ) from exc


_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


@dataclass(frozen=True)
class DecodePlan:
    """How an image will be decoded, known from its header before any decoding.

    Attributes:
        width, height: the full image's size.
        scale: the image is decoded at ``1 / scale`` of its size on both sides (1, 2, 4 or 8).
        flag: OpenCV's ``imdecode`` flag for that.
    """

    width: int
    height: int
    scale: int = 1
    flag: int = cv2.IMREAD_COLOR

    @property
    def pixels(self) -> int:
        """Pixels of the decoded image (what decoding will hold in memory, times 3 bytes)."""
        return -(-self.width // self.scale) * -(-self.height // self.scale)


def plan_decode(data: bytes, max_pixels: int, model_size: tuple[int, int] | None = None) -> DecodePlan:
    """The decoding of ``data`` for a model that sees ``model_size`` (width, height), or at full size.

    A JPEG at least 2, 4 or 8 times the model's input on both sides is decoded at that fraction
    of its size (libjpeg scales while decoding, for less than the cost of a full decode); the
    model resizes to its input anyway, so it sees the same picture.

    Raises:
        HttpError: 400 for data that is not an image, 413 for an image above ``max_pixels``.
    """
    width, height = _checked_size(data, max_pixels)
    if model_size is not None and data[:2] == b"\xff\xd8":
        for scale, flag in _REDUCED:
            if width // scale >= model_size[0] and height // scale >= model_size[1]:
                return DecodePlan(width, height, scale, flag)
    return DecodePlan(width, height)


def decode_planned(data: bytes, plan: DecodePlan, max_pixels: int) -> tuple[Image, tuple[int, int]]:
    """A BGR image decoded as ``plan`` says, and the full image's (width, height).

    Boxes found on the returned image map to the full one by the ratio of the two sizes.

    Raises:
        HttpError: 400 for data that cannot be decoded, 413 for an image above ``max_pixels``.
    """
    image = _decoded(data, plan.flag, max_pixels)
    if plan.scale == 1:
        return image, (image.shape[1], image.shape[0])
    # EXIF orientation may have turned the picture a quarter turn relative to the header's size.
    width, height = plan.width, plan.height
    turned = (image.shape[1] >= image.shape[0]) != (width >= height) and width != height
    return image, (height, width) if turned else (width, height)


def decode_image(data: bytes, max_pixels: int) -> Image:
    """A BGR image from encoded bytes, refusing huge dimensions before decoding.

    Raises:
        HttpError: 400 for data that is not an image, 413 for an image above ``max_pixels``.
    """
    return decode_planned(data, plan_decode(data, max_pixels), max_pixels)[0]


def decode_for_model(data: bytes, max_pixels: int, model_size: tuple[int, int]) -> tuple[Image, tuple[int, int]]:
    """A BGR image for a model that sees ``model_size`` (see :func:`plan_decode`), and the full (width, height).

    Raises:
        HttpError: as :func:`decode_image`.
    """
    return decode_planned(data, plan_decode(data, max_pixels, model_size), max_pixels)


def _checked_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    size = header_size(data)
    if size is None:
        raise HttpError(400, "the data is not a JPEG, PNG, GIF, BMP or WebP image")
    width, height = size
    if width * height > max_pixels:
        raise HttpError(
            413,
            f"the image is {width}x{height}; at most {max_pixels} pixels are accepted, send it downscaled",
        )
    return width, height


def _decoded(data: bytes, flag: int, max_pixels: int) -> Image:
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if decoded is None or decoded.size == 0:
        raise HttpError(400, "the image could not be decoded; it may be truncated or corrupt")
    image: Image = np.asarray(decoded, np.uint8)
    if image.shape[1] * image.shape[0] > max_pixels:
        raise HttpError(413, f"the image is larger than {max_pixels} pixels; send it downscaled")
    return image


def _json_string(raw: bytes) -> bytes:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise HttpError(400, "the body is a broken JSON string; send the bare base64 text") from exc
    if not isinstance(value, str):
        raise HttpError(400, "the body must be base64 text")
    return value.encode("latin-1", "replace")


MAX_PARTS = 16
"""The most multipart parts read looking for the ``file`` part; the rest of the body is not scanned."""
_MAX_PART_HEAD = 8 * 1024
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;"]{1,200}))', re.IGNORECASE)
_DISPOSITION_NAME = re.compile(rb'^content-disposition\s*:.*?;\s*name\s*=\s*(?:"([^"]*)"|([^;\s]+))', re.IGNORECASE)
_BASE64_PART = re.compile(rb"^content-transfer-encoding\s*:\s*base64\s*$", re.IGNORECASE)


def _multipart_file(body: bytes, content_type: str) -> bytes:
    """The ``file`` part of a multipart body.

    One pass of ``bytes.find`` over the body and at most :data:`MAX_PARTS` parts, each with
    at most 8 KB of headers: a body of many tiny parts costs no more than one large part.
    """
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise HttpError(400, "the multipart Content-Type has no boundary; let the client library set it")
    dash = b"--" + (match.group(1) or match.group(2) or "").encode("latin-1", "replace")
    delimiter = b"\r\n" + dash
    pos = 0 if body.startswith(dash) else body.find(delimiter) + 2  # a preamble may come first
    if pos < 2 and not body.startswith(dash):
        raise HttpError(400, "the multipart body could not be parsed; check its boundary")
    for _ in range(MAX_PARTS):
        pos += len(dash)
        if body.startswith(b"--", pos):  # the closing delimiter
            break
        line_end = body.find(b"\r\n", pos, pos + _MAX_PART_HEAD)
        head_end = body.find(b"\r\n\r\n", line_end, line_end + _MAX_PART_HEAD) if line_end >= 0 else -1
        if head_end < 0:
            raise HttpError(400, "a multipart part has no end to its headers, or more than 8 KB of them")
        end = body.find(delimiter, head_end + 4)
        if end < 0:
            raise HttpError(400, "the multipart body ends inside a part; check its boundary")
        headers = body[line_end + 2 : head_end].split(b"\r\n")
        if any(_part_name(line) == b"file" for line in headers):
            payload = body[head_end + 4 : end]
            if any(_BASE64_PART.match(line) for line in headers):
                payload = decode_base64(payload)
            if not payload:
                raise HttpError(400, "the multipart 'file' part is empty")
            return payload
        pos = end + 2
    else:
        raise HttpError(400, f"the multipart body has no 'file' part among its first {MAX_PARTS} parts")
    raise HttpError(400, "the multipart body has no part named 'file'")


def _part_name(header_line: bytes) -> bytes | None:
    match = _DISPOSITION_NAME.match(header_line)
    return None if match is None else (match.group(1) if match.group(1) is not None else match.group(2))
