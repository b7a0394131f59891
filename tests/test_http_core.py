"""The HTTP client core: the status table, Retry-After, server messages, the seam, deadlines, stop, caps."""

from __future__ import annotations

import email.utils
import functools
import io
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import requests
import urllib3
from hostile_upload import HostileServer, run_measured
from requests.adapters import BaseAdapter
from stub_api import StubApi

from livecam.client import ApiConfig, DetectionClient
from livecam.errors import (
    AuthError,
    HttpStatusError,
    ModelNotFoundError,
    ServiceError,
)
from livecam.http import (
    RETRY_AFTER_CAP_S,
    CallInterrupted,
    ErrorKinds,
    Refusal,
    Transport,
    parse_retry_after,
    refusal,
    server_message,
)
from livecam.http.session import new_session
from livecam.upload import RoboflowUploadApi, UploadError, UploadTarget

KEY = "sk-core-SECRET-7c1d"
NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "meaning"),
    [
        (400, Refusal.REJECTED),
        (401, Refusal.KEY),
        (402, Refusal.PAUSED),
        (403, Refusal.KEY),
        (404, Refusal.NOT_FOUND),
        (408, Refusal.BUSY),
        (413, Refusal.TOO_LARGE),
        (418, Refusal.REJECTED),
        (423, Refusal.PAUSED),
        (425, Refusal.BUSY),
        (429, Refusal.RATE_LIMITED),
        (500, Refusal.BUSY),
        (503, Refusal.BUSY),
        (599, Refusal.BUSY),
    ],
)
def test_one_table_says_what_each_status_means(status: int, meaning: Refusal) -> None:
    assert refusal(status) is meaning


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("2", 2.0),
        (" 7.5 ", 7.5),
        ("-3", 0.0),
        ("86400", RETRY_AFTER_CAP_S),
        ("1e999", None),
        ("nan", None),
        ("soon", None),
        (email.utils.formatdate(NOW + 30, usegmt=True), 30.0),
        (email.utils.formatdate(NOW - 30, usegmt=True), 0.0),
        (email.utils.formatdate(NOW + 3600, usegmt=True), RETRY_AFTER_CAP_S),
    ],
)
def test_retry_after_seconds_or_date_with_one_cap(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=lambda: NOW) == seconds


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"message": "Model is temporarily not ready"}', "Model is temporarily not ready"),
        (b'{"detail": "bad image"}', "bad image"),
        (b'{"error": "quota"}', "quota"),
        (b'{"error": {"message": "This API key does not exist", "status": 401}}', "This API key does not exist"),
        (b"upstream connect error", "upstream connect error"),
        (b"<html><body>Bad gateway</body></html>", ""),
        (b'{"unrelated": 1}', ""),
        (b"[" * 100_000, ""),
        (b"", ""),
    ],
)
def test_server_message_reads_the_usual_shapes(body: bytes, said: str) -> None:
    assert server_message(body) == said


def test_server_message_cannot_forge_log_lines_nor_leak_the_key() -> None:
    message = "nope\\n12:00:00 ERROR livecam: injected\\u001b[2J key=" + KEY + " \\ud800"
    body = ('{"message": "' + message + '"}').encode()
    said = server_message(body, (KEY,))
    assert "\n" not in said and "\x1b" not in said and KEY not in said and "***" in said
    assert "\ud800" not in said
    assert len(server_message(b'{"message": "%s"}' % (b"x" * 10_000))) <= 200


