"""The sample footage in sample_videos/, frame by frame, for tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from livecam.frames import Image

SAMPLES = Path(__file__).resolve().parent.parent / "sample_videos"


def sample_frame(name: str, index: int) -> Image:
    """Frame ``index`` of ``sample_videos/name`` (BGR)."""
    capture = cv2.VideoCapture(str(SAMPLES / name))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, image = capture.read()
    finally:
        capture.release()
    assert ok, f"cannot read frame {index} of {name}"
    return np.asarray(image, np.uint8)
