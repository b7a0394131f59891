import base64
import socket
import threading
import traceback
from typing import Any

import numpy as np
import pytest
from stub_api import Reply, StubApi, one_box

from livecam.backoff import Backoff
from livecam.client import ApiConfig, DetectionClient, RetryPolicy, detect_with_retry
from livecam.errors import (
    AuthError,
    ConfigError,
    ConnectionFailed,
    DetectionError,
    HttpStatusError,
    ModelNotFoundError,
    RequestTimeout,
    ResponseError,
    TransportError,
)
from livecam.frames import Image
from livecam.redaction import redact

KEY = "sk-test-SECRET-4f9a"


def frame(width: int = 1280, height: int = 720) -> Image:
    image = np.zeros((height, width, 3), np.uint8)
    image[::16] = 255
    return image


def client_for(api: StubApi, **over: Any) -> DetectionClient:
    return DetectionClient(ApiConfig(api.url, "test/1", api_key=KEY, **over))


def test_request_speaks_the_legacy_route() -> None:
    with StubApi() as api:
        client_for(api, confidence=55, overlap=20).detect(frame())
        (seen,) = api.seen
    assert seen.path == "/test/1"
    assert seen.query == {"api_key": KEY, "confidence": "55", "overlap": "20", "format": "json"}
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_frames_are_downsized_and_boxes_scaled_back() -> None:
    with StubApi() as api:
        preds = client_for(api, max_side=640).detect(frame(1280, 720))
        assert api.seen[-1].image_size == (640, 360)
    (p,) = preds.items
    assert (p.x1, p.y1, p.x2, p.y2) == pytest.approx((320, 180, 960, 540))


def test_full_size_when_max_side_is_off() -> None:
    with StubApi() as api:
        client_for(api, max_side=None).detect(frame(800, 600))
        assert api.seen[-1].image_size == (800, 600)


def test_class_filter_is_applied_on_the_client() -> None:
    with StubApi(script=lambda s: one_box(s, "dog")) as api:
        assert len(client_for(api, classes=("person",)).detect(frame())) == 0
        assert len(client_for(api, classes=("dog",)).detect(frame())) == 1


def assert_no_key(exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    assert KEY not in text


@pytest.mark.parametrize(
    "status,kind,retryable",
    [
        (401, AuthError, False),
        (403, AuthError, False),
        (404, ModelNotFoundError, False),
        (429, DetectionError, True),
        (500, DetectionError, True),
        (503, DetectionError, True),
        (400, DetectionError, False),
    ],
)
def test_http_errors_map_to_the_error_tree(status: int, kind: type[DetectionError], retryable: bool) -> None:
    body = {"message": f"bad key {KEY}"}
    with StubApi(script=lambda s: Reply(status, body, {"Retry-After": "2"})) as api:
        with pytest.raises(kind) as info:
            client_for(api).detect(frame())
    assert info.value.status == status and info.value.retryable is retryable
    assert_no_key(info.value)
    if status == 429:
        assert info.value.retry_after == 2.0


def test_html_error_page_and_not_json_bodies() -> None:
    with StubApi(script=lambda s: Reply(502, b"<html><body>Bad gateway</body></html>")) as api:
        with pytest.raises(DetectionError) as info:
            client_for(api).detect(frame())
        assert info.value.status == 502 and "HTTP 502" in str(info.value)
        api.script = lambda s: Reply(200, b"<html>surprise</html>")
        with pytest.raises(ResponseError):
            client_for(api).detect(frame())
        api.script = lambda s: Reply(200, {"wrong": "shape"})
        with pytest.raises(ResponseError):
            client_for(api).detect(frame())


def test_oversized_answer_is_refused() -> None:
    big = b"[" + b"0," * (9 * 1024 * 1024) + b"0]"
    with StubApi(script=lambda s: Reply(200, big)) as api, pytest.raises(ResponseError, match="MB"):
        client_for(api).detect(frame())


def test_refused_connection_is_retryable_and_redacted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = DetectionClient(ApiConfig(f"http://127.0.0.1:{port}", "test/1", api_key=KEY))
    with pytest.raises(ConnectionFailed, match="connection refused") as info:
        client.detect(frame())
    assert info.value.retryable and info.value.status is None
    assert isinstance(info.value, TransportError)
    assert_no_key(info.value)


def test_read_timeout_is_retryable() -> None:
    with StubApi(latency=5) as api, pytest.raises(RequestTimeout, match="timeout") as info:
        client_for(api, read_timeout=0.2).detect(frame())
    assert info.value.retryable
    assert_no_key(info.value)


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (401, AuthError, False),
        (404, ModelNotFoundError, False),
        (429, HttpStatusError, True),
        (503, HttpStatusError, True),
    ],
)
def test_http_errors_are_typed_by_status(status: int, kind: type[DetectionError], retryable: bool) -> None:
    with StubApi(script=lambda s: Reply(status)) as api, pytest.raises(kind) as info:
        client_for(api).detect(frame())
    assert isinstance(info.value, HttpStatusError) and info.value.status == status
    assert info.value.retryable is retryable


def test_retry_recovers_after_transient_failures() -> None:
    answers = iter([Reply(503, {"message": "Model is temporarily not ready - retry request."}), Reply(429)])
    with StubApi(script=lambda s: next(answers, None) or one_box(s)) as api:
        policy = RetryPolicy(attempts=4, backoff=Backoff(initial=0.01, maximum=0.02))
        preds = detect_with_retry(client_for(api), frame(), policy, threading.Event())
        assert len(preds) == 1 and api.requests == 3


def test_retry_gives_up_at_once_on_auth_errors() -> None:
    with StubApi(script=lambda s: Reply(401)) as api:
        with pytest.raises(AuthError):
            detect_with_retry(client_for(api), frame(), RetryPolicy(), threading.Event())
        assert api.requests == 1


def test_keep_alive_reuses_one_connection() -> None:
    with StubApi() as api:
        client = client_for(api)
        for _ in range(3):
            client.detect(frame(320, 240))
        assert api.requests == 3
        assert len({s.client_port for s in api.seen}) == 1


@pytest.mark.parametrize("text", [f"url?api_key={KEY}&x=1", f"Authorization: Bearer {KEY}", f"key {KEY} here"])
def test_redact(text: str) -> None:
    assert KEY not in redact(text, KEY)
    assert "***" in redact(text, KEY)


def test_config_repr_hides_the_key_and_validates() -> None:
    assert KEY not in repr(ApiConfig("http://x", "a/1", api_key=KEY))
    with pytest.raises(ConfigError, match="PROJECT/VERSION"):
        ApiConfig("http://x", "nope")
    with pytest.raises(ConfigError, match="confidence"):
        ApiConfig("http://x", "a/1", confidence=150)
    with pytest.raises(ConfigError, match="http"):
        ApiConfig("ftp://x", "a/1")


def test_body_is_base64_jpeg() -> None:
    with StubApi() as api:
        client = client_for(api)
        request = client.prepare(frame(320, 240))
        assert base64.b64decode(request.body)[:2] == b"\xff\xd8"
        assert request.scale == 1.0


def test_absurdly_nested_json_is_a_bad_answer_not_a_crash() -> None:
    with StubApi(script=lambda s: Reply(200, b"[" * 100_000)) as api, pytest.raises(ResponseError):
        client_for(api).detect(frame())
