"""``livecam upload`` against a loopback stub of Roboflow's upload and annotate routes."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hostile_upload import HostileServer, run_measured
from roboflow_stub import Received, RoboflowStub
from samples import sample_frame

from livecam.backoff import Backoff
from livecam.cli import build_parser
from livecam.cli import upload as upload_command
from livecam.collect import CollectConfig, Collector, items
from livecam.errors import LivecamError
from livecam.frames import Frame
from livecam.predictions import Prediction, Predictions
from livecam.upload import (
    JOURNAL_NAME,
    Journal,
    RoboflowUploadApi,
    UploadError,
    UploadOptions,
    UploadTarget,
    upload_folder,
)

KEY = "rf_UPLOADKEY_5566778899"


def collect(directory: Path, count: int, *, boxes: bool = True) -> list[str]:
    """``count`` items collected from distinct bikes.mp4 frames by the real collector."""
    config = CollectConfig(
        directory, strategies=("random",), random_share=1.0, max_per_minute=0, max_per_hour=0, queue=count
    )
    collector = Collector(config, source="sample_videos/bikes.mp4", model_id="birds/2")
    assert collector.start()
    for n in range(count):
        found = (Prediction(20, 30, 200, 250, 0.5, "bicycle"),) if boxes and n % 3 != 2 else ()
        collector.offer(Frame(n, sample_frame("bikes.mp4", n * 10), float(n)), Predictions(items=found))
    collector.close()
    stems = [item.stem for item in items(directory)]
    assert len(stems) == count
    return stems


def upload(directory: Path, stub: RoboflowStub, *extra: str, key: str = KEY) -> int:
    args = build_parser().parse_args(
        ["upload", str(directory), "--project", "birds", "--api-url", stub.url, "-q", *extra]
    )
    return upload_command.run(args, {"ROBOFLOW_API_KEY": key}, progress_stream=io.StringIO())


def uploads(stub: RoboflowStub) -> list[Received]:
    return [r for r in stub.requests if r.path.endswith("/upload")]


def test_each_image_goes_up_then_its_prelabel_as_a_prediction(tmp_path: Path) -> None:
    stems = collect(tmp_path, 3)
    with RoboflowStub(KEY) as stub:
        assert upload(tmp_path, stub, "--split", "valid", "--batch", "lobby", "--tag", "t1", "--tag", "t2") == 0
        assert len(stub.images) == 3
        first = uploads(stub)[0]
        assert first.path == "/dataset/birds/upload"
        assert first.query == {"api_key": [KEY], "batch": ["lobby"], "tag": ["t1", "t2"]}
        assert [p.name for p in first.parts] == ["name", "split", "file", "metadata"]
        file = first.parts[2]
        assert (file.filename, file.content_type) == (f"{stems[0]}.jpg", "image/jpeg")
        assert file.data == (tmp_path / f"{stems[0]}.jpg").read_bytes()
        image = stub.by_id("img0001")
        assert image.split == "valid" and image.tags == ["t1", "t2"]
        assert image.metadata["strategies"] == "random" and image.metadata["model"] == "birds/2"
        annotated = [i for i in stub.images.values() if i.annotations]
        assert len(annotated) == 2  # the third item had no boxes: its image goes up alone
        note = annotated[0].annotations[0]
        assert note["prediction"] == ["true"] and note["labelmap"] is None
        assert note["name"] == f"{stems[0]}.xml"
        assert ET.fromstring(note["annotationFile"]).findtext("object/name") == "bicycle"
        annotate = next(r for r in stub.requests if "/annotate/" in r.path)
        assert annotate.query["jobName"] == ["lobby"] and annotate.content_type == "application/json"
        sent = len(stub.requests)
        assert upload(tmp_path, stub) == 0  # a rerun finds everything done
        assert len(stub.requests) == sent
    journal = (tmp_path / JOURNAL_NAME).read_text()
    assert KEY not in journal and journal.count('"step": "done"') == 3


def test_transient_failures_are_retried_with_backoff(tmp_path: Path) -> None:
    collect(tmp_path, 2)
    failures = {"left": 2}

    def flaky(received: Received) -> tuple[int, object] | None:
        if received.path.endswith("/upload") and failures["left"] > 0:
            failures["left"] -= 1
            return 503, {"message": "busy"}
        return None

    options = UploadOptions(backoff=Backoff(initial=0.01, maximum=0.02))
    with RoboflowStub(KEY) as stub, Journal(tmp_path) as journal:
        stub.script = flaky
        api = RoboflowUploadApi(UploadTarget(stub.url, "birds", KEY))
        result = upload_folder(tmp_path, api, options, journal, threading.Event())
        api.close()
        assert (result.uploaded, result.failed, result.stopped) == (2, (), None)
        assert len(uploads(stub)) == 4 and stub.uploads_stored == 2


def test_an_outage_stops_the_run_and_a_rerun_continues(tmp_path: Path) -> None:
    collect(tmp_path, 3)
    options = UploadOptions(attempts=2, backoff=Backoff(initial=0.01, maximum=0.02))
    with RoboflowStub(KEY) as stub:
        stub.script = lambda r: (502, {}) if r.path.endswith("/upload") and stub.uploads_stored >= 1 else None
        with Journal(tmp_path) as journal:
            api = RoboflowUploadApi(UploadTarget(stub.url, "birds", KEY))
            result = upload_folder(tmp_path, api, options, journal, threading.Event())
            api.close()
        assert result.uploaded == 1 and result.stopped is not None and "HTTP 502" in result.stopped
        stub.script = None
        assert upload(tmp_path, stub) == 0
        assert stub.uploads_stored == 3


def test_a_refused_key_stops_at_once_with_one_clear_message(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    collect(tmp_path, 3)
    with RoboflowStub("the-right-key") as stub, caplog.at_level(logging.INFO):
        assert upload(tmp_path, stub) == 1
        assert len(stub.requests) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "refused the API key (HTTP 401" in errors[0]
    assert KEY not in caplog.text
    assert (tmp_path / JOURNAL_NAME).read_text() == ""


def test_an_unknown_project_stops_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    collect(tmp_path, 2)
    with RoboflowStub(KEY, projects=("other",)) as stub, caplog.at_level(logging.ERROR):
        assert upload(tmp_path, stub) == 1
        assert len(stub.requests) == 1
    assert "project 'birds' not found (HTTP 404" in caplog.text


def test_bad_usage_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    from livecam.errors import ConfigError

    collect(tmp_path, 1)
    with RoboflowStub(KEY) as stub:
        with pytest.raises(ConfigError, match="needs a Roboflow API key"):
            upload(tmp_path, stub, key="")
        with pytest.raises(ConfigError, match="is not a folder"):
            upload(tmp_path / "missing", stub)
        with Journal(tmp_path), pytest.raises(ConfigError, match="another livecam upload"):
            upload(tmp_path, stub)
        assert stub.requests == []


def test_a_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    stems = collect(tmp_path, 2)
    done = {"project": "birds", "item": stems[0], "step": "done"}
    (tmp_path / JOURNAL_NAME).write_text(json.dumps(done) + "\n" + '{"project": "birds", "item": "')
    with RoboflowStub(KEY) as stub:
        assert upload(tmp_path, stub) == 0
        assert [i.name for i in stub.images.values()] == [f"{stems[1]}.jpg"]
    lines = (tmp_path / JOURNAL_NAME).read_text().splitlines()
    assert json.loads(lines[-1]) == {"project": "birds", "item": stems[1], "step": "done"}


def livecam_upload(directory: Path, stub: RoboflowStub) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "livecam", "upload", str(directory), "--project", "birds", "--api-url", stub.url],
        env={"PATH": "/usr/bin:/bin", "ROBOFLOW_API_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [5, 4], ids=["during-an-image", "during-a-prelabel"])
def test_sigkill_mid_run_then_a_rerun_uploads_every_image_exactly_once(tmp_path: Path, kill_at: int) -> None:
    stems = collect(tmp_path, 5)
    with RoboflowStub(KEY) as stub:
        stub.block_at(kill_at)  # handled by the stub, never answered: the worst moment to die
        proc = livecam_upload(tmp_path, stub)
        try:
            assert stub.blocked.wait(60), proc.communicate(timeout=30)
            proc.send_signal(signal.SIGKILL)
            _, first_err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        stub.release.set()
        assert proc.returncode == -signal.SIGKILL
        assert stub.uploads_stored < 5
        rerun = livecam_upload(tmp_path, stub)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert stub.uploads_stored == 5  # each image stored once: the repeat was answered "duplicate"
        assert sorted(i.name for i in stub.images.values()) == sorted(f"{s}.jpg" for s in stems)
        boxed = [i for i in stub.images.values() if i.metadata.get("frame") in (0, 1, 3, 4)]
        assert all(len(i.annotations) == 1 for i in boxed) and len(boxed) == 4
    for text in (first_err, err, (tmp_path / JOURNAL_NAME).read_text()):
        assert KEY not in text


# --- a hostile server, signals, hostile files ---------------------------------------------------


def upload_command_line(directory: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "livecam", "upload", str(directory), "--project", "birds", "--api-url", url]


ENV = {"PATH": "/usr/bin:/bin", "ROBOFLOW_API_KEY": KEY}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["huge", "bomb"], ids=["1GiB-answer", "gzip-bomb"])
def test_a_huge_or_inflating_answer_is_refused_in_bounded_memory(tmp_path: Path, mode: str) -> None:
    collect(tmp_path, 1)
    with HostileServer([mode]) as server:  # the retry gets a normal answer
        status, _, err, rss_mb = run_measured(upload_command_line(tmp_path, server.url), ENV)
    assert status == 0, err
    assert "over 1 MB" in err and "Traceback" not in err and KEY not in err
    assert rss_mb < 200, f"peak RSS {rss_mb:.0f} MB"
    assert server.bytes_sent < 256 << 20


@pytest.mark.slow
def test_a_dripping_server_is_held_to_the_total_deadline(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8 not much of a jpeg")
    with HostileServer(["drip"], drip_s=2.0) as server:
        api = RoboflowUploadApi(UploadTarget(server.url, "birds", KEY, read_timeout=10, total_timeout=3))
        with pytest.raises(UploadError, match="did not finish answering within 3 s") as info:
            api.upload_image("a.jpg", image.read_bytes(), split="train", batch="b", tags=(), metadata={})
        api.close()
    assert info.value.retryable and KEY not in str(info.value)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_the_first_signal_stops_a_held_call_with_the_journal_consistent(tmp_path: Path, signum: int) -> None:
    stems = collect(tmp_path, 3)
    with RoboflowStub(KEY) as stub:
        stub.block_at(2)  # the first pre-label: handled by the stub, never answered
        proc = subprocess.Popen(
            upload_command_line(tmp_path, stub.url), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert stub.blocked.wait(60), proc.communicate(timeout=30)
            proc.send_signal(signum)
            _, err = proc.communicate(timeout=30)  # the server would hold the call for ever
        finally:
            proc.kill()
        stub.release.set()
        assert proc.returncode == 130, err
        assert "interrupted; run the same command again to continue" in err and "Traceback" not in err
        lines = [json.loads(line) for line in (tmp_path / JOURNAL_NAME).read_text().splitlines()]
        assert lines == [{"project": "birds", "item": stems[0], "step": "image", "id": "img0001"}]
        assert upload(tmp_path, stub) == 0
        assert stub.uploads_stored == 3 and all(len(i.annotations) <= 1 for i in stub.images.values())
    assert KEY not in err


def link_outside(tmp_path: Path, target: Path) -> Path:
    secret = tmp_path.parent / f"{tmp_path.name}-outside" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot for upload\n")
    target.unlink()
    target.symlink_to(secret)
    return secret


@pytest.mark.parametrize("suffix", [".jpg", ".xml", ".livecam.json"])
def test_files_that_are_links_are_refused(tmp_path: Path, suffix: str, caplog: pytest.LogCaptureFixture) -> None:
    directory = tmp_path / "collected"
    stems = collect(directory, 2)
    link_outside(directory, directory / f"{stems[0]}{suffix}")
    with RoboflowStub(KEY) as stub, caplog.at_level(logging.WARNING):
        assert upload(directory, stub) == 1
        assert [i.name for i in stub.images.values()] == [f"{stems[1]}.jpg"]
        assert not any(b"PRIVATE KEY" in r.body for r in stub.requests)
    assert f"{stems[0]}{suffix} is a symbolic link; refused" in caplog.text


def test_a_malformed_sidecar_is_a_clear_error_naming_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stems = collect(tmp_path, 3)
    (tmp_path / f"{stems[0]}.livecam.json").write_text("[" * 100_000)
    (tmp_path / f"{stems[1]}.livecam.json").write_text('{"source": ')
    with RoboflowStub(KEY) as stub, caplog.at_level(logging.WARNING):
        assert upload(tmp_path, stub) == 1
        assert [i.name for i in stub.images.values()] == [f"{stems[2]}.jpg"]
    assert f"{stems[0]}.livecam.json is nested too deeply to be a sidecar" in caplog.text
    assert f"{stems[1]}.livecam.json is not valid JSON" in caplog.text


def test_a_malformed_journal_line_stops_before_anything_is_sent(tmp_path: Path) -> None:
    stems = collect(tmp_path, 2)
    done = json.dumps({"project": "birds", "item": stems[0], "step": "done"})
    (tmp_path / JOURNAL_NAME).write_text("[" * 100_000 + "\n" + done + "\n")
    with RoboflowStub(KEY) as stub:
        status, _, err, _ = run_measured(upload_command_line(tmp_path, stub.url), ENV)
        assert stub.requests == []
    assert status == 2, err
    assert f"{tmp_path / JOURNAL_NAME} has a line that is not an entry (line 1)" in err
    assert "Traceback" not in err


def test_a_journal_that_is_a_link_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "collected"
    collect(directory, 1)
    (directory / JOURNAL_NAME).symlink_to(tmp_path / "elsewhere.jsonl")
    with RoboflowStub(KEY) as stub, pytest.raises(LivecamError, match="it is a symbolic link"):
        upload(directory, stub)
    assert not (tmp_path / "elsewhere.jsonl").exists()
