"""Benchmark: network streams played like a player, per protocol, over loopback.

The sample footage (H.264 without B-frames, 1 s GOP, 25 fps) is served on 127.0.0.1 by real
servers (``tests/stream_servers.py``: GStreamer's RTSP server, over TCP and UDP; ffmpeg for
MJPEG over HTTP, HLS with 1 s and 4 s segments, MPEG-TS over TCP and UDP, RTMP). For each, a
live pipeline runs in this process against the model-free latency server (40 ms) and records
the time of every new frame it shows. Reported: display/source and the evenness of the shown
frames' intervals (p95 of |interval - 1/fps|) after the first second, answers per second (over
the whole run, and over the measuring window after its first second),
``stream_lag_ms``, ``frames_dropped_to_stay_live``, how long after the last new frame a stall
(the publisher paused with SIGSTOP) is declared, and how long after the server is restarted
the first new frame is shown. Then the message and the time of each open failure class.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_support.common import REPO, Scale, Section, latency_server, percentile, table
from livecam.client import ApiConfig
from livecam.display import HeadlessDisplay
from livecam.errors import SourceError
from livecam.live.pipeline import LiveConfig, LivePipeline
from livecam.sources import CaptureOptions, OpenCVSource

sys.path.insert(0, str(REPO / "tests"))
import stream_servers  # noqa: E402  (the loopback servers the tests use too)

FPS = stream_servers.FPS
PROTOCOLS = ("rtsp-tcp", "rtsp-udp", "mjpeg", "hls1", "hls4", "tcp", "udp", "rtmp")
DISPLAY_TARGET, EVEN_TARGET_MS, STALL_TARGET_S, RECOVERY_TARGET_S = 0.98, 1000 / FPS, 3.5, 2.0
POLL_S = 0.02
"""How often the benchmark looks at the status line (it measures; the product does not poll)."""


class _Run:
    """One live pipeline on ``url`` in a thread, recording when each new frame is shown."""

    def __init__(self, url: str, api_url: str) -> None:
        self.source = OpenCVSource(url, CaptureOptions(open_timeout_s=15.0))
        api = ApiConfig(api_url, "bench/1", api_key="bench")
        self.pipeline = LivePipeline(self.source, api, HeadlessDisplay(), LiveConfig(in_flight=2))
        self.shown: list[float] = []
        self.stats: dict[str, Any] = {}
        record = self.pipeline.stats.frame_lag

        def frame_lag(lag_s: float) -> None:
            self.shown.append(time.monotonic())
            record(lag_s)

        self.pipeline.stats.frame_lag = frame_lag  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._run, name="bench-run", daemon=True)

    def start(self) -> _Run:
        self.pipeline.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        self.stats = self.pipeline.run().to_json()

    def status(self) -> str | None:
        return self.pipeline.status.get("source")

    def wait_until(self, ready: Callable[[], bool], limit_s: float) -> float | None:
        """Seconds until ``ready()``, or None after ``limit_s``."""
        began = time.monotonic()
        while time.monotonic() - began < limit_s:
            if ready():
                return time.monotonic() - began
            time.sleep(POLL_S)
        return None

    def finish(self) -> dict[str, Any]:
        self.pipeline.stop.set()
        self._thread.join(30)
        return self.stats


def _evenness(shown: list[float], since: float, until: float) -> tuple[float | None, float | None]:
    """(display/source, p95 |interval - 1/fps| in ms) for the frames shown between the two times."""
    times = [t for t in shown if since <= t <= until]
    if len(times) < 3:
        return None, None
    span = until - since
    deviations = [abs(b - a - 1 / FPS) * 1000 for a, b in zip(times, times[1:], strict=False)]
    return round(len(times) / (span * FPS), 3), percentile(deviations, 95)


def _server(protocol: str, clip: Path, folder: Path) -> tuple[Any, str, int]:
    """(server, url, pid of the publisher) for ``protocol``, started."""
    if protocol.startswith("rtsp"):
        rtsp = stream_servers.RtspServer(clip, folder).start()
        return rtsp, rtsp.url, rtsp.pid
    ffmpeg = stream_servers.FfmpegStream(protocol, clip, folder).start()  # type: ignore[arg-type]
    return ffmpeg, ffmpeg.url, ffmpeg.pid


def measure(protocol: str, clip: Path, folder: Path, api_url: str, seconds: float, faults: bool) -> dict[str, Any]:
    """Play ``protocol`` for ``seconds``; with ``faults``, then pause and restart its server."""
    if protocol == "rtsp-udp":
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;udp"
    server, url, pid = _server(protocol, clip, folder)
    row: dict[str, Any] = {"protocol": protocol}
    try:
        run = _Run(url, api_url).start()
        first = run.wait_until(lambda: bool(run.shown), 20.0)
        began = run.shown[0] if run.shown else time.monotonic()
        time.sleep(1.0)  # the first second is left out
        answered, since = run.pipeline.stats.responses_ok, time.monotonic()
        time.sleep(seconds - 1.0)  # the benchmark's measuring window
        until = time.monotonic()
        row["steady_answers_per_s"] = round((run.pipeline.stats.responses_ok - answered) / (until - since), 2)
        row["display_source"], row["even_p95_ms"] = _evenness(run.shown, began + 1.0, until)
        row["first_frame_s"] = first
        if faults:
            row["stall_s"] = _stall(run, pid)
            row["recovery_s"] = _recovery(run, server)
        stats = run.finish()
        row["answers_per_s"] = stats.get("prediction_rate")
        row["stream_lag_ms"] = stats.get("stream_lag_ms")
        row["dropped_to_stay_live"] = stats.get("frames_dropped_to_stay_live")
        row["reconnects"] = stats.get("reconnects")
    finally:
        server.close()
        os.environ.pop("OPENCV_FFMPEG_CAPTURE_OPTIONS", None)
    return row


def _stall(run: _Run, pid: int) -> float | None:
    """Seconds from the last new frame to the "Stream stalled" status, with the publisher paused."""
    os.kill(pid, signal.SIGSTOP)
    try:
        declared = run.wait_until(lambda: (run.status() or "").startswith("Stream stalled"), 15.0)
        if declared is None:
            return None
        return round(time.monotonic() - run.shown[-1], 2)
    finally:
        os.kill(pid, signal.SIGCONT)
        run.wait_until(lambda: run.status() is None, 20.0)


def _recovery(run: _Run, server: Any) -> float | None:
    """Seconds from the server's restart to the next new frame shown."""
    server.stop()
    run.wait_until(lambda: run.status() is not None, 20.0)
    count = len(run.shown)
    server.start()
    restarted = time.monotonic()
    shown = run.wait_until(lambda: len(run.shown) > count, 30.0)
    return None if shown is None else round(time.monotonic() - restarted, 2)


