"""Roboflow's own client packages (inference-sdk, roboflow) against livecam's server.

They run in the separate environment made by ``tests/peers/setup.sh`` (their OpenCV pin
conflicts with livecam's).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
from samples import sample_frame

from livecam.server import EmbeddedServer, ServerConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
KEY = "peer-test-key"

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not PEER_PYTHON.exists(), reason="no .venv-peers: run tests/peers/setup.sh to create it"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ServerConfig(port=0, api_key=KEY, max_pending=4)) as running:
        yield running


@pytest.fixture(scope="module")
def plaza_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = sample_frame("vtest.avi", 100)
    path = tmp_path_factory.mktemp("peers") / "plaza.jpg"
    cv2.imwrite(str(path), image)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sdk", "sdk-v0", "roboflow"])
def test_roboflow_clients_see_people(server: EmbeddedServer, plaza_jpeg: Path, mode: str) -> None:
    done = subprocess.run(
        [str(PEER_PYTHON), str(HERE / "peer_client.py"), mode, server.url, str(plaza_jpeg), KEY],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    people = [p for p in answer["predictions"] if p["class"] == "person"]
    assert len(people) >= 2, answer
    for p in people:
        assert 0 < p["x"] < 768 and 0 < p["y"] < 576 and p["confidence"] >= 0.4
    if mode != "roboflow":
        assert answer["image"] == {"width": 768, "height": 576}
