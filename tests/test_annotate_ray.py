"""``annotate --ray``: real local Ray clusters on loopback, real HTTP to a stub server, sample footage."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stub_api import Reply, Seen, StubApi, one_box
from test_annotate_many import clip, count_frames

from livecam.annotate.cluster import LOOPBACK_ONLY_ENV
from livecam.annotate.manifest import MANIFEST_NAME
from livecam.cli.annotate import add_arguments
from livecam.cli.annotate import run as run_annotate

os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")  # before Ray is imported: its servers on 127.0.0.1 only
ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow
KEY = "sk-ray-SECRET-58"


def by_content(seen: Seen) -> Reply:
    """A deterministic answer that depends on the pixels sent: any frame out of place changes the JSON Lines."""
    reply = one_box(seen, f"level-{round(seen.image_mean or 0) // 4}")
    return reply


def annotate(api: StubApi, *argv: object, stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [str(a) for a in argv] + ["--api-url", api.url, "--model", "test/1", "--api-key", KEY, "-q", "--in-flight", "2"]
    )
    return run_annotate(args, {}, stop=stop)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture
def inputs(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    return [clip(folder, "street.avi", 0, 60), clip(folder, "plaza.avi", 300, 24, source="vtest.avi")]


def test_local_cluster_listens_on_loopback_only(local_ray: None) -> None:
    if shutil.which("ss") is None:
        pytest.skip("needs ss")
    listening = subprocess.run(["ss", "-tlnpH"], capture_output=True, text=True, check=True).stdout
    ours = {str(os.getpid())} | {str(p) for p in _descendants(os.getpid())}
    for line in listening.splitlines():
        if set(re.findall(r"pid=(\d+)", line)) & ours:
            local = line.split()[3]
            assert local.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")), line


def test_ray_output_is_the_plain_output_and_a_rerun_does_nothing(
    tmp_path: Path, inputs: list[Path], local_ray: None
) -> None:
    plain, spread = tmp_path / "plain", tmp_path / "ray"
    with StubApi(script=by_content) as api:
        assert annotate(api, *inputs, "-o", plain, "--json") == 0
        assert annotate(api, *inputs, "-o", spread, "--json", "--ray", "--segment-s", "1") == 0
        assert api.requests == 2 * 84
        assert annotate(api, *inputs, "-o", spread, "--json", "--ray", "--skip-done") == 0
        assert api.requests == 2 * 84, "a complete OUTDIR was annotated again"
    for source in inputs:
        name = source.stem
        assert (spread / f"{name}.jsonl").read_bytes() == (plain / f"{name}.jsonl").read_bytes()
        frames, fps, size = count_frames(spread / f"{name}.mp4")
        assert (frames, size) == count_frames(plain / f"{name}.mp4")[::2]
        assert fps == pytest.approx(count_frames(plain / f"{name}.mp4")[1])
    assert not (spread / ".livecam-parts").exists(), "segment parts left behind"
    assert sorted(json.loads((spread / MANIFEST_NAME).read_text())["done"]) == ["plaza", "street"]


def test_ctrl_c_leaves_outdir_resumable(tmp_path: Path, inputs: list[Path], local_ray: None) -> None:
    out, plain = tmp_path / "ray", tmp_path / "plain"
    stop = threading.Event()

    def stop_after_some(seen: Seen) -> Reply:
        if api.requests >= 40:  # >=: two requests may arrive before either is scripted
            stop.set()
        reply = by_content(seen)
        if stop.is_set():
            reply.delay = 5.0  # the driver sees the stop before the last tasks can finish
        return reply

    with StubApi(script=stop_after_some) as api:
        assert annotate(api, *inputs, "-o", out, "--json", "--ray", "--segment-s", "0.4", stop=stop) == 130
        api.script = by_content
        assert annotate(api, *inputs, "-o", out, "--json", "--ray", "--segment-s", "0.4") == 0
        assert annotate(api, *inputs, "-o", plain, "--json") == 0
    for source in inputs:
        assert (out / f"{source.stem}.jsonl").read_bytes() == (plain / f"{source.stem}.jsonl").read_bytes()


def test_a_worker_cannot_read_an_input(tmp_path: Path, inputs: list[Path], local_ray: None, caplog: Any) -> None:
    from livecam.annotate.batch import plan
    from livecam.annotate.cluster import SegmentTask, annotate_segment
    from livecam.annotate.engine import AnnotateOptions
    from livecam.annotate.segments import Segment
    from livecam.client import ApiConfig

    segment = Segment("gone", 0, 0, None)
    (item,) = plan([tmp_path / "gone.mp4"], tmp_path / "out", json=True)
    task = SegmentTask(
        str(item.source), segment, str(tmp_path / "p.mp4"), str(tmp_path / "p.jsonl"),
        ApiConfig("http://127.0.0.1:9", "a/1"), False, None, AnnotateOptions(), 1, False, "t", None,
    )  # fmt: skip
    done = ray.get(ray.remote(annotate_segment).remote(task))
    assert done.error is not None and "cannot read" in done.error and "every node mounts" in done.error


def test_a_node_removed_mid_run_still_gives_every_frame_once(tmp_path: Path, inputs: list[Path]) -> None:
    ray.shutdown()  # the one-node cluster of the tests above, if they ran
    cluster = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
    )
    workers = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    midway = threading.Event()

    def note_midway(seen: Seen) -> Reply:
        if api.requests >= 30:
            midway.set()
        return by_content(seen)

    def remove_a_node() -> None:
        if midway.wait(120):
            cluster.remove_node(workers[0], allow_graceful=False)

    remover = threading.Thread(target=remove_a_node, daemon=True)
    try:
        with StubApi(latency=0.02, script=note_midway) as api:
            remover.start()
            out = tmp_path / "ray"
            assert annotate(api, *inputs, "-o", out, "--json", "--ray", "--segment-s", "0.8") == 0
        remover.join(60)
        assert midway.is_set()
        for source, frames in zip(inputs, (60, 24), strict=True):
            records = [json.loads(line) for line in (out / f"{source.stem}.jsonl").read_text().splitlines()]
            assert [r["frame"] for r in records] == list(range(frames))
            assert count_frames(out / f"{source.stem}.mp4")[0] == frames
    finally:
        ray.shutdown()
        cluster.shutdown()


def _descendants(pid: int) -> set[int]:
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        child, parent = map(int, line.split())
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_without_an_api_each_node_runs_the_embedded_model(tmp_path: Path, local_ray: None) -> None:
    source = clip(tmp_path, "short.avi", 0, 6)
    out = tmp_path / "ray"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(source), "-o", f"{out}/", "--json", "--ray", "-q"])
    assert run_annotate(args, {}) == 0
    records = [json.loads(line) for line in (out / "short.jsonl").read_text().splitlines()]
    assert [r["frame"] for r in records] == list(range(6))
    assert all("predictions" in r for r in records), records[0]
    assert not [a for a in ray.util.list_named_actors(all_namespaces=True) if "livecam-model" in a["name"]]
