"""Benchmark: boxes that follow objects between answers (``--motion on`` vs ``off``).

(a) A generated clip of textured squares that bounce off the edges and circle, 150-400 px/s at
720p, with the true box of every object in every frame, against a loopback Roboflow-format API
that really finds them in the JPEG it is sent (by colour) and answers after 200, 500 and
1000 ms. (b) The sample footage, where the truth of each frame is the embedded model's own
answer for it (``livecam annotate --json``); the API recognises which frame it was sent (by a
small thumbnail) and answers with that frame's truth after the same delays. Each run writes
``--boxes-log``; the score is the mean IoU of the drawn boxes against the truth of the frame they
were drawn on. Also: display/source and the motion thread's cost per frame at 720p and 1080p.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import tempfile
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bench_support.common import PYTHON, SAMPLES, Scale, Section, read_json, run_child, table

FPS = 30.0
LATENCIES_MS = (200, 500, 1000)
IOU_TARGET, GAIN_TARGET, DISPLAY_TARGET, COST_TARGET_MS = 0.7, 2.0, 0.98, 4.0

TruthBox = tuple[str, float, float, float, float]
"""(class, x1, y1, x2, y2) in source pixels."""
Detect = Callable[[np.ndarray], list[dict[str, Any]]]

# --- (a) the generated clip -------------------------------------------------------------------

_OBJECTS = (
    # class, hue (OpenCV 0-179), size at 720p, motion
    ("red", 0, (130, 130), ("bounce", (320.0, 210.0))),
    ("green", 60, (110, 150), ("bounce", (-180.0, 150.0))),
    ("blue", 120, (120, 120), ("circle", (1.5, 200.0))),
)
_HUES = {"red": 0, "green": 60, "blue": 120}


def _texture(rng: np.random.Generator, width: int, height: int, cell: int) -> np.ndarray:
    cells = rng.integers(0, 256, (height // cell + 2, width // cell + 2), np.uint8)
    big = cv2.resize(cells, (cells.shape[1] * cell, cells.shape[0] * cell), interpolation=cv2.INTER_NEAREST)
    return cv2.GaussianBlur(big[:height, :width], (5, 5), 0)


def generate_clip(path: Path, width: int, height: int, seconds: float, seed: int = 7) -> list[list[TruthBox]]:
    """Write the clip to ``path`` (MPEG-4); returns the true boxes of every frame."""
    rng = np.random.default_rng(seed)
    scale = height / 720
    grey = (50 + _texture(rng, width, height, max(4, round(10 * scale))).astype(np.float32) * 0.25).astype(np.uint8)
    background = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    sprites, states = [], []
    for name, hue, (w, h), motion in _OBJECTS:
        w, h = round(w * scale), round(h * scale)
        value = (70 + _texture(rng, w, h, max(3, round(8 * scale))).astype(np.float32) * 0.72).astype(np.uint8)
        hsv = np.dstack([np.full((h, w), hue, np.uint8), np.full((h, w), 230, np.uint8), value])
        sprites.append((name, cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)))
        start = (rng.uniform(0.1, 0.6) * (width - w), rng.uniform(0.1, 0.6) * (height - h))
        states.append([start[0], start[1], motion])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, (width, height))
    truth: list[list[TruthBox]] = []
    try:
        for index in range(round(seconds * FPS)):
            image = background.copy()
            boxes: list[TruthBox] = []
            for (name, sprite), state in zip(sprites, states, strict=True):
                h, w = sprite.shape[:2]
                x, y = _position(state, index, width, height, w, h, scale)
                xi, yi = round(x), round(y)
                image[yi : yi + h, xi : xi + w] = sprite
                boxes.append((name, float(xi), float(yi), float(xi + w), float(yi + h)))
            writer.write(image)
            truth.append(boxes)
    finally:
        writer.release()
    return truth


def _position(
    state: list[Any], index: int, width: int, height: int, w: int, h: int, scale: float
) -> tuple[float, float]:
    kind, (a, b) = state[2]
    t = index / FPS
    if kind == "circle":
        radius = b * scale
        cx, cy = width / 2, height / 2
        return cx + radius * math.cos(a * t) - w / 2, cy + radius * math.sin(a * t) - h / 2
    return _bounce(state[0] + a * scale * t, width - w), _bounce(state[1] + b * scale * t, height - h)


def _bounce(x: float, span: float) -> float:
    period = 2 * span
    x = x % period
    return x if x <= span else period - x


def colour_detector(image: np.ndarray) -> list[dict[str, Any]]:
    """The squares of the generated clip, found by colour in ``image`` (Roboflow boxes)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    hue, sat, val = cv2.split(hsv)
    coloured = (sat > 110) & (val > 60)
    found = []
    for name, centre in _HUES.items():
        distance = np.minimum(np.abs(hue.astype(np.int16) - centre), 180 - np.abs(hue.astype(np.int16) - centre))
        mask = (coloured & (distance < 12)).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if count < 2:
            continue
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h, area = (int(v) for v in stats[best])
        if area < 30:
            continue
        found.append({"x": x + w / 2, "y": y + h / 2, "width": w, "height": h, "confidence": 0.9, "class": name})
    return found


