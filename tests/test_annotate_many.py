"""``livecam annotate IN [IN ...] -o OUTDIR/``: several videos at once against real loopback servers."""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from samples import SAMPLES
from stub_api import Reply, Seen, StubApi, one_box

from livecam.annotate.batch import expand_inputs, plan
from livecam.annotate.manifest import MANIFEST_NAME
from livecam.annotate.segments import frame_spans, join_videos
from livecam.cli.annotate import add_arguments
from livecam.cli.annotate import run as run_annotate
from livecam.display import VideoRecorder
from livecam.errors import ConfigError

KEY = "sk-many-SECRET-31"


def clip(tmp: Path, name: str, start: int, count: int, source: str = "bikes.mp4") -> Path:
    """Frames ``[start, start + count)`` of a sample video as an MJPEG .avi (real footage, quick to decode)."""
    capture = cv2.VideoCapture(str(SAMPLES / source))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    fps = capture.get(cv2.CAP_PROP_FPS)
    size = int(capture.get(3)), int(capture.get(4))
    path = tmp / name
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    for _ in range(count):
        ok, image = capture.read()
        assert ok
        writer.write(image)
    writer.release()
    capture.release()
    return path


def count_frames(path: Path) -> tuple[int, float, tuple[int, int]]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), path
    fps, size = capture.get(cv2.CAP_PROP_FPS), (int(capture.get(3)), int(capture.get(4)))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    return frames, fps, size


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def annotate(
    api: StubApi, *argv: object, stop: threading.Event | None = None, progress: io.StringIO | None = None
) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [str(a) for a in argv] + ["--api-url", api.url, "--model", "test/1", "--api-key", KEY, "--in-flight", "2"]
    )
    return run_annotate(args, {}, stop=stop, progress_stream=progress)


