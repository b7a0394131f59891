"""DNS rebinding: ``livecam serve`` and the kiosk's web view answer 421 to a ``Host`` that does not name them."""

from __future__ import annotations

import argparse
import base64
import http.client
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from server_fakes import FixedDetector

from livecam.cli import build_parser
from livecam.cli.kiosk import add_arguments as add_kiosk_arguments
from livecam.cli.kiosk import load_kiosk_config
from livecam.cli.serve import server_config
from livecam.errors import ConfigError
from livecam.kiosk.web import FrameHub, WebView
from livecam.net import HostCheck, parse_allowed_hosts
from livecam.server import EmbeddedServer, ServerConfig

TIMEOUT = 30
REFUSED = ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io:{port}", "10.0.0.7:{port}", "[fe80::1]"]
ANSWERED = ["127.0.0.1", "127.0.0.1:{port}", "localhost", "localhost:{port}", "LOCALHOST.:{port}", "[::1]:{port}"]


def request(url: str, method: str, path: str, host: str | None, body: bytes = b"") -> tuple[int, str, bytes]:
    """One request to ``url`` (always 127.0.0.1) carrying exactly the ``Host`` header given."""
    address, port = url.split("//")[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(address, int(port), timeout=TIMEOUT)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            conn.putheader("Host", host.format(port=port))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def small_jpeg() -> bytes:
    return bytes(cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1])


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    config = ServerConfig(port=0, allowed_hosts=("camera.lan", ".example.org"))
    with EmbeddedServer(config, detector_factory=FixedDetector) as running:
        yield running


@pytest.fixture(scope="module")
def view() -> Iterator[WebView]:
    hub = FrameHub(fps=20)
    with WebView(("127.0.0.1", 0), hub, lambda: {"fps": 1.0}, allowed_hosts=("kiosk.lan",)) as web:
        hub.publish(np.full((48, 64, 3), 90, np.uint8))
        yield web


@pytest.mark.parametrize("host", REFUSED)
@pytest.mark.parametrize("path", ["/healthz", "/model/registry", "/info"])
def test_serve_refuses_a_foreign_host(server: EmbeddedServer, host: str, path: str) -> None:
    status, kind, body = request(server.url, "GET", path, host)
    assert status == 421
    assert kind == "application/json" and b"--allowed-hosts" in body and len(body) < 200


def test_serve_refuses_a_foreign_host_before_inference(server: EmbeddedServer) -> None:
    status, _, _ = request(server.url, "POST", "/coco/1", "attacker.example", base64.b64encode(small_jpeg()))
    assert status == 421


@pytest.mark.parametrize("host", [*ANSWERED, "camera.lan:{port}", "CAMERA.LAN", "cam.example.org:{port}", None])
def test_serve_answers_its_own_names(server: EmbeddedServer, host: str | None) -> None:
    assert request(server.url, "GET", "/healthz", host)[0] == 200
    status, _, body = request(server.url, "POST", "/coco/1", host, base64.b64encode(small_jpeg()))
    assert status == 200 and b'"person"' in body


@pytest.mark.parametrize("host", REFUSED)
@pytest.mark.parametrize("path", ["/", "/stats", "/snapshot.jpg", "/stream.mjpg"])
def test_the_kiosk_view_refuses_a_foreign_host(view: WebView, host: str, path: str) -> None:
    status, kind, body = request(view.url, "GET", path, host)
    assert status == 421
    assert kind.startswith("text/plain") and b"--allowed-hosts" in body and len(body) < 200


@pytest.mark.parametrize("host", [*ANSWERED, "kiosk.lan:{port}"])
def test_the_kiosk_view_answers_its_own_names(view: WebView, host: str) -> None:
    status, kind, body = request(view.url, "GET", "/stats", host)
    assert (status, kind, body) == (200, "application/json", b'{"fps": 1.0}')
    status, kind, _ = request(view.url, "GET", "/snapshot.jpg", host)
    assert (status, kind) == (200, "image/jpeg")


def test_two_host_headers_are_refused(view: WebView) -> None:
    address, port = view.url.split("//")[1].rstrip("/").rsplit(":", 1)
    conn = http.client.HTTPConnection(address, int(port), timeout=TIMEOUT)
    try:
        conn.putrequest("GET", "/stats", skip_host=True)
        conn.putheader("Host", "127.0.0.1")
        conn.putheader("Host", "attacker.example")
        conn.endheaders()
        assert conn.getresponse().status == 421
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("bound", "host", "answered"),
    [
        ("0.0.0.0", "192.168.1.20:8080", True),
        ("0.0.0.0", "[2001:db8::1]:8080", True),
        ("0.0.0.0", "localhost", True),
        ("0.0.0.0", "my-pc.lan", False),
        ("::", "10.0.0.1", True),
        ("::", "rebound.example", False),
        ("192.168.1.20", "192.168.1.20:9001", True),
        ("192.168.1.20", "127.0.0.1", False),
        ("192.168.1.20", "10.0.0.1", False),
        ("127.0.0.1", "127.0.0.2", False),
        ("localhost", "127.0.0.1:9001", True),
        ("::1", "[::1]:9001", True),
        ("camera.lan", "camera.lan:9001", True),
        ("camera.lan", "other.lan", False),
        ("127.0.0.1", "", False),
        ("127.0.0.1", "localhost:port", False),
        ("127.0.0.1", "a" * 5000, False),
    ],
)
def test_which_hosts_a_binding_answers(bound: str, host: str, answered: bool) -> None:
    assert HostCheck(bound).accepts(host) is answered


def test_a_star_allows_every_host() -> None:
    assert HostCheck("127.0.0.1", parse_allowed_hosts("*")).accepts("anything.example")


def test_serve_takes_allowed_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["serve", "--allowed-hosts", "Camera.LAN., .example.org"])
    assert server_config(args).allowed_hosts == ("camera.lan", ".example.org")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert "--allowed-hosts NAME,..." in capsys.readouterr().out


def test_serve_refuses_a_malformed_allowed_host(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--allowed-hosts", "bad name!"])
    assert exit_info.value.code == 2
    assert "'bad name!' is not a host name" in capsys.readouterr().err


def kiosk_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_kiosk_arguments(parser)
    return parser


def test_the_kiosk_takes_allowed_hosts_from_its_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nweb = "127.0.0.1:8080"\nallowed-hosts = ["kiosk.lan", "lobby.lan"]\n', encoding="utf-8")
    parser = kiosk_parser()
    assert load_kiosk_config(parser.parse_args(["--config", str(path)])).kiosk.allowed_hosts == (
        "kiosk.lan",
        "lobby.lan",
    )
    flagged = parser.parse_args(["--config", str(path), "--allowed-hosts", "hall.lan"])
    assert load_kiosk_config(flagged).kiosk.allowed_hosts == ("hall.lan",)


def test_the_kiosk_file_names_a_bad_allowed_host(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text('[kiosk]\nallowed-hosts = ["ok.lan", "no way"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 2: kiosk.allowed-hosts: 'no way' is not a host name"):
        load_kiosk_config(kiosk_parser().parse_args(["--config", str(path)]))