class ScriptedAdapter(BaseAdapter):
    """The transport seam: answers every request with ``status``, ``body`` and ``headers``."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.answer = (status, body, headers or {})
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append(request)
        status, body, headers = self.answer
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(body), status=status, headers=headers, preload_content=False
        )
        response.request = request
        return response

    def close(self) -> None:
        pass


def scripted(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> requests.Session:
    session = requests.Session()
    session.mount("http://", ScriptedAdapter(status, body, headers))
    return session


def detection_client(session: requests.Session) -> DetectionClient:
    return DetectionClient(ApiConfig("http://api.invalid", "proj/1", api_key=KEY), session)


def frame() -> np.ndarray:
    return np.zeros((48, 64, 3), np.uint8)


@pytest.mark.parametrize(
    ("status", "kind", "retryable", "wait"),
    [
        (401, AuthError, False, None),
        (404, ModelNotFoundError, False, None),
        (413, HttpStatusError, False, None),
        (429, HttpStatusError, True, RETRY_AFTER_CAP_S),
        (503, HttpStatusError, True, RETRY_AFTER_CAP_S),
        (400, HttpStatusError, False, None),
    ],
)
def test_statuses_through_the_seam(status: int, kind: type[ServiceError], retryable: bool, wait: float | None) -> None:
    body = b'{"message": "said by the server: api_key=%s"}' % KEY.encode()
    with pytest.raises(kind) as info:
        detection_client(scripted(status, body, {"Retry-After": "900"})).detect(frame())
    error = info.value
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, wait)
    assert "said by the server" in str(error) and KEY not in str(error)


def test_api_url_with_a_query_joins_the_model_path() -> None:
    config = ApiConfig("http://host/p?token=T", "proj/1", api_key=KEY)
    assert config.endpoint == "http://host/p/proj/1?token=T"
    assert ApiConfig("http://host/p/?token=T", "proj/1").endpoint == "http://host/p/proj/1?token=T"
    adapter = ScriptedAdapter(401, b"{}")
    session = requests.Session()
    session.mount("http://", adapter)
    with pytest.raises(AuthError) as info:
        DetectionClient(config, session).detect(frame())
    (sent,) = adapter.sent
    assert sent.url is not None and sent.url.startswith("http://host/p/proj/1?token=T&")
    assert f"api_key={KEY}" in sent.url
    assert "token=T" not in str(info.value) and KEY not in str(info.value)


def test_api_url_with_a_query_over_loopback() -> None:
    with StubApi() as api:
        client = DetectionClient(ApiConfig(f"{api.url}/p?token=T", "proj/1", api_key=KEY))
        assert len(client.detect(frame())) == 1
        (seen,) = api.seen
    assert seen.path == "/p/proj/1"
    assert seen.query["token"] == "T" and seen.query["api_key"] == KEY


PLAIN = ErrorKinds.plain(ServiceError, ServiceError)


LIMITS: dict[str, Any] = dict(connect_timeout=2, read_timeout=10, total_timeout=30, max_answer=1 << 20)


def transport(url: str, **over: Any) -> Transport:
    return Transport(PLAIN, where=url, **{**LIMITS, **over})


def test_a_dripping_server_meets_the_total_deadline() -> None:
    with HostileServer(["drip"], drip_s=0.5) as server:
        call = transport(server.url, read_timeout=5, total_timeout=1.5)
        with pytest.raises(ServiceError, match=r"did not finish answering within 1.5 s") as info:
            call.post(server.url + "/x", params={})
        call.close()
    assert info.value.retryable


def post_held(url: str, stop: threading.Event, data: bytes = b"") -> None:
    call = transport(url, read_timeout=600, total_timeout=600, stop=stop)
    try:
        call.post(url + "/x", params={}, data=data)
    finally:
        call.close()


def detect_held(url: str, stop: threading.Event) -> None:
    client = DetectionClient(ApiConfig(url, "test/1", read_timeout=300), stop=stop)
    try:
        client.detect(frame())
    finally:
        client.close()


BIG_BODY = bytes(16 << 20)  # far more than the socket buffers take


@pytest.mark.parametrize(
    ("mode", "call"),
    [("hang", post_held), ("deaf", functools.partial(post_held, data=BIG_BODY)), ("hang", detect_held)],
    ids=["answer-held", "body-never-read", "detection-client"],
)
def test_the_stop_event_ends_a_call_the_server_holds(mode: str, call: Callable[[str, threading.Event], None]) -> None:
    stop = threading.Event()
    with HostileServer([mode]) as server:

        def stop_once_it_holds_the_call() -> None:
            server.arrived.wait(30)
            stop.set()

        stopper = threading.Thread(target=stop_once_it_holds_the_call)
        stopper.start()
        with pytest.raises(CallInterrupted):
            call(server.url, stop)
        stopper.join(30)


def test_a_server_that_never_reads_the_body_meets_the_deadline() -> None:
    with HostileServer(["deaf"]) as server:
        call = transport(server.url, read_timeout=600, total_timeout=1.0)
        with pytest.raises(ServiceError, match="within 1 s"):
            call.post(server.url + "/x", params={}, data=BIG_BODY)
        call.close()


@pytest.mark.parametrize("mode", ["huge", "bomb"])
def test_answers_over_the_cap_are_refused_unread(mode: str) -> None:
    with HostileServer([mode]) as server:
        call = transport(server.url, max_answer=1 << 20)
        with pytest.raises(ServiceError, match="over 1 MB") as info:
            call.post(server.url + "/x", params={})
        call.close()
    assert info.value.retryable
    assert server.bytes_sent < 256 << 20  # the client went away long before 1 GiB


def test_sessions_send_small_packets_at_once_and_keep_connections() -> None:
    session = new_session(pool_size=3)
    adapter = session.get_adapter("http://127.0.0.1/")
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    options = adapter.poolmanager.connection_pool_kw["socket_options"]
    assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) in options
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    assert adapter.max_retries.total == 0
    with HostileServer() as server:
        call = Transport(PLAIN, where=server.url, session=session, **LIMITS)
        for _ in range(3):
            assert call.post(server.url + "/dataset/p/upload", params={}).json() is not None
        call.close()
    assert server.connections == 1


DETECT = """
import sys
import numpy as np
from livecam.client import ApiConfig, DetectionClient
from livecam.errors import ResponseError
client = DetectionClient(ApiConfig(sys.argv[1], "test/1", api_key="k"))
try:
    client.detect(np.zeros((48, 64, 3), np.uint8))
