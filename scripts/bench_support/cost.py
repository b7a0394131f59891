"""Benchmark: what ``--send changes`` saves and what it costs in box quality.

Truth for every frame is the answer the API gives for that exact frame: a loopback detector of
coloured blobs (:mod:`blob_server`, 200 ms per answer) on a generated clip of moving objects with
still periods (:mod:`blobs`). ``livecam run --boxes-log`` records the boxes drawn on every
displayed frame; each is scored against the frame's truth (matched IoU, a missing or extra box
counting 0).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench_support import budget
from bench_support.blobs import (
    FPS,
    at_calls,
    bracketing_shares,
    detect_blobs,
    frame_score,
    mean,
    scene_frames,
    write_clip,
)
from bench_support.common import PYTHON, SAMPLES, SCRIPTS, Scale, Section, read_json, run_child, serving, table

LATENCY_MS = 200
REFRESH_S = 5.0
LENGTHS: dict[Scale, tuple[float, float, int, float]] = {
    "tiny": (0.6, 0.6, 1, 1.2),
    "quick": (3.0, 3.0, 2, 8.0),
    "full": (5.0, 5.0, 3, 20.0),
}
"""still_s, moving_s, cycles of the half-still clip; length of the all-still clip."""


@contextlib.contextmanager
def blob_server(latency_ms: float = LATENCY_MS, slots: int = 4) -> Iterator[str]:
    """The blob detector as a separate process; yields its base URL."""
    with serving(
        [
            PYTHON,
            str(SCRIPTS / "bench_support" / "blob_server.py"),
            "--latency-ms",
            f"{latency_ms:g}",
            "--slots",
            str(slots),
        ]
    ) as url:
        yield url


def truth(clip: Path) -> list[list[dict[str, Any]]]:
    """The blob detector's answer for every frame of ``clip`` as decoded."""
    capture = cv2.VideoCapture(str(clip))
    answers = []
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            answers.append(detect_blobs(np.asarray(image, np.uint8)))
    finally:
        capture.release()
    return answers


def live_run(clip: Path, url: str, send: str, work: Path, *extra: str) -> dict[str, Any]:
    """``livecam run`` of ``clip`` against ``url``; its stats and the boxes of every displayed frame."""
    stats, boxes = work / f"{send}.json", work / f"{send}.jsonl"
    command = [PYTHON, "-m", "livecam", "run", str(clip), "--headless", "--api-url", url, "--model", "blobs/1"]
    command += ["--send", send, "--stats-json", str(stats), "--boxes-log", str(boxes), *extra]
    run_child(command, timeout_s=600)
    lines = [json.loads(line) for line in boxes.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"stats": read_json(stats), "boxes": lines}


def score(lines: Sequence[dict[str, Any]], answers: Sequence[list[dict[str, Any]]]) -> float:
    """Mean per-frame score of the boxes drawn against the truth of each displayed frame."""
    return mean(
        [frame_score(answers[line["frame"]], line["predictions"]) for line in lines if line["frame"] < len(answers)]
    )


def first_boxed(lines: Sequence[dict[str, Any]], name: str, since: int) -> int | None:
    """The first displayed frame at or after ``since`` with a ``name`` box drawn."""
    for line in lines:
        if line["frame"] >= since and any(p["class"] == name for p in line["predictions"]):
            return int(line["frame"])
    return None


