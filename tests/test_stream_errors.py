"""Open failures of network streams name their cause, over loopback with real servers."""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from stream_servers import StatusServer, free_port

from livecam.errors import SourceError
from livecam.hls import is_hls, target_duration
from livecam.sources import CaptureOptions, OpenCVSource
from livecam.streamerrors import (
    _authorization,
    diagnose_open,
    ffmpeg_protocols,
    read_failure,
    status_failure,
    unsupported,
)

OPTIONS = CaptureOptions(open_timeout_s=3.0, read_timeout_s=3.0)
SECRET = "hunter2"


def open_error(url: str) -> str:
    with pytest.raises(SourceError) as caught:
        OpenCVSource(url, OPTIONS).open()
    message = str(caught.value)
    assert SECRET not in message
    return message


@pytest.mark.parametrize("scheme", ["rtsp", "http", "rtmp", "tcp"])
def test_refused(scheme: str) -> None:
    port = free_port()
    message = open_error(f"{scheme}://viewer:{SECRET}@127.0.0.1:{port}/stream")
    assert f"connection refused by 127.0.0.1:{port}; check the port" in message


@pytest.mark.parametrize(
    ("status", "credentials", "expected"),
    [
        (401, True, "authentication failed (401); check the user and password in the URL"),
        (401, False, "authentication required (401)"),
        (403, True, "access refused (403)"),
        (404, False, "not found (404); check the path"),
    ],
)
@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_status_of_the_server(scheme: str, status: int, credentials: bool, expected: str) -> None:
    with StatusServer(status) as server:
        userinfo = f"viewer:{SECRET}@" if credentials else ""
        message = open_error(f"{scheme}://{userinfo}127.0.0.1:{server.port}/live.m3u8")
    assert expected in message
    assert message.startswith(f"cannot open {scheme}://")


def test_srt_is_not_in_this_build() -> None:
    protocols = ffmpeg_protocols()
    if protocols is None:
        pytest.skip("this OpenCV has no bundled FFmpeg to list the protocols of")
    assert "srt" not in protocols and "http" in protocols and "udp" in protocols
    message = open_error(f"srt://127.0.0.1:{free_port()}")
    assert "cannot read srt:// streams; relay the stream" in message


def test_supported_schemes_are_not_flagged() -> None:
    for url in ("rtsp://h/x", "http://h/x", "https://h/x", "udp://h:1", "tcp://h:1", "rtmp://h/x"):
        assert unsupported(url) is None


def test_udp_and_a_missing_port_say_nothing_arrived() -> None:
    failure = diagnose_open("udp://127.0.0.1:5000", waited_s=10.0)
    assert failure.cause == "timed-out"
    assert failure.message == (
        "no video arrived at 127.0.0.1:5000 within 10 s; check that the sender sends to this address and port"
    )


def test_read_failure_tells_a_timeout_from_an_end() -> None:
    assert read_failure(4.9, 5.0).cause == "timed-out"
    assert read_failure(0.1, 5.0).message == "the stream ended (the server closed it or stopped publishing)"


def test_status_failure_table() -> None:
    assert status_failure(200, False) is None
    assert status_failure(503, False).cause == "server-error"  # type: ignore[union-attr]
    assert status_failure(454, False).cause == "refused-request"  # type: ignore[union-attr]


def test_digest_answer_matches_rfc_2617() -> None:
    challenge = (
        'Digest realm="testrealm@host.com", qop="auth", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    header = _authorization(challenge, "Mufasa", "Circle Of Life", "GET", "/dir/index.html")
    assert header.startswith('Digest username="Mufasa", realm="testrealm@host.com"')
    assert "qop=auth" in header and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header
    without_qop = _authorization('Digest realm="r", nonce="n"', "u", "p", "DESCRIBE", "rtsp://h/s")
    ha1 = hashlib.md5(b"u:r:p").hexdigest()
    ha2 = hashlib.md5(b"DESCRIBE:rtsp://h/s").hexdigest()
    assert f'response="{hashlib.md5(f"{ha1}:n:{ha2}".encode()).hexdigest()}"' in without_qop
    assert "qop" not in without_qop
    assert _authorization('Basic realm="x"', "u", "p", "GET", "/") == "Basic dTpw"


def test_a_server_that_accepts_but_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        failure = diagnose_open(f"rtsp://127.0.0.1:{port}/stream", waited_s=1.0, timeout_s=0.5)
    assert failure.cause == "timed-out"
    assert failure.message.startswith(f"127.0.0.1:{port} accepted the connection but did not answer within")


class _Playlist(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802  (the base class's name)
        if self.headers.get("Authorization") != "Basic dTpw":
            self.send_error(401)
            return
        body = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.0,\nlive0.ts\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet."""


def test_hls_target_duration_is_read_from_the_playlist() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Playlist)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert is_hls(f"http://127.0.0.1:{port}/live.m3u8") and not is_hls("rtsp://h/live.m3u8")
        assert target_duration(f"http://u:p@127.0.0.1:{port}/live.m3u8") == 4.0
        assert target_duration(f"http://127.0.0.1:{port}/live.m3u8") is None  # 401: unknown
    finally:
        server.shutdown()
        server.server_close()