@pytest.fixture
def clips(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    return [clip(folder, "a.avi", 0, 30), clip(folder, "b.avi", 100, 20), clip(folder, "c.avi", 200, 25)]


def test_every_file_gets_its_own_outputs_in_order_and_the_windows_are_shared(tmp_path: Path, clips: list[Path]) -> None:
    out = tmp_path / "out"
    progress = io.StringIO()
    with StubApi(latency=0.01) as api:
        assert annotate(api, *clips, "-o", f"{out}/", "--json", progress=progress) == 0
        assert api.requests == 75
        assert api.max_concurrent <= 2, "each file opened its own window instead of sharing the server's"
    for source, frames in zip(clips, (30, 20, 25), strict=True):
        assert count_frames(out / f"{source.stem}.mp4")[::2] == (frames, (640, 272))
        assert count_frames(out / f"{source.stem}.mp4")[1] == pytest.approx(25.0)
        records = lines(out / f"{source.stem}.jsonl")
        assert [r["frame"] for r in records] == list(range(frames))
        assert all(len(r["predictions"]) == 1 for r in records)
    assert "75/75 frames" in progress.getvalue()
    assert KEY not in progress.getvalue()


def test_a_damaged_file_is_reported_and_the_others_finish(
    tmp_path: Path, clips: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    folder = clips[0].parent
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    whole = (SAMPLES / "bikes.mp4").read_bytes()
    (folder / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    cut = clip(tmp_path, "long.avi", 0, 40).read_bytes()
    (folder / "half.avi").write_bytes(cut[: len(cut) // 2])
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    with StubApi() as api:
        assert annotate(api, folder, "-o", out, "--json", "-q") == 1
    for source, frames in zip(clips, (30, 20, 25), strict=True):
        assert count_frames(out / f"{source.stem}.mp4")[0] == frames
    assert "garbage.mp4" in caplog.text and "cut.mp4" in caplog.text and "half.avi" in caplog.text
    assert "3 of 6 files annotated" in caplog.text
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["done"]) == ["a", "b", "c"]


def test_skip_done_redoes_only_what_is_missing(tmp_path: Path, clips: list[Path]) -> None:
    out = tmp_path / "out"
    with StubApi() as api:
        assert annotate(api, *clips, "-o", out, "--json", "-q") == 0
        assert api.requests == 75
        assert annotate(api, *clips, "-o", out, "--json", "-q", "--skip-done") == 0
        assert api.requests == 75, "a complete folder was annotated again"
        (out / "b.jsonl").unlink()
        assert annotate(api, *clips, "-o", out, "--json", "-q", "--skip-done") == 0
        assert api.requests == 95, "only b should have been done again"
    assert [r["frame"] for r in lines(out / "b.jsonl")] == list(range(20))


def test_ctrl_c_leaves_a_folder_that_skip_done_finishes(tmp_path: Path, clips: list[Path]) -> None:
    out = tmp_path / "out"
    stop = threading.Event()

    def stop_midway(seen: Seen) -> Reply:
        if api.requests >= 10:  # >=: two requests may arrive before either is scripted
            stop.set()
        return one_box(seen)

    with StubApi(script=stop_midway) as api:
        assert annotate(api, *clips, "-o", out, "--json", "-q", stop=stop) == 130
        api.script = one_box
        assert annotate(api, *clips, "-o", out, "--json", "-q", "--skip-done") == 0
    for source, frames in zip(clips, (30, 20, 25), strict=True):
        assert [r["frame"] for r in lines(out / f"{source.stem}.jsonl")] == list(range(frames))
        assert count_frames(out / f"{source.stem}.mp4")[0] == frames


def test_a_bad_key_stops_every_file(tmp_path: Path, clips: list[Path], caplog: pytest.LogCaptureFixture) -> None:
    with StubApi(script=lambda seen: Reply(401, {"message": "Unauthorized api_key"})) as api:
        assert annotate(api, *clips, "-o", tmp_path / "out", "-q") == 1
        assert api.requests <= 6, "files went on after the key was refused"
    assert KEY not in caplog.text


def test_inputs_from_a_glob_and_a_folder_and_clear_errors(tmp_path: Path, clips: list[Path]) -> None:
    folder = clips[0].parent
    (folder / "notes.txt").write_text("not a video")
    assert expand_inputs([folder]) == clips
    assert expand_inputs([folder / "*.avi", clips[0]]) == clips
    with pytest.raises(ConfigError, match="matches no video"):
        expand_inputs([folder / "*.mkv"])
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(clips[0], other / "a.avi")
    with pytest.raises(ConfigError, match="both write"):
        plan([clips[0], other / "a.avi"], tmp_path / "out", json=False)
    with StubApi() as api, pytest.raises(ConfigError, match="takes no name"):
        annotate(api, *clips, "-o", tmp_path / "out", "--json", tmp_path / "x.jsonl")


def test_one_input_into_an_existing_folder_is_named_after_it(tmp_path: Path, clips: list[Path]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with StubApi() as api:
        assert annotate(api, clips[1], "-o", out, "--json", "-q") == 0
    assert count_frames(out / "b.mp4")[0] == 20
    assert len(lines(out / "b.jsonl")) == 20


def test_segments_cut_at_frame_boundaries() -> None:
    assert frame_spans(None, 25.0, 10.0) == [(0, None)]
    assert frame_spans(250, 25.0, 10.0) == [(0, None)]
    assert frame_spans(250, 25.0, 4.0) == [(0, 100), (100, 200), (200, None)]
    assert frame_spans(210, 25.0, 4.0) == [(0, 100), (100, None)], "a short tail joins the segment before"
    assert frame_spans(250, 25.0, 4.0, every=3) == [(0, 99), (99, 198), (198, None)]
    with pytest.raises(ConfigError):
        frame_spans(250, 25.0, 0.0)


def test_one_input_and_outdir_with_a_slash_writes_into_the_folder(tmp_path: Path, clips: list[Path]) -> None:
    out = tmp_path / "new"
    with StubApi() as api:
        assert annotate(api, clips[2], "-o", f"{out}/", "-q") == 0
    assert count_frames(out / "c.mp4")[0] == 25


def test_ray_missing_gives_the_install_command(
    tmp_path: Path, clips: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray then fails as if not installed
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    with StubApi() as api, pytest.raises(ConfigError, match=r"pip install 'livecam\[ray\]'"):
        annotate(api, *clips, "-o", tmp_path / "out", "--ray")
    with StubApi() as api, pytest.raises(ConfigError, match="goes with --ray"):
        annotate(api, *clips, "-o", tmp_path / "out", "--segment-s", "5")


def test_a_video_name_is_refused_where_a_folder_is_needed(tmp_path: Path, clips: list[Path]) -> None:
    with StubApi() as api, pytest.raises(ConfigError, match="give -o OUTDIR/"):
        annotate(api, clips[0], "-o", tmp_path / "out.mp4", "--skip-done")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("copy", [True, False], ids=["packets copied", "encoded again"])
def test_segments_join_into_every_frame_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copy: bool) -> None:
    if copy:
        pytest.importorskip("av")
    else:
        monkeypatch.setitem(sys.modules, "av", None)
    capture = cv2.VideoCapture(str(SAMPLES / "bikes.mp4"))
    frames = [np.asarray(capture.read()[1], np.uint8) for _ in range(30)]
    capture.release()
    parts = []
    for n, chunk in enumerate((frames[:12], frames[12:20], frames[20:])):
        recorder = VideoRecorder(tmp_path / f"part{n}.mp4", 25.0, (640, 272))
        for image in chunk:
            recorder.write(image)
        recorder.close()
        parts.append(tmp_path / f"part{n}.mp4")
    singles = [image for part in parts for image in _decoded(part)]
    join_videos(parts, tmp_path / "joined.mp4", 25.0, (640, 272))
    joined = _decoded(tmp_path / "joined.mp4")
    assert len(joined) == 30
    assert count_frames(tmp_path / "joined.mp4")[1] == pytest.approx(25.0)
    if copy:
        assert all(np.array_equal(a, b) for a, b in zip(joined, singles, strict=True)), "copying changed pixels"


def _decoded(path: Path) -> list[Any]:
    capture = cv2.VideoCapture(str(path))
    images = []
    while (read := capture.read())[0]:
        images.append(read[1])
    capture.release()
    return images


def test_keyframes_are_refused_with_ray(tmp_path: Path, clips: list[Path]) -> None:
    with StubApi() as api, pytest.raises(ConfigError, match="--keyframes"):
        annotate(api, *clips, "-o", tmp_path / "out", "--ray", "--keyframes", "auto")
