"""Request parsing without HTTP: base64 bodies, image headers, parameters, CLI flags."""

from __future__ import annotations

import argparse
import base64

import cv2
import numpy as np
import pytest

from livecam.cli.serve import add_arguments as add_serve_arguments
from livecam.cli.serve import server_config as server_config_from_args
from livecam.errors import ConfigError
from livecam.server import ServerConfig
from livecam.server.errors import HttpError
from livecam.server.images import decode_base64, decode_image, image_bytes_from_body
from livecam.server.imagesize import header_size
from livecam.server.params import json_params, legacy_params

PAYLOAD = bytes(range(256)) * 3


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(PAYLOAD),
        b"data:image/jpeg;base64," + base64.b64encode(PAYLOAD),
        base64.encodebytes(PAYLOAD),
        b'"' + base64.b64encode(PAYLOAD) + b'"',
        base64.b64encode(PAYLOAD).replace(b"+", b"%2B").replace(b"/", b"%2F"),
        base64.urlsafe_b64encode(PAYLOAD).rstrip(b"="),
    ],
)
def test_base64_variants(text: bytes) -> None:
    assert decode_base64(text) == PAYLOAD


@pytest.mark.parametrize("body", [b"\xff\xd8\xff\xe0 raw", b"abc$", b"===="])
def test_not_base64(body: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        image_bytes_from_body(body, "application/x-www-form-urlencoded")
    assert caught.value.status == 400


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".webp"])
def test_header_size_of_real_encodings(ext: str) -> None:
    encoded = bytes(cv2.imencode(ext, np.zeros((37, 53, 3), np.uint8))[1])
    assert header_size(encoded) == (53, 37)
    assert decode_image(encoded, 10_000).shape == (37, 53, 3)


def test_gif_header_and_refusals() -> None:
    assert header_size(b"GIF89a" + (640).to_bytes(2, "little") + (480).to_bytes(2, "little")) == (640, 480)
    assert header_size(b"II*\x00tiff") is None
    png = bytes(cv2.imencode(".png", np.zeros((100, 100, 3), np.uint8))[1])
    with pytest.raises(HttpError) as caught:
        decode_image(png, 9_999)
    assert caught.value.status == 413


def test_legacy_params() -> None:
    assert legacy_params({}).confidence == pytest.approx(0.4) and legacy_params({}).iou == pytest.approx(0.3)
    assert legacy_params({"confidence": "85"}).confidence == pytest.approx(0.85)
    assert legacy_params({"confidence": "0.85"}).confidence == pytest.approx(0.85)
    assert legacy_params({"confidence": "0"}).confidence == pytest.approx(0.01)
    params = legacy_params({"classes": "car, person,", "format": "IMAGE", "labels": "false", "stroke": "4"})
    assert params.classes == frozenset({"car", "person"}) and params.format == "image"
    assert (params.labels, params.stroke) == (False, 4)
    assert json_params({"confidence": 0.5, "iou_threshold": 0.45, "max_detections": 7}).max_detections == 7


def test_serve_flags_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    assert server_config_from_args(parser.parse_args([])) == ServerConfig()
    config = server_config_from_args(
        parser.parse_args(
            [
                "--port",
                "0",
                "--model-id",
                "cars/3",
                "--api-key",
                "k",
                "--simulate-latency-ms",
                "250",
                "--workers",
                "2",
                "--max-pending",
                "6",
                "--allow-image-urls",
                "--max-body-mb",
                "5",
            ]
        )
    )
    assert (config.port, config.model_id, config.api_key, config.simulate_latency_ms) == (0, "cars/3", "k", 250)
    assert (config.workers, config.max_pending, config.allow_image_urls, config.max_body_bytes) == (
        2,
        6,
        True,
        5 * 1024 * 1024,
    )
    for bad in (["--workers", "0"], ["--model-id", "nonsense"], ["--port", "70000"]):
        with pytest.raises(ConfigError):
            server_config_from_args(parser.parse_args(bad))
