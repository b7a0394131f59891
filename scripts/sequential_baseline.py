#!/usr/bin/env python3
"""The sequential pattern of Roboflow's documentation, as the baseline livecam is measured against.

One frame at a time: read a frame, downsize and JPEG-encode it, base64 it, ``requests.post`` it,
wait for the answer, draw the boxes, show (or write) the frame, then read the next one. While a
request is out nothing is shown, and a live source's frames that arrive meanwhile are lost.

    python scripts/sequential_baseline.py synthetic:1280x720@30 --api-url http://127.0.0.1:9001 \\
        --model coco/1 --headless --duration 20 --stats-json baseline.json
    python scripts/sequential_baseline.py sample_videos/bikes.mp4 --api-url http://127.0.0.1:9001 \\
        --model coco/1 --headless --annotate out.mp4 --stats-json baseline.json

SOURCE is read like livecam's: a camera index, a video file, a stream URL, or
``synthetic:WxH@FPS[:FRAMES]``. A file or synthetic source plays in real time like a camera
(frames that come due while waiting for an answer are skipped); with ``--annotate OUT`` a file is
read instead frame by frame as fast as the loop goes, and every frame is written to OUT.
``--stats-json`` uses the field names of ``livecam run --stats-json``.
"""

from __future__ import annotations

# isort: off
import checkout_venv  # noqa: F401  (first: it may start this script again under .venv/bin/python)

# isort: on
import argparse
import base64
import json
import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import requests

from livecam.frames import Image
from livecam.sources import SourceInfo, VideoSource, open_source

WINDOW = "sequential baseline"


