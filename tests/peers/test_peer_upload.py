"""Roboflow's own ``roboflow`` package and ``livecam upload`` send an item the same way.

The same collected image and pre-label go to the same loopback stub of Roboflow's upload and
annotate routes, once from the real package (in the peer environment, pointed at the stub by its
``API_URL`` setting) and once from livecam; the requests must have the same shape.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from roboflow_stub import Received, RoboflowStub
from samples import sample_frame

from livecam.cli import build_parser
from livecam.cli import upload as upload_command
from livecam.collect import CollectConfig, Collector, items
from livecam.frames import Frame
from livecam.predictions import Prediction, Predictions
from livecam.upload.runner import _metadata

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
KEY = "peer-upload-key"

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not PEER_PYTHON.exists(), reason="no .venv-peers: run tests/peers/setup.sh to create it"),
]


def shape(request: Received) -> dict[str, object]:
    """What must match: route, query, body type, form fields with their file names and types, the JSON keys."""
    data: dict[str, object] = {
        "path": request.path.rsplit("/", 1)[0] if "/annotate/" in request.path else request.path,
        "query": {k: v for k, v in request.query.items()},
        "content_type": request.content_type,
    }
    if request.parts:
        data["parts"] = [(p.name, p.filename, p.content_type) for p in request.parts]
        data["data"] = {p.name: p.data for p in request.parts}
    else:
        data["json"] = request.json()
    return data


def test_livecam_sends_what_the_roboflow_package_sends(tmp_path: Path) -> None:
    collected = tmp_path / "collected"
    collector = Collector(
        CollectConfig(collected, strategies=("low-confidence",)), source="sample_videos/vtest.avi", model_id="birds/4"
    )
    assert collector.start()
    person = Prediction(100, 120, 180, 330, 0.42, "person")
    collector.offer(Frame(3, sample_frame("vtest.avi", 100), 0.0), Predictions(items=(person,)))
    collector.close()
    (item,) = items(collected)
    assert item.annotation is not None
    metadata = json.dumps(_metadata(item))
    with RoboflowStub(KEY) as stub:
        env = {**os.environ, "API_URL": stub.url, "HOME": str(tmp_path)}
        done = subprocess.run(
            [
                str(PEER_PYTHON),
                str(HERE / "peer_upload.py"),
                str(item.image),
                str(item.annotation),
                "birds",
                "valid",
                "week-1",
                "lobby",
                metadata,
                KEY,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        theirs = list(stub.requests)
        assert len(theirs) == 2 and len(stub.images) == 1
        stub.images.clear()  # so livecam's upload is stored as new, not answered as a duplicate
        args = build_parser().parse_args(
            ["upload", str(collected), "--project", "birds", "--api-url", stub.url, "-q"]
            + ["--split", "valid", "--batch", "week-1", "--tag", "lobby"]
        )
        assert upload_command.run(args, {"ROBOFLOW_API_KEY": KEY}, progress_stream=io.StringIO()) == 0
        ours = stub.requests[2:]
    assert len(ours) == 2
    for mine, reference in zip(ours, theirs, strict=True):
        assert shape(mine) == shape(reference)
    assert ours[1].json()["annotationFile"] == item.annotation.read_text()