# --- (b) the sample footage -------------------------------------------------------------------

_THUMB = (48, 36)


def _thumb(image: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)


def cut_footage(source: Path, out: Path, frames: int) -> tuple[list[np.ndarray], float, tuple[int, int]]:
    """The first ``frames`` frames of ``source`` as an MJPEG file; their thumbnails, fps and size."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    try:
        for _ in range(frames):
            ok, image = capture.read()
            if not ok:
                break
            writer.write(image)
    finally:
        writer.release()
        capture.release()
    # Thumbnails of the frames as livecam will decode them from the cut file.
    thumbs = []
    capture = cv2.VideoCapture(str(out))
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                break
            thumbs.append(_thumb(image))
    finally:
        capture.release()
    return thumbs, fps, (width, height)


def model_truth(video: Path, out: Path, size: tuple[int, int]) -> list[list[TruthBox]]:
    """The embedded model's boxes for every frame of ``video`` (``livecam annotate --json``)."""
    jsonl = out / f"{video.stem}-truth.jsonl"
    run_child(
        [
            PYTHON,
            "-m",
            "livecam",
            "annotate",
            "-q",
            str(video),
            "-o",
            str(out / f"{video.stem}-annotated.avi"),
            "--json",
            str(jsonl),
        ],
        timeout_s=600,
    )
    truth: list[list[TruthBox]] = []
    for text in jsonl.read_text().splitlines():
        entry = json.loads(text)
        truth.append([_corners(p) for p in entry.get("predictions", [])])
    return truth


def footage_detector(thumbs: Sequence[np.ndarray], truth: Sequence[list[TruthBox]], size: tuple[int, int]) -> Detect:
    """Answers with the truth of the frame the image shows (found by thumbnail), in its pixels."""
    stack = np.stack(thumbs)

    def detect(image: np.ndarray) -> list[dict[str, Any]]:
        index = int(np.argmin(((stack - _thumb(image)) ** 2).sum(axis=(1, 2))))
        sx, sy = image.shape[1] / size[0], image.shape[0] / size[1]
        return [
            {
                "x": (x1 + x2) / 2 * sx,
                "y": (y1 + y2) / 2 * sy,
                "width": (x2 - x1) * sx,
                "height": (y2 - y1) * sy,
                "confidence": 0.9,
                "class": name,
            }
            for name, x1, y1, x2, y2 in truth[min(index, len(truth) - 1)]
        ]

    return detect


# --- the API -----------------------------------------------------------------------------------


class BenchApi(ThreadingHTTPServer):
    """A loopback Roboflow-format API: decodes the JPEG, runs ``detect``, answers after ``latency_s``."""

    daemon_threads = True

    def __init__(self, detect: Detect, latency_s: float) -> None:
        self.detect = detect
        self.latency_s = latency_s
        self.stop = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.stop.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: BenchApi

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        image = None
        try:
            raw = np.frombuffer(base64.b64decode(body), np.uint8)
            image = cv2.imdecode(raw, cv2.IMREAD_COLOR)
        except (binascii.Error, ValueError, cv2.error):
            image = None
        if image is None:
            payload, status = b'{"message": "not an image"}', 400
        else:
            boxes = self.server.detect(image)
            self.server.stop.wait(self.server.latency_s)
            size = {"width": image.shape[1], "height": image.shape[0]}
            payload, status = json.dumps({"image": size, "predictions": boxes}).encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# --- runs and scores ---------------------------------------------------------------------------