@dataclass
class Counters:
    """What one run did, in the field names of ``livecam run --stats-json``."""

    source_frames: int = 0
    displayed_frames: int = 0
    requests_sent: int = 0
    responses_ok: int = 0
    responses_failed: int = 0
    bytes_sent: int = 0
    latency_ms: list[float] = field(default_factory=list)
    age_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a JSON object."""
        duration = self.duration_s

        def rate(count: int) -> float:
            return round(count / duration, 3) if duration > 0 else 0.0

        return {
            "source_frames": self.source_frames,
            "displayed_frames": self.displayed_frames,
            "source_fps": rate(self.source_frames),
            "display_fps": rate(self.displayed_frames),
            "requests_sent": self.requests_sent,
            "responses_ok": self.responses_ok,
            "responses_failed": self.responses_failed,
            "prediction_rate": rate(self.responses_ok),
            "request_latency_ms": _p50_p95(self.latency_ms),
            "prediction_age_ms": _p50_p95(self.age_ms),
            "bytes_sent": self.bytes_sent,
            "duration_s": round(duration, 3),
            "in_flight": 1,
            "encoder": "opencv",
        }


def _p50_p95(samples: list[float]) -> dict[str, float | None]:
    ordered = sorted(samples)
    if not ordered:
        return {"p50": None, "p95": None}

    def at(point: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(point / 100 * len(ordered)) - 1))], 1)

    return {"p50": at(50), "p95": at(95)}


class RealTimeReader:
    """Reads a source the way a camera delivers it: the newest due frame, skipping missed ones.

    A file or synthetic source returns frames at once; here frame ``i`` becomes due at
    ``start + i / fps``, a read waits for the next due frame, and frames that came due while the
    caller was busy are read and dropped, as a camera's would be.
    """

    def __init__(self, source: VideoSource, info: SourceInfo, stop: threading.Event) -> None:
        self._source = source
        self._fps = info.fps
        self._paced = info.paced
        self._stop = stop
        self._start = time.monotonic()
        self._next = 0

    def read(self) -> tuple[Image | None, float]:
        """The next frame and its capture time (None at the end or when stopped)."""
        if not self._paced:
            return self._source.read(), time.monotonic()
        due = math.floor((time.monotonic() - self._start) * self._fps)
        if due < self._next:
            if self._stop.wait(self._start + self._next / self._fps - time.monotonic()):
                return None, time.monotonic()
            due = self._next
        for _ in range(self._next, due):
            if self._source.read() is None:
                return None, time.monotonic()
        self._next = due + 1
        return self._source.read(), self._start + due / self._fps

    def frames_due(self, now: float) -> int:
        """Frames a camera would have delivered by ``now``."""
        if not self._paced:
            return self._next
        return math.floor((now - self._start) * self._fps) + 1


def encode(image: Image, max_side: int, quality: int) -> tuple[bytes, float]:
    """Downsize to ``max_side`` (0: keep), JPEG-encode with OpenCV and base64; returns (body, scale)."""
    height, width = image.shape[:2]
    scale = 1.0
    if max_side and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (round(width * scale), round(height * scale))
        image = cast(Image, cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not JPEG-encode the frame")
    return base64.b64encode(buffer.tobytes()), scale


def draw(image: Image, predictions: list[dict[str, Any]], scale: float) -> None:
    """Boxes and labels from Roboflow's centre-format predictions, scaled back to ``image``."""
    for p in predictions:
        x, y, w, h = (float(p[k]) / scale for k in ("x", "y", "width", "height"))
        top_left = (int(x - w / 2), int(y - h / 2))
        cv2.rectangle(image, top_left, (int(x + w / 2), int(y + h / 2)), (0, 255, 0), 2)
        label = f"{p.get('class', '?')} {float(p.get('confidence', 0)):.2f}"
        cv2.putText(
            image, label, (top_left[0], max(12, top_left[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 0), 2
        )


def run(args: argparse.Namespace, stop: threading.Event) -> dict[str, Any]:
    """The read-encode-post-wait-draw-show loop; returns its statistics."""
    source = open_source(args.source)
    info = source.open()
    url = f"{args.api_url.rstrip('/')}/{args.model}"
    params = {"confidence": f"{args.confidence:g}", "overlap": f"{args.overlap:g}", "format": "json"}
    if args.api_key:
        params["api_key"] = args.api_key
    writer = None
    if args.annotate is not None:
        fourcc = cv2.VideoWriter.fourcc(*("MJPG" if args.annotate.suffix.lower() == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(str(args.annotate), fourcc, info.fps or 25.0, (info.width, info.height))
        if not writer.isOpened():
            raise SystemExit(f"cannot write {args.annotate}; choose a .mp4 or .avi path in an existing folder")
    paced = info.paced and args.annotate is None
    reader = RealTimeReader(source, SourceInfo(info.fps, info.width, info.height, paced=paced), stop)
    counters = Counters()
    started = time.monotonic()
    deadline = None if args.duration is None else started + args.duration
    try:
        while not stop.is_set():
            if args.max_frames is not None and counters.displayed_frames >= args.max_frames:
                break
            image, captured_at = reader.read()
            if image is None or (deadline is not None and time.monotonic() >= deadline):
                break
            body, scale = encode(image, args.max_side, args.jpeg_quality)
            counters.requests_sent += 1
            counters.bytes_sent += len(body)
            sent_at = time.monotonic()
            try:
                response = requests.post(
                    url,
                    params=params,
                    data=body,
                    timeout=args.timeout,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                response.raise_for_status()
                predictions = response.json().get("predictions", [])
            except (requests.RequestException, ValueError) as exc:
                counters.responses_failed += 1
                print(f"request failed: {type(exc).__name__}", file=sys.stderr)
                predictions = None
            else:
                counters.responses_ok += 1
                counters.latency_ms.append((time.monotonic() - sent_at) * 1000)
            if predictions is not None:
                draw(image, predictions, scale)
            if writer is not None:
                writer.write(image)
            if not args.headless:
                cv2.imshow(WINDOW, image)
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    stop.set()
            counters.displayed_frames += 1
            if predictions is not None:
                counters.age_ms.append((time.monotonic() - captured_at) * 1000)
    finally:
        ended = time.monotonic() if deadline is None else min(time.monotonic(), deadline)
        counters.duration_s = ended - started
        counters.source_frames = reader.frames_due(ended) if paced else counters.displayed_frames
        if info.frame_count is not None:
            counters.source_frames = min(counters.source_frames, info.frame_count)
        source.close()
        if writer is not None:
            writer.release()
        if not args.headless:
            cv2.destroyAllWindows()
    return counters.to_dict()


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description="Roboflow's documented sequential loop (the benchmark baseline).")
    parser.add_argument("source", metavar="SOURCE", help="camera index, video file, stream URL or synthetic:WxH@FPS")
    parser.add_argument("--api-url", required=True, help="base URL of a Roboflow-format API")
    parser.add_argument("--model", required=True, metavar="PROJECT/VERSION")
    parser.add_argument("--api-key", help="Roboflow API key (sent as ?api_key=, never printed)")
    parser.add_argument("--confidence", type=float, default=40.0)
    parser.add_argument("--overlap", type=float, default=30.0)
    parser.add_argument("--max-side", type=int, default=640, metavar="PX", help="downsize before sending (0: keep)")
    parser.add_argument("--jpeg-quality", type=int, default=80)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--headless", action="store_true", help="no window")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after this many seconds")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop after showing N frames")
    parser.add_argument("--annotate", type=Path, metavar="OUT", help="read a file frame by frame; write every frame")
    parser.add_argument("--stats-json", type=Path, metavar="PATH", help="write the run statistics here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the baseline; the statistics go to ``--stats-json`` and a summary to stderr."""
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    try:
        stats = run(args, stop)
    except KeyboardInterrupt:
        return 130
    print(
        f"{stats['displayed_frames']} of {stats['source_frames']} source frames shown "
        f"({stats['display_fps']:.1f} fps), {stats['responses_ok']} answered, "
        f"{stats['responses_failed']} failed",
        file=sys.stderr,
    )
    if args.stats_json is not None:
        args.stats_json.write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