def failures(silent: bool = True) -> list[list[Any]]:
    """[class, message, seconds to the message] for each open failure, over loopback."""
    rows: list[list[Any]] = []
    port = stream_servers.free_port()

    def attempt(name: str, url: str) -> None:
        began = time.monotonic()
        try:
            OpenCVSource(url, CaptureOptions(open_timeout_s=10.0)).open()
            message = "(opened)"
        except SourceError as exc:
            message = str(exc)
        rows.append([name, message.replace("|", "/"), round(time.monotonic() - began, 2)])

    attempt("refused", f"rtsp://127.0.0.1:{port}/stream")
    with stream_servers.StatusServer(401) as server:
        attempt("RTSP 401", f"rtsp://user:secret@127.0.0.1:{server.port}/stream")
        attempt("HTTP 401", f"http://127.0.0.1:{server.port}/stream.mjpg")
    with stream_servers.StatusServer(404) as server:
        attempt("HLS 404", f"http://127.0.0.1:{server.port}/live.m3u8")
    attempt("unsupported", f"srt://127.0.0.1:{port}")
    if silent:  # waits for the whole open timeout, then the probe's
        with socket.create_server(("127.0.0.1", 0)) as listener:
            attempt("silent server", f"rtsp://127.0.0.1:{listener.getsockname()[1]}/stream")
    return rows