def _corners(p: dict[str, Any]) -> TruthBox:
    x, y, w, h = float(p["x"]), float(p["y"]), float(p["width"]), float(p["height"])
    return str(p["class"]), x - w / 2, y - h / 2, x + w / 2, y + h / 2


def _iou(a: TruthBox, b: TruthBox) -> float:
    w = min(a[3], b[3]) - max(a[1], b[1])
    h = min(a[4], b[4]) - max(a[2], b[2])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter
    return inter / union if union > 0 else 0.0


def frame_iou(drawn: Sequence[TruthBox], truth: Sequence[TruthBox]) -> list[float]:
    """Each true box's IoU with the drawn box matched to it (greedy, one to one, same class; 0 if none)."""
    pairs = sorted(
        ((_iou(t, d), i, j) for i, t in enumerate(truth) for j, d in enumerate(drawn) if t[0] == d[0]), reverse=True
    )
    best = [0.0] * len(truth)
    used_t: set[int] = set()
    used_d: set[int] = set()
    for value, i, j in pairs:
        if value <= 0 or i in used_t or j in used_d:
            continue
        best[i] = value
        used_t.add(i)
        used_d.add(j)
    return best


def score(boxes_log: Path, truth: Sequence[list[TruthBox]]) -> float | None:
    """Mean IoU over every true box of every displayed frame after the first answer."""
    values: list[float] = []
    for text in boxes_log.read_text().splitlines():
        entry = json.loads(text)
        if entry["from_frame"] is None or not 0 <= entry["frame"] < len(truth):
            continue
        values += frame_iou([_corners(p) for p in entry["predictions"]], truth[entry["frame"]])
    return round(sum(values) / len(values), 3) if values else None


def live_run(video: Path, detect: Detect, latency_ms: int, motion: str, out: Path) -> dict[str, Any]:
    """One ``livecam run`` of ``video`` against the bench API; its stats and boxes log."""
    tag = f"{video.stem}-{latency_ms}-{motion}"
    stats_path, log_path = out / f"{tag}.json", out / f"{tag}.jsonl"
    api = BenchApi(detect, latency_ms / 1000)
    try:
        run_child(
            [
                PYTHON,
                "-m",
                "livecam",
                "run",
                "-q",
                str(video),
                "--headless",
                "--api-url",
                api.url,
                "--model",
                "bench/1",
                "--motion",
                motion,
                "--boxes-log",
                str(log_path),
                "--stats-json",
                str(stats_path),
            ],
            timeout_s=600,
        )
    finally:
        api.close()
    stats = read_json(stats_path)
    return {"stats": stats, "log": log_path}


def compare(video: Path, truth: Sequence[list[TruthBox]], detect: Detect, latency_ms: int, out: Path) -> dict[str, Any]:
    """``--motion off`` and ``on`` one after the other; IoU, display/source and motion figures."""
    row: dict[str, Any] = {"video": video.name, "latency_ms": latency_ms}
    for motion in ("off", "on"):
        run = live_run(video, detect, latency_ms, motion, out)
        stats = run["stats"]
        row[f"iou_{motion}"] = score(run["log"], truth)
        row[f"display_{motion}"] = round(stats["displayed_frames"] / max(1, stats["source_frames"]), 3)
        row[f"answers_{motion}"] = stats["responses_ok"]
        if motion == "on":
            row["motion"] = stats["motion"]
    on, off = row["iou_on"], row["iou_off"]
    row["gain"] = round(on / off, 2) if on is not None and off else None
    return row


