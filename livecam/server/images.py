"""Turn a request body into a BGR image: base64 text, ``data:`` URLs, multipart ``file`` parts."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from email.parser import BytesParser
from email.policy import HTTP

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


def decode_image(data: bytes, max_pixels: int) -> Image:
    """A BGR image from encoded bytes, refusing huge dimensions before decoding.

    Raises:
        HttpError: 400 for data that is not an image, 413 for an image above ``max_pixels``.
    """
    _checked_size(data, max_pixels)
    return _decoded(data, cv2.IMREAD_COLOR, max_pixels)


def decode_for_model(data: bytes, max_pixels: int, model_size: tuple[int, int]) -> tuple[Image, tuple[int, int]]:
    """A BGR image for a model that sees ``model_size`` (width, height), and the full image's (width, height).

    A JPEG at least 2, 4 or 8 times the model's input on both sides is decoded at that fraction
    of its size (libjpeg scales while decoding, for less than the cost of a full decode); the
    model resizes to its input anyway, so it sees the same picture. Boxes found on the returned
    image map to the full one by the ratio of the two sizes.

    Raises:
        HttpError: as :func:`decode_image`.
    """
    width, height = _checked_size(data, max_pixels)
    flag = cv2.IMREAD_COLOR
    if data[:2] == b"\xff\xd8":
        flag = next((f for n, f in _REDUCED if width // n >= model_size[0] and height // n >= model_size[1]), flag)
    image = _decoded(data, flag, max_pixels)
    if flag == cv2.IMREAD_COLOR:
        return image, (image.shape[1], image.shape[0])
    # EXIF orientation may have turned the picture a quarter turn relative to the header's size.
    turned = (image.shape[1] >= image.shape[0]) != (width >= height) and width != height
    return image, (height, width) if turned else (width, height)


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


def _multipart_file(body: bytes, content_type: str) -> bytes:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise HttpError(400, "the multipart body could not be parsed; check its boundary")
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                return payload
            raise HttpError(400, "the multipart 'file' part is empty")
    raise HttpError(400, "the multipart body has no part named 'file'")