def run(scale: Scale) -> Section:
    still_s, moving_s, cycles, still_only_s = LENGTHS[scale]
    section = Section("Cost: --send changes against --send every")
    with tempfile.TemporaryDirectory() as tmp, blob_server() as url:
        work = Path(tmp)
        half = work / "half-still.avi"
        write_clip(half, scene_frames(still_s=still_s, moving_s=moving_s, cycles=cycles))
        answers = truth(half)
        rows = []
        data: dict[str, Any] = {}
        for send in ("every", "changes"):
            result = live_run(half, url, send, work)
            stats = result["stats"]
            data[send] = {
                "calls": stats["requests_sent"],
                "iou": score(result["boxes"], answers),
                "display": stats["displayed_frames"] / max(1, stats["source_frames"]),
                "skipped": stats["requests_skipped"],
                "credits": stats["estimated_credits"],
            }
            d = data[send]
            rows.append([send, d["calls"], d["iou"], d["display"], d["credits"]])
        fewer = data["every"]["calls"] / max(1, data["changes"]["calls"])
        section.tables.append(
            table(["--send", "calls", "mean IoU vs truth", "display/source", "estimated credits"], rows)
        )
        section.notes.append(
            f"Half-still clip ({cycles} x {still_s:g} s still + {moving_s:g} s moving at {FPS:g} fps, {LATENCY_MS} ms "
            f"answers): changes makes {fewer:.1f}x fewer calls; mean IoU {data['changes']['iou']:.3f} against "
            f"{data['every']['iou']:.3f} (targets: >= 3x fewer, IoU within 0.03)."
        )
        still = work / "still.avi"
        appear_at = round(still_only_s * FPS / 2)
        write_clip(still, scene_frames(still_s=still_only_s, moving_s=0, cycles=1, appear_at=appear_at))
        result = live_run(still, url, "changes", work, "--refresh", f"{REFRESH_S:g}")
        stats = result["stats"]
        allowed = 1 + int(stats["duration_s"] // REFRESH_S) + 1  # the first call, one per period, the appearance
        seen = first_boxed(result["boxes"], "blue", appear_at)
        round_trip_frames = LATENCY_MS / 1000 * FPS
        data["still"] = {
            "calls": stats["requests_sent"],
            "allowed": allowed,
            "appear_at": appear_at,
            "boxed_at": seen,
            "delay_frames": None if seen is None else seen - appear_at,
        }
        section.tables.append(
            table(
                ["still scene", "calls", "allowed (1 + one per refresh + the new object)", "new object boxed after"],
                [
                    [
                        f"{still_only_s:g} s, --refresh {REFRESH_S:g}",
                        stats["requests_sent"],
                        allowed,
                        "never" if seen is None else f"{seen - appear_at} frames",
                    ]
                ],
            )
        )
        section.notes.append(
            f"An object appearing in a still scene must be boxed within one round trip + 2 frames "
            f"({round_trip_frames:.0f} + 2 frames at {FPS:g} fps)."
        )
        section.data = data
        run_annotate(scale, section, url, work)
    if scale != "tiny":
        budget_table, section.data["budget"] = budget.run(scale)
        section.tables.append(budget_table)
    return section


def annotate_run(video: Path, work: Path, name: str, *flags: str) -> list[dict[str, Any]]:
    """``livecam annotate`` of ``video`` with ``flags``; its JSON lines."""
    jsonl = work / f"{name}.jsonl"
    command = [PYTHON, "-m", "livecam", "annotate", str(video), "-o", str(work / f"{name}.mp4"), "--json", str(jsonl)]
    run_child([*command, "-q", *flags], timeout_s=1200)
    return [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]


def calls_of(lines: Sequence[dict[str, Any]]) -> int:
    """Frames whose own image was sent."""
    return sum(1 for line in lines if "from_keyframes" not in line and "from_frame" not in line)


def annotate_score(lines: Sequence[dict[str, Any]], truth: Sequence[Sequence[dict[str, Any]]]) -> float:
    return mean([frame_score(truth[line["frame"]], line.get("predictions", [])) for line in lines])


def keyframes_rows(
    video: Path, work: Path, label: str, truth: Sequence[Sequence[dict[str, Any]]], api: Sequence[str]
) -> tuple[list[list[Any]], dict[str, Any]]:
    """``--keyframes auto`` against ``--every N`` at the two N around its number of calls (and the
    score ``--every`` would have at exactly its calls, on the line between them), and ``--keyframes N``."""
    slug = label.replace(" ", "-").replace(".", "-")
    auto = annotate_run(video, work, f"{slug}-auto", "--keyframes", "auto", *api)
    calls = calls_of(auto)
    more, fewer = bracketing_shares(len(truth), calls)
    rows: list[list[Any]] = [[label, "--keyframes auto", calls, calls / len(truth), annotate_score(auto, truth)]]
    data: dict[str, Any] = {"frames": len(truth), "auto": {"calls": calls, "iou": rows[0][-1]}}
    runs = [("--every", n) for n in sorted({more, fewer})] + [("--keyframes", round(len(truth) / max(1, calls)))]
    for flag, n in runs:
        lines = annotate_run(video, work, f"{slug}{flag}{n}", flag, str(n), *api)
        rows.append([label, f"{flag} {n}", calls_of(lines), calls_of(lines) / len(truth), annotate_score(lines, truth)])
        data[f"{flag.strip('-')}_{n}"] = {"calls": rows[-1][2], "iou": rows[-1][-1]}
    points = [(row[2], row[-1]) for row in rows if str(row[1]).startswith("--every")]
    same = at_calls(calls, points if len(points) == 2 else points * 2)
    data["every_at_same_calls"] = same
    data["gain"] = rows[0][-1] - same
    rows.append([label, f"--every at {calls} calls (on the line between the two)", calls, calls / len(truth), same])
    return rows, data


def run_annotate(scale: Scale, section: Section, url: str, work: Path) -> None:
    """The annotate half: keyframes on the generated clip (blob truth) and the sample footage (model truth)."""
    still_s, moving_s, cycles, _ = LENGTHS[scale]
    clip = work / "keyframes.avi"
    write_clip(clip, scene_frames(still_s=still_s, moving_s=moving_s, cycles=cycles))
    api = ["--api-url", url, "--model", "blobs/1"]
    every_frame = annotate_run(clip, work, "clip-all", *api)
    truth = [line.get("predictions", []) for line in every_frame]
    rows, data = keyframes_rows(clip, work, "generated clip", truth, api)
    rows.insert(0, ["generated clip", "every frame", len(truth), 1.0, annotate_score(every_frame, truth)])
    sample = SAMPLES / "bikes.mp4"
    if scale != "tiny":
        model_truth = [line.get("predictions", []) for line in annotate_run(sample, work, "bikes-all")]
        more, sample_data = keyframes_rows(sample, work, "bikes.mp4", model_truth, [])
        rows += more
        data["bikes"] = sample_data
        consistency = mean([frame_score(model_truth[i], model_truth[i - 1]) for i in range(1, len(model_truth))])
        data["bikes"]["frame_to_frame"] = consistency
        section.notes.append(
            f"On bikes.mp4 the truth is the embedded model's answer for each frame; its answer for one frame "
            f"scores {consistency:.2f} against the next frame's (detections under 0.6 come and go from frame to "
            "frame); placed boxes interpolate their confidence between keyframes, so they follow that only on average."
        )
    section.tables.append(table(["footage", "annotate", "calls", "share of frames", "mean IoU vs truth"], rows))
    section.data["annotate"] = data