def run(scale: Scale) -> Section:
    """The generated clip at 720p (and 1080p for the cost), then the sample footage."""
    seconds = {"tiny": 1.0, "quick": 3.0, "full": 10.0}[scale]
    latencies = {"tiny": (200,), "quick": (500,), "full": LATENCIES_MS}[scale]
    sizes = {"tiny": ((640, 360),), "quick": ((1280, 720), (1920, 1080)), "full": ((1280, 720), (1920, 1080))}[scale]
    footage = {
        "tiny": (("bikes.mp4", 12),),
        "quick": (("vtest.avi", 50), ("bikes.mp4", 60)),
        "full": (("vtest.avi", 300), ("bikes.mp4", 250)),
    }[scale]
    generated: list[dict[str, Any]] = []
    real: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for width, height in sizes:
            clip = out / f"generated-{height}p.mp4"
            truth = generate_clip(clip, width, height, seconds)
            for latency in latencies if height <= 720 else (500,) if scale != "tiny" else latencies:
                row = compare(clip, truth, colour_detector, latency, out)
                row["size"] = f"{width}x{height}"
                generated.append(row)
        for name, frames in footage:
            cut = out / f"{Path(name).stem}.avi"
            thumbs, _, size = cut_footage(SAMPLES / name, cut, frames)
            truth = model_truth(cut, out, size)
            detect = footage_detector(thumbs, truth, size)
            for latency in latencies:
                real.append(compare(cut, truth, detect, latency, out))
    return _section(generated, real)


def _section(generated: list[dict[str, Any]], real: list[dict[str, Any]]) -> Section:
    section = Section("Motion")
    headers = ["video", "latency ms", "IoU off", "IoU on", "gain", "display off", "display on", "answers on"]

    def rows(results: list[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> list[list[Any]]:
        return [
            [
                label(r),
                r["latency_ms"],
                r["iou_off"],
                r["iou_on"],
                r["gain"],
                r["display_off"],
                r["display_on"],
                r["answers_on"],
            ]
            for r in results
        ]

    section.tables.append(table(headers, rows(generated, lambda r: f"generated {r['size']}")))
    section.tables.append(table(headers, rows(real, lambda r: r["video"])))
    cost_rows = [
        [
            f"generated {r['size']}" if "size" in r else r["video"],
            r["latency_ms"],
            r["motion"]["cost_ms"]["p50"],
            r["motion"]["cost_ms"]["p95"],
            r["motion"]["wall_ms"]["p95"],
            r["motion"]["catch_up_ms"]["p50"],
            r["motion"]["catch_up_ms"]["p95"],
            r["motion"]["compensated_frames"],
            r["motion"]["skipped_frames"],
            r["motion"]["tracks_started"],
        ]
        for r in generated + real
    ]
    section.tables.append(
        table(
            [
                "video",
                "latency ms",
                "cost p50 ms",
                "cost p95 ms",
                "wall p95 ms",
                "catch-up p50 ms",
                "catch-up p95 ms",
                "compensated frames",
                "skipped frames",
                "tracks started",
            ],
            cost_rows,
        )
    )
    at_500 = [r for r in generated if r["latency_ms"] == 500 and r["size"] == "1280x720"]
    if at_500:
        r = at_500[0]
        met = (r["iou_on"] or 0) >= IOU_TARGET and (r["gain"] or 0) >= GAIN_TARGET
        section.notes.append(
            f"generated 720p at 500 ms: IoU {r['iou_on']} on vs {r['iou_off']} off "
            f"(targets >= {IOU_TARGET} and >= {GAIN_TARGET:g}x): {'met' if met else 'NOT met'}"
        )
    hd = [r for r in generated if r["size"] == "1920x1080"]
    if hd:
        p95 = hd[0]["motion"]["cost_ms"]["p95"]
        section.notes.append(
            f"cost p95 at 1080p: {p95} ms per frame (target <= {COST_TARGET_MS:g}): "
            f"{'met' if p95 is not None and p95 <= COST_TARGET_MS else 'NOT met'}"
        )
    low = [r for r in generated + real if min(r["display_on"], r["display_off"]) < DISPLAY_TARGET]
    section.notes.append(
        f"display >= {DISPLAY_TARGET:.0%} of source frames in every run: {'met' if not low else 'NOT met'}"
    )
    section.notes.append(
        "IoU: each true box of each displayed frame (after the first answer) against the drawn box matched to it "
        "(same class, one to one; 0 when none), from --boxes-log; truth of the footage is the embedded model's answer "
        "for that frame, so IoU 1.0 is the model's own box for the frame on screen"
    )
    section.notes.append(
        "cost: CPU time of the motion thread per displayed frame (grey copy, one carrying step); wall: the same "
        "step's elapsed time, which includes waiting for a core on a loaded machine; catch-up: the frame on which "
        "a new answer is carried from its frame to the present (once per answer)"
    )
    section.data = {"generated": generated, "footage": real}
    return section