def run(scale: Scale) -> Section:
    """Every protocol (tiny: MPEG-TS over TCP only, no faults), then the failure messages."""
    section = Section("Network streams")
    missing = stream_servers.missing_tools()
    if missing:
        section.notes.append(f"Skipped: missing system packages ({', '.join(missing)}); scripts/test.sh installs them.")
        return section
    protocols = ("tcp",) if scale == "tiny" else PROTOCOLS
    seconds = {"tiny": 3.0, "quick": 8.0, "full": 20.0}[scale]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, latency_server(40.0, 32) as api_url:
        folder = Path(tmp)
        clip = stream_servers.footage(folder, 60.0 if scale == "full" else 20.0)
        for protocol in protocols:
            try:
                rows.append(measure(protocol, clip, folder, api_url, seconds, faults=scale != "tiny"))
            except (RuntimeError, OSError) as exc:  # a server that would not start: say so, go on
                section.notes.append(f"{protocol}: not measured ({exc})")
    errors = failures(silent=scale != "tiny")
    section.data = {"runs": rows, "failures": errors, "seconds": seconds}
    section.tables.append(
        table(
            [
                "protocol",
                "display/source",
                "even p95 ms",
                "answers/s",
                "steady answers/s",
                "lag p50 ms",
                "lag p95 ms",
                "dropped to stay live",
                "stall declared s",
                "recovery s",
            ],
            [
                [
                    r["protocol"],
                    r["display_source"],
                    r["even_p95_ms"],
                    r["answers_per_s"],
                    r["steady_answers_per_s"],
                    (r["stream_lag_ms"] or {}).get("p50"),
                    (r["stream_lag_ms"] or {}).get("p95"),
                    r["dropped_to_stay_live"],
                    r.get("stall_s"),
                    r.get("recovery_s"),
                ]
                for r in rows
            ],
        )
    )
    section.tables.append(table(["failure", "message", "s"], errors))
    section.notes += [
        f"Each protocol played {seconds:g} s after its first frame; display/source and evenness exclude the "
        f"first second. Targets: display/source >= {DISPLAY_TARGET}, even p95 <= {EVEN_TARGET_MS:g} ms, "
        f"stall declared <= {STALL_TARGET_S} s after the last new frame, recovery <= {RECOVERY_TARGET_S} s.",
        "answers/s is over the whole run (the first frame's wait, the stall and the restart included); "
        "steady answers/s over the measuring window after its first second.",
        "Lag is display time minus arrival time: HLS waits twice its target duration (at most 5 s) so its "
        "bursts play evenly.",
    ]
    return section


def soak(minutes: float) -> dict[str, Any]:
    """RTSP (GStreamer, TCP) for ``minutes``, video only: the lag and this process's memory, start vs end."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clip = stream_servers.footage(folder, minutes * 60 + 60)
        with stream_servers.RtspServer(clip, folder) as server:
            source = OpenCVSource(server.url, CaptureOptions(open_timeout_s=15.0))
            pipeline = LivePipeline(source, None, HeadlessDisplay(), LiveConfig(duration=minutes * 60))
            lags: list[tuple[float, float]] = []
            record = pipeline.stats.frame_lag

            def frame_lag(lag_s: float) -> None:
                lags.append((time.monotonic(), lag_s * 1000))
                record(lag_s)

            pipeline.stats.frame_lag = frame_lag  # type: ignore[method-assign]
            memory: list[tuple[float, int]] = []
            done = threading.Event()

            def sample() -> None:
                while not done.wait(10.0):
                    memory.append((time.monotonic(), _rss_kb()))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            with pipeline:
                stats = pipeline.run().to_json()
            done.set()
    began, ended = lags[0][0], lags[-1][0]
    first = [lag for t, lag in lags if began + 5 <= t <= began + 65]
    last = [lag for t, lag in lags if t >= ended - 60]
    return {
        "minutes": minutes,
        "lag_first_minute_ms": {"p50": percentile(first, 50), "p95": percentile(first, 95)},
        "lag_last_minute_ms": {"p50": percentile(last, 50), "p95": percentile(last, 95)},
        "rss_mb_after_1_min": next((kb / 1024 for t, kb in memory if t >= began + 60), None),
        "rss_mb_at_end": memory[-1][1] / 1024 if memory else None,
        "stats": stats,
    }


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


if __name__ == "__main__":  # cd scripts && ../.venv/bin/python -m bench_support.streams MINUTES: the RTSP soak
    import json

    print(json.dumps(soak(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0), indent=2))
