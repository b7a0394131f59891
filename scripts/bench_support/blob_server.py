"""A loopback Roboflow-format API that answers with the coloured blobs of each image it is sent.

The latency server (:mod:`latency_server`) with another answer: each request holds one of
``slots`` places for ``latency_ms``, then gets :func:`blobs.detect_blobs` of the decoded image, in
the pixels of the image as sent, with an ``x-processing-time`` header as hosted Roboflow sends
(the latency, in seconds).

    python scripts/bench_support/blob_server.py --latency-ms 200 --slots 4
    # prints "PORT 40123" on stdout, serves until SIGTERM or SIGINT
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_support.blobs import detect_blobs  # noqa: E402 - run as a script, beside its package
from bench_support.latency_server import Reply, main  # noqa: E402


def blobs_answer(body: bytes, latency_s: float) -> Reply:
    """The blobs of the image in ``body`` (400 when it is not an image)."""
    try:
        data = base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        data = b""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        return 400, b'{"message": "not an image"}', {}
    height, width = image.shape[:2]
    answer = {
        "time": latency_s,
        "image": {"width": width, "height": height},
        "predictions": detect_blobs(np.asarray(image, np.uint8)),
    }
    return 200, json.dumps(answer).encode(), {"x-processing-time": f"{latency_s:.4f}"}


if __name__ == "__main__":
    sys.exit(main(respond=blobs_answer, description=__doc__))
