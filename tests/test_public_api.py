"""The Python API as a user reaches it: only ``import livecam``, and every README "Use from Python" snippet run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from stub_api import Reply, Seen, StubApi

import livecam

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_videos"
SNIPPET_TIMEOUT_S = 300


def readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Use from Python")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=SNIPPET_TIMEOUT_S
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "sample_videos").symlink_to(SAMPLES)
    return tmp_path


def test_the_readme_has_the_snippets() -> None:
    snippets = readme_snippets()
    assert len(snippets) >= 4
    for call in ("livecam.serve()", "livecam.run(", "livecam.stream(", "livecam.annotate("):
        assert any(call in snippet for snippet in snippets), call


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(readme_snippets())))
def test_every_readme_snippet_runs(workdir: Path, index: int) -> None:
    result = run_python(readme_snippets()[index], workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    if (workdir / "stats.json").exists():
        stats = json.loads((workdir / "stats.json").read_text())
        assert stats["displayed_frames"] >= 1 and stats["servers"][0]["url"].startswith("http://127.0.0.1:")
    if (workdir / "bikes.jsonl").exists():
        lines = (workdir / "bikes.jsonl").read_text().splitlines()
        assert [json.loads(line)["frame"] for line in lines] == list(range(250))


def test_import_loads_neither_opencv_nor_onnxruntime(tmp_path: Path) -> None:
    code = (
        "import sys, livecam\n"
        "assert 'cv2' not in sys.modules and 'onnxruntime' not in sys.modules, sorted(sys.modules)\n"
        "livecam.Predictions\n"
        "assert 'cv2' not in sys.modules\n"
        "livecam.draw\n"
        "assert 'onnxruntime' not in sys.modules\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr


def test_every_exported_name_resolves() -> None:
    import livecam.annotate.engine  # the subpackage named like the function

    for name in livecam.__all__:
        assert getattr(livecam, name) is not None
    assert callable(livecam.annotate) and livecam.annotate.__module__ == "livecam.public.annotate"
    with pytest.raises(AttributeError, match="no_such_thing"):
        getattr(livecam, "no_such_thing")  # noqa: B009


@pytest.mark.parametrize(
    ("call", "error", "named"),
    [
        (lambda: livecam.run("synthetic:64x48@10", max_frame=5), TypeError, "max_frame"),
        (lambda: livecam.run("synthetic:64x48@10", confidence=250), ValueError, "confidence"),
        (lambda: livecam.run("synthetic:64x48@10", max_frames="ten"), ValueError, "max_frames"),
        (lambda: livecam.stream("synthetic:64x48@10", in_flight=0), ValueError, "in_flight"),
        (lambda: livecam.Client("http://127.0.0.1:9", model="m/1", overlapp=3), TypeError, "overlapp"),
        (lambda: livecam.annotate(SAMPLES / "bikes.mp4", "x.mp4", jpeg_quality=0), ValueError, "jpeg_quality"),
        (lambda: livecam.annotate(SAMPLES / "bikes.mp4", "x.mp4", keyframes=1), ValueError, "keyframes"),
        (lambda: livecam.annotate(SAMPLES / "bikes.mp4", "x.mp4", keyframes="often"), ValueError, "keyframes"),
        (
            lambda: livecam.draw(np.zeros((8, 8, 3), np.uint8), livecam.Predictions(), labels="size"),
            ValueError,
            "labels",
        ),
    ],
)
def test_a_wrong_keyword_or_value_is_named(call: object, error: type[Exception], named: str) -> None:
    assert callable(call)
    with pytest.raises(error, match=named):
        call()


def test_settings_that_cannot_work_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(livecam.ConfigError, match="needs --model"):
        livecam.run("synthetic:64x48@10", api_url="http://127.0.0.1:9", max_frames=1)
    with pytest.raises(livecam.ConfigError, match="does not exist"):
        livecam.run("synthetic:64x48@10", stats_json=tmp_path / "missing" / "stats.json")
    with pytest.raises(livecam.ConfigError, match="does not exist"):
        livecam.annotate(tmp_path / "missing.mp4", tmp_path / "out.mp4")


def test_draw_returns_a_new_image_and_leaves_the_input() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    predictions = livecam.Predictions.from_roboflow(
        {"predictions": [{"x": 80, "y": 60, "width": 40, "height": 30, "confidence": 0.9, "class": "cat"}]},
        image_size=(160, 120),
    )
    picture = livecam.draw(image, predictions)
    assert picture is not image and picture.any() and not image.any()
    assert livecam.draw(image, predictions, labels=False).any()


def test_predictions_round_trip_and_to_supervision() -> None:
    answer = {
        "image": {"width": 160, "height": 120},
        "predictions": [
            {"x": 80, "y": 60, "width": 40, "height": 30, "confidence": 0.9, "class": "cat", "class_id": 15},
            {"x": 20, "y": 20, "width": 10, "height": 10, "confidence": 0.5, "class": "dog"},
        ],
    }
    predictions = livecam.Predictions.from_roboflow(answer, image_size=(160, 120))
    again = livecam.Predictions.from_roboflow(predictions.to_roboflow(), image_size=(160, 120))
    assert again.items == predictions.items
    detections = predictions.to_supervision()
    assert detections.xyxy.tolist() == [[60, 45, 100, 75], [15, 15, 25, 25]]
    assert detections.class_id is not None and detections.class_id.tolist()[0] == 15
    assert list(detections.data["class_name"]) == ["cat", "dog"] and detections.tracker_id is None
    assert len(livecam.Predictions().to_supervision()) == 0


def test_to_supervision_without_supervision_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['supervision'] = None\n"
        "import livecam\n"
        "try:\n"
        "    livecam.Predictions().to_supervision()\n"
        "except ImportError as exc:\n"
        "    assert 'pip install supervision' in str(exc), exc\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr


def test_a_client_reads_an_image_path_and_says_when_it_is_not_one(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("not an image")
    client = livecam.Client("http://127.0.0.1:9", model="m/1")
    with client, pytest.raises(ValueError, match="not an image"):
        client.infer(tmp_path / "notes.jpg")
    with pytest.raises(ValueError, match="does not exist"):
        client.infer(tmp_path / "missing.jpg")


def livecam_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("livecam")]


def test_breaking_out_of_a_stream_stops_every_thread() -> None:
    before = livecam_threads()
    frames = livecam.stream("synthetic:64x48@30", motion=False)
    indices = []
    for shown in frames:
        assert shown.image.shape == (48, 64, 3) and shown.skipped >= 0
        indices.append(shown.index)
        if len(indices) == 5:
            break
    frames.close()  # what leaving the loop does once nothing refers to the iterator
    assert indices == sorted(set(indices))
    assert livecam_threads() == before


def test_a_stream_ends_with_its_source_and_accounts_for_every_displayed_frame() -> None:
    seen: list[int] = []
    skipped = 0
    for shown in livecam.stream(str(SAMPLES / "bikes.mp4"), max_frames=30, motion=False):
        seen.append(shown.index)
        skipped = shown.skipped
    assert seen == sorted(set(seen)) and seen[0] >= 0 and seen[-1] <= 29
    assert len(seen) + skipped <= 30


def test_a_stream_of_several_sources_says_whose_frame_each_is() -> None:
    sources = ["synthetic:64x48@30:12", "synthetic:80x60@30:12"]
    seen: dict[int, list[int]] = {0: [], 1: []}
    for shown in livecam.stream(sources, api_url="http://127.0.0.1:9", model="t/1", motion=False):
        assert shown.image.shape[1] == (64 if shown.camera == 0 else 80)
        seen[shown.camera].append(shown.index)
    for indices in seen.values():
        assert indices and indices == sorted(set(indices)) and indices[-1] <= 11


def test_run_takes_several_sources_and_reports_each_camera() -> None:
    stats = livecam.run(["synthetic:64x48@30:8", "synthetic:64x48@30:8"], api_url="http://127.0.0.1:9", model="t/1")
    assert stats.cameras is not None and len(stats.cameras) == 2
    assert stats.source_frames == 16


def test_annotate_places_the_frames_between_keyframes(tmp_path: Path) -> None:
    asked: list[str] = []

    def one_person(seen: Seen) -> Reply:
        asked.append(seen.query["confidence"])
        return Reply(
            body={
                "predictions": [{"x": 320, "y": 136, "width": 60, "height": 120, "confidence": 0.9, "class": "person"}]
            }
        )

    jsonl = tmp_path / "out.jsonl"
    with StubApi(script=one_person) as api:
        result = livecam.annotate(
            SAMPLES / "bikes.mp4", tmp_path / "out.mp4", json=jsonl, keyframes=25, api_url=api.url, model="test/1"
        )
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert result.frames_written == len(records) == 250
    assert result.sent == len(asked) < 250 and set(asked) == {"20"}  # keyframes only, asked down to 0.20
    placed = [r for r in records if "from_keyframes" in r]
    keys = {r["frame"] for r in records if "from_keyframes" not in r}
    assert len(keys) == result.sent and all(r["from_keyframes"][0] in keys for r in placed)
    assert any(p["class"] == "person" for r in placed for p in r["predictions"])  # carried where its flow held
