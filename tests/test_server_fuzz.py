"""``livecam serve`` under hostile input: fuzzed requests get 2xx/4xx (or the documented 503 busy),
the server never crashes, and slow clients do not block others."""

from __future__ import annotations

import base64
import socket
import struct
import zlib
from collections.abc import Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_fakes import FixedDetector

from livecam.server import EmbeddedServer, ServerConfig

SETTINGS = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALLOWED = {b"2", b"4"}


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    config = ServerConfig(port=0, max_body_mb=1.0, max_image_pixels=4_000_000, socket_timeout_s=2.0)
    with EmbeddedServer(config, detector_factory=FixedDetector) as running:
        yield running


def address(server: EmbeddedServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def exchange(server: EmbeddedServer, payload: bytes) -> bytes:
    with socket.create_connection(address(server), timeout=30) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def assert_allowed(answer: bytes, payload: bytes) -> None:
    if not answer:
        assert b"\r\n" not in payload or not payload.strip(), payload[:200]
        return
    status = answer.split(b" ", 2)[1]
    assert status[:1] in ALLOWED or status == b"503" and b"retry" in answer, (payload[:300], answer[:300])


def healthy(server: EmbeddedServer) -> None:
    assert requests.get(f"{server.url}/healthz", timeout=30).status_code == 200


token = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":\r\n"), min_size=1, max_size=20)
paths = st.sampled_from(
    [
        "/coco/1",
        "/coco/1/",
        "/infer/object_detection",
        "/model/registry",
        "/model/add",
        "/healthz",
        "/info",
        "/",
        "/a/b/c",
        "/coco/../../etc/passwd",
        "/%00",
        "/coco/999",
    ]
)
queries = st.lists(
    st.tuples(
        st.sampled_from(
            ["api_key", "confidence", "overlap", "format", "labels", "stroke", "max_detections", "image", "classes"]
        )
        | token,
        st.sampled_from(["", "nan", "-1", "1e309", "50", "0.5", "image", "true", "%zz", "x" * 300]),
    ),
    max_size=6,
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "BREW"])
bodies = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda b: base64.b64encode(b), st.binary(max_size=512)),
    st.just(b'{"model_id": "coco/1", "image": {"type": "base64", "value": "!!"}}'),
    st.just(b"data:image/png;base64,AAAA"),
    st.just(b'"quoted"'),
)
headers = st.lists(
    st.tuples(token, st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)), max_size=4
)


content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=zz",
        "multipart/form-data",
    ]
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    query = "&".join(f"{k}={v}" for k, v in draw(queries))
    body = draw(bodies)
    length = draw(st.sampled_from(["ok", "missing", "negative", "text", "short"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/9", "x"]))
    lines = [f"{draw(methods)} {draw(paths)}{'?' + query if query else ''} {version}"]
    lines += [f"{k}: {v}" for k, v in draw(headers)]
    lines.append(f"Content-Type: {draw(content_types)}")
    lines.append(
        {
            "ok": f"Content-Length: {len(body)}",
            "missing": "",
            "negative": "Content-Length: -3",
            "text": "Content-Length: lots",
            "short": f"Content-Length: {len(body) + 10}",
        }[length]
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.mark.slow
@SETTINGS
@given(payload=raw_requests())
def test_fuzzed_raw_requests_get_no_5xx(server: EmbeddedServer, payload: bytes) -> None:
    assert_allowed(exchange(server, payload), payload)


def png(width: int, height: int, tail: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        + tail
    )


def jpeg(width: int, height: int, tail: bytes) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height % 65536, width % 65536, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + tail


dims = st.integers(0, 70_000)
crafted = st.one_of(
    st.builds(png, dims, dims, st.binary(max_size=64)),
    st.builds(jpeg, dims, dims, st.binary(max_size=64)),
    st.builds(
        lambda w, h, t: b"GIF89a" + struct.pack("<HH", w % 65536, h % 65536) + t, dims, dims, st.binary(max_size=32)
    ),
    st.builds(lambda w, h, t: b"BM" + b"\x00" * 16 + struct.pack("<ii", w, -h) + t, dims, dims, st.binary(max_size=32)),
)


@pytest.mark.slow
@SETTINGS
@given(image=crafted, multipart=st.booleans())
def test_crafted_image_headers_get_4xx(server: EmbeddedServer, image: bytes, multipart: bool) -> None:
    if multipart:
        answer = requests.post(f"{server.url}/coco/1", files={"file": ("x.png", image)}, timeout=30)
    else:
        answer = requests.post(f"{server.url}/coco/1", data=base64.b64encode(image), timeout=30)
    assert answer.status_code in (400, 413), answer.text


def test_server_still_healthy_after_fuzzing(server: EmbeddedServer) -> None:
    healthy(server)


def test_slow_clients_do_not_block_others(server: EmbeddedServer) -> None:
    slow = []
    try:
        for _ in range(24):
            sock = socket.create_connection(address(server), timeout=30)
            sock.sendall(b"POST /coco/1 HTTP/1.1\r\nHo")
            slow.append(sock)
        for sock in slow:
            sock.sendall(b"s")  # one more byte each: every connection is alive and unfinished
        healthy(server)
        body = base64.b64encode(png(2, 2, b""))
        assert requests.post(f"{server.url}/coco/1", data=body, timeout=30).status_code == 400
    finally:
        for sock in slow:
            sock.close()
