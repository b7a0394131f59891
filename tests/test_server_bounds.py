"""What a stranger can make ``livecam serve`` spend: no body read without the key, decoded pixels
bounded across all requests together, and multipart parsing bounded by parts, not body size."""

from __future__ import annotations

import base64
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests
from server_fakes import FixedDetector

from livecam.frames import Image
from livecam.predictions import Predictions
from livecam.server import EmbeddedServer, ServerConfig
from livecam.server.images import MAX_PARTS

TIMEOUT = 30
KEY = "bounds-test-key"


def png(width: int, height: int) -> bytes:
    """A real, tiny PNG of a black picture (it compresses about 1000 to 1)."""
    return bytes(cv2.imencode(".png", np.zeros((height, width), np.uint8))[1])


def small_jpeg() -> bytes:
    return bytes(cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1])


def exchange(url: str, raw: bytes) -> bytes:
    """Send ``raw`` and read the whole answer (the server closes the connection after it)."""
    address, port = url.split("//")[1].rsplit(":", 1)
    with socket.create_connection((address, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


class GatedDetector(FixedDetector):
    """Counts the calls that entered ``detect`` and holds them there until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.release = threading.Event()
        self._entered = threading.Condition()

    def detect(self, image_bgr: Image, confidence: float, iou: float, max_detections: int) -> Predictions:
        with self._entered:
            self.inside += 1
            self._entered.notify_all()
        self.release.wait(TIMEOUT)
        return super().detect(image_bgr, confidence, iou, max_detections)

    def wait_inside(self, count: int) -> bool:
        with self._entered:
            return self._entered.wait_for(lambda: self.inside >= count, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def keyed() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ServerConfig(port=0, api_key=KEY), detector_factory=FixedDetector) as server:
        yield server


# --- the key before the body --------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/coco/1",
        "/coco/1?api_key=wrong",
        "/infer/object_detection?api_key=wrong",
        "/model/add?api_key=wrong",
        "/model/registry",
        "/dogs/3",
    ],
)
def test_a_request_without_the_key_is_refused_before_its_body_is_read(keyed: EmbeddedServer, target: str) -> None:
    # 20 MB announced and none sent: an answer can only come from the request line and headers.
    head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20000000\r\n\r\n"
    answer = exchange(keyed.url, head.encode())
    assert answer.startswith(b"HTTP/1.1 401 ") or (target.startswith("/model/registry") and b" 405 " in answer[:20])
    assert b"Connection: close" in answer and KEY.encode() not in answer


def test_a_wrong_bearer_key_is_refused_before_the_body(keyed: EmbeddedServer) -> None:
    head = "POST /coco/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer nope\r\nContent-Length: 20000000\r\n\r\n"
    assert exchange(keyed.url, head.encode()).startswith(b"HTTP/1.1 401 ")


def test_a_client_sending_a_whole_body_with_a_wrong_key_reads_the_401(keyed: EmbeddedServer) -> None:
    body = base64.b64encode(b"\xff\xd8" + bytes(700_000))
    answer = requests.post(f"{keyed.url}/coco/1?api_key=wrong", data=body, timeout=TIMEOUT)
    assert answer.status_code == 401 and answer.json() == {"message": "the API key is not valid for this server"}


def test_keys_in_the_json_body_still_work(keyed: EmbeddedServer) -> None:
    image = {"type": "base64", "value": base64.b64encode(small_jpeg()).decode()}
    ok = requests.post(
        f"{keyed.url}/infer/object_detection",
        json={"model_id": "coco/1", "api_key": KEY, "image": image},
        timeout=TIMEOUT,
    )
    assert ok.status_code == 200 and ok.json()["predictions"]
    wrong = requests.post(
        f"{keyed.url}/infer/object_detection",
        json={"model_id": "coco/1", "api_key": "nope", "image": image},
        timeout=TIMEOUT,
    )
    assert wrong.status_code == 401
    good = requests.post(f"{keyed.url}/coco/1?api_key={KEY}", data=base64.b64encode(small_jpeg()), timeout=TIMEOUT)
    assert good.status_code == 200


def test_open_routes_and_wrong_methods_answer_as_before(keyed: EmbeddedServer) -> None:
    assert requests.get(f"{keyed.url}/healthz", timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{keyed.url}/coco/1?api_key={KEY}", timeout=TIMEOUT).status_code == 405
    assert requests.get(f"{keyed.url}/nothing/here/at/all", timeout=TIMEOUT).status_code == 404


# --- decoded pixels in flight -------------------------------------------------------------------


def test_pixels_in_flight_are_bounded_across_requests() -> None:
    gated = GatedDetector()
    config = ServerConfig(port=0, max_image_pixels=1_000_000, workers=2, max_pending=8)
    assert config.max_pixels_in_flight == 2_000_000
    large = base64.b64encode(png(1000, 1000))
    with EmbeddedServer(config, detector_factory=lambda: gated) as server, ThreadPoolExecutor(2) as pool:
        held: list[Future[requests.Response]] = []
        try:
            held = [pool.submit(requests.post, f"{server.url}/coco/1", data=large, timeout=TIMEOUT) for _ in range(2)]
            assert gated.wait_inside(2)  # two decoded megapixels held: the whole budget
            for body in (large, base64.b64encode(small_jpeg())):
                refused = requests.post(f"{server.url}/coco/1", data=body, timeout=TIMEOUT)
                assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
                assert "too many large images" in refused.json()["message"]
        finally:
            gated.release.set()
        assert [h.result(TIMEOUT).status_code for h in held] == [200, 200]
        again = requests.post(f"{server.url}/coco/1", data=large, timeout=TIMEOUT)
        assert again.status_code == 200  # the budget came back


@pytest.mark.slow
def test_body_bytes_in_flight_are_bounded_across_requests() -> None:
    gated = GatedDetector()
    config = ServerConfig(port=0, max_body_mb=0.2, workers=4, max_pending=8)
    assert config.max_body_bytes_in_flight == 4 * 209_715
    encoded = base64.b64encode(small_jpeg())
    body = encoded + b"\n" * (200_000 - len(encoded))  # line breaks are allowed in base64 text
    with EmbeddedServer(config, detector_factory=lambda: gated) as server, ThreadPoolExecutor(4) as pool:
        held: list[Future[requests.Response]] = []
        try:
            held = [pool.submit(requests.post, f"{server.url}/coco/1", data=body, timeout=TIMEOUT) for _ in range(4)]
            assert gated.wait_inside(4)  # 800 000 body bytes held, 38 860 left
            head = "POST /coco/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n"
            answer = exchange(server.url, head.encode())  # no body sent: refused before reading one
            assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
            assert b"too many large bodies" in answer
        finally:
            gated.release.set()
        assert [h.result(TIMEOUT).status_code for h in held] == [200] * 4
        assert requests.post(f"{server.url}/coco/1", data=body, timeout=TIMEOUT).status_code == 200


def vm_peak_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) / 1024


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS from /proc")
def test_many_small_files_declaring_huge_images_do_not_exhaust_memory() -> None:
    """16 parallel 50 KB PNGs of 49 Mpx each (every one under the 50 Mpx limit; together 2.4 Gpx).

    Decoded all at once they took the server from 270 MB to 2.3 GB; the budget of two images
    keeps its peak within the model plus two decoded images.
    """
    data = base64.b64encode(png(7000, 7000))
    process = subprocess.Popen(
        [sys.executable, "-m", "livecam", "serve", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    found: list[str] = []
    listening = threading.Event()

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            match = re.search(r"serving \S+ at (http://127\.0\.0\.1:\d+)", line)
            if match:
                found.append(match.group(1))
                listening.set()
        listening.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert listening.wait(120) and found, "livecam serve did not start"
        url = found[0]
        baseline = vm_peak_mb(process.pid)
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: requests.post(f"{url}/coco/1", data=data, timeout=120), range(16)))
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {200, 503} and 200 in statuses
        assert all(a.headers["Retry-After"] == "1" for a in answers if a.status_code == 503)
        peak = vm_peak_mb(process.pid)
        # Two decoded 49 Mpx images are 2 x 147 MB (plus each one's grey PNG rows while decoding).
        assert peak - baseline < 700, f"peak RSS {peak:.0f} MB from {baseline:.0f} MB"
        assert requests.post(f"{url}/coco/1", data=base64.b64encode(small_jpeg()), timeout=TIMEOUT).status_code == 200
    finally:
        process.terminate()
        process.wait(TIMEOUT)
        reader.join(TIMEOUT)


# --- multipart ------------------------------------------------------------------------------------


def multipart(parts: list[tuple[str, bytes]], boundary: str = "b0undary", preamble: bytes = b"") -> bytes:
    out = [preamble]
    for name, payload in parts:
        out.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x"\r\n\r\n'.encode()
            + payload
            + b"\r\n"
        )
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ServerConfig(port=0), detector_factory=FixedDetector) as running:
        yield running


def post_multipart(server: EmbeddedServer, body: bytes, content_type: str) -> requests.Response:
    return requests.post(f"{server.url}/coco/1", data=body, headers={"Content-Type": content_type}, timeout=TIMEOUT)


def test_ten_megabytes_of_tiny_parts_are_refused_after_a_few(server: EmbeddedServer) -> None:
    body = multipart([("x", b"a")] * 150_000 + [("file", small_jpeg())])
    assert len(body) > 10_000_000
    answer = post_multipart(server, body, "multipart/form-data; boundary=b0undary")
    assert answer.status_code == 400
    assert answer.json()["message"] == f"the multipart body has no 'file' part among its first {MAX_PARTS} parts"


def test_a_part_that_never_ends_is_refused(server: EmbeddedServer) -> None:
    body = b'--b0undary\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + b"x" * 10_000_000
    answer = post_multipart(server, body, "multipart/form-data; boundary=b0undary")
    assert answer.status_code == 400 and "ends inside a part" in answer.json()["message"]


def test_endless_part_headers_are_refused(server: EmbeddedServer) -> None:
    body = b"--b0undary\r\nX-Junk: " + b"y" * 5_000_000
    answer = post_multipart(server, body, "multipart/form-data; boundary=b0undary")
    assert answer.status_code == 400 and "8 KB" in answer.json()["message"]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (multipart([("file", small_jpeg())]), "multipart/form-data; boundary=b0undary"),
        (multipart([("file", small_jpeg())], "q b"), 'multipart/form-data; boundary="q b"'),
        (
            multipart([("a", b"1"), ("b", b"2"), ("file", small_jpeg())], preamble=b"ignored\r\n"),
            "multipart/form-data;boundary=b0undary",
        ),
        (
            multipart([("x", b"")] * (MAX_PARTS - 1) + [("file", small_jpeg())]),
            "multipart/form-data; boundary=b0undary",
        ),
        (
            b"--b0undary\r\nContent-Disposition: form-data; name=file\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(small_jpeg())
            + b"\r\n--b0undary--\r\n",
            "multipart/form-data; boundary=b0undary",
        ),
    ],
    ids=["plain", "quoted-boundary", "preamble-and-fields", "last-allowed-part", "base64-part"],
)
def test_well_formed_multipart_bodies_are_read(server: EmbeddedServer, body: bytes, content_type: str) -> None:
    answer = post_multipart(server, body, content_type)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0]["class"] == "person"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (multipart([("file", small_jpeg())]), "multipart/form-data", "no boundary"),
        (multipart([("file", small_jpeg())]), "multipart/form-data; boundary=other", "check its boundary"),
        (multipart([("other", small_jpeg())]), "multipart/form-data; boundary=b0undary", "no part named 'file'"),
        (multipart([("file", b"")]), "multipart/form-data; boundary=b0undary", "'file' part is empty"),
    ],
)
def test_malformed_multipart_bodies_get_400(
    server: EmbeddedServer, body: bytes, content_type: str, message: str
) -> None:
    answer = post_multipart(server, body, content_type)
    assert answer.status_code == 400 and message in answer.json()["message"]
