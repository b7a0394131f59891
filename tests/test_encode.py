"""JPEG encoders: what ``auto`` is, and the clean fallback when PyTurboJPEG cannot load."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from livecam.encode import DEFAULT_ENCODER, OpenCVEncoder, TurboJPEGEncoder, make_encoder
from livecam.errors import ConfigError


def picture() -> np.ndarray:
    image = np.zeros((48, 64, 3), np.uint8)
    cv2.circle(image, (32, 24), 12, (40, 200, 90), -1)
    return image


def test_auto_is_opencv() -> None:
    assert DEFAULT_ENCODER == "opencv"
    encoder = make_encoder("auto")
    assert isinstance(encoder, OpenCVEncoder)
    decoded = cv2.imdecode(np.frombuffer(encoder.encode(picture(), 80), np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape == (48, 64, 3)


def test_a_turbojpeg_library_that_cannot_load_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="libjpeg-turbo library could not be loaded"):
        TurboJPEGEncoder("/nonexistent/libturbojpeg.so.0")


def test_turbojpeg_that_cannot_load_falls_back_to_opencv_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    def missing() -> TurboJPEGEncoder:
        raise ConfigError("PyTurboJPEG is not installed (pip install 'livecam[turbojpeg]')")

    with caplog.at_level(logging.WARNING, logger="livecam.encode"):
        encoder = make_encoder("turbojpeg", turbojpeg=missing)
    assert isinstance(encoder, OpenCVEncoder)
    assert "pip install 'livecam[turbojpeg]'" in caplog.text and "using OpenCV" in caplog.text


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown encoder"):
        make_encoder("pillow")