except ResponseError as exc:
    print(exc)
"""


@pytest.mark.parametrize("mode", ["huge", "bomb"])
def test_the_detection_client_holds_against_hostile_answers(mode: str) -> None:
    with HostileServer([mode]) as server:
        status, out, err, rss_mb = run_measured([sys.executable, "-c", DETECT, server.url], {"PATH": "/usr/bin:/bin"})
    assert status == 0, err
    assert "over 16 MB" in out and "Traceback" not in err
    assert rss_mb < 200, rss_mb


def test_upload_urls_keep_the_query_and_messages_hide_credentials() -> None:
    adapter = ScriptedAdapter(503, b'{"message": "busy"}', {"Retry-After": "3"})
    session = requests.Session()
    session.mount("http://", adapter)
    target = UploadTarget("http://user:pa55word@gw.invalid/rf?token=T0KEN", "birds", KEY)
    api = RoboflowUploadApi(target, session=session)
    with pytest.raises(UploadError) as info:
        api.upload_image("a.jpg", b"\xff\xd8", split="train", batch="b", tags=(), metadata={})
    (sent,) = adapter.sent
    assert sent.url is not None and sent.url.startswith("http://user:pa55word@gw.invalid/rf/dataset/birds/upload?")
    assert "token=T0KEN" in sent.url
    message = str(info.value)
    assert (info.value.status, info.value.retryable, info.value.retry_after) == (503, True, 3.0)
    assert "busy" in message and "a.jpg" in message
    for secret in ("pa55word", "T0KEN", KEY):
        assert secret not in message


def test_upload_credentials_stay_out_of_transport_failures() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    target = UploadTarget(f"http://user:pa55word@127.0.0.1:{port}/?token=T0KEN", "birds", KEY)
    api = RoboflowUploadApi(target)
    with pytest.raises(UploadError, match="connection refused") as info:
        api.upload_image("a.jpg", b"\xff\xd8", split="train", batch="b", tags=(), metadata={})
    api.close()
    text = "".join(traceback.format_exception(info.value))
    for secret in ("pa55word", "T0KEN", KEY):
        assert secret not in text
