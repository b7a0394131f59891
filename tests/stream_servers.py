"""Network streams on loopback for tests and the ``streams`` benchmark, from real servers.

- :func:`footage`: the sample clip re-encoded once per folder as H.264 without B-frames, 1 s GOP.
- :class:`FfmpegStream`: ``ffmpeg`` publishing that clip in a loop, in real time, as MPEG-TS
  over TCP or UDP, MJPEG over HTTP, RTMP, or HLS (segments written to a folder that a
  loopback HTTP server serves). ``stop()`` kills it; ``start()`` starts it again on the same port.
- :class:`RtspServer`: GStreamer's RTSP server (``gst-rtsp-server``, run by the system Python
  with ``python3-gi``) serving the clip over RTSP (TCP or UDP, as the client asks).
- :class:`StatusServer`: a loopback server that answers every HTTP or RTSP request with one
  status (401 with a Basic challenge, 403, 404), for the error messages.

Every server binds 127.0.0.1 only. Tools come from Debian packages (``ffmpeg``,
``gstreamer1.0-rtsp``, ``gir1.2-gst-rtsp-server-1.0``, ``python3-gi``); :func:`missing_tools`
says which are absent so a caller can skip with that reason.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"
FPS = 25.0
SYSTEM_PYTHON = "/usr/bin/python3"
START_TIMEOUT_S = 20.0

Protocol = Literal["tcp", "udp", "mjpeg", "rtmp", "hls1", "hls4"]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def missing_tools() -> tuple[str, ...]:
    """The Debian packages these servers need that are not installed."""
    missing = []
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg")
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    if not Path(SYSTEM_PYTHON).exists() or subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode:
        missing.append("gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi")
    return tuple(missing)


def footage(folder: Path, seconds: float = 10.0) -> Path:
    """The sample clip as H.264 without B-frames, a keyframe every second, no audio (made once)."""
    out = folder / f"footage-{seconds:g}s.mp4"
    if not out.exists():
        tmp = out.with_suffix(".tmp.mp4")
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-stream_loop",
                "-1",
                "-i",
                str(SAMPLES / "bikes.mp4"),
                "-t",
                f"{seconds:g}",
            ]
            + ["-an", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"]
            + ["-bf", "0", "-r", f"{FPS:g}", "-pix_fmt", "yuv420p", str(tmp)],
            check=True,
        )
        tmp.replace(out)
    return out


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        """No access log on stderr."""


class _Process:
    """A child process started and stopped by PID, with its output in a log file."""

    def __init__(self, log: Path) -> None:
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def spawn(self, command: list[str]) -> None:
        with open(self._log, "ab") as out:
            self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait(timeout=10)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        """The running child's process id."""
        assert self._proc is not None, "not started"
        return self._proc.pid


class FfmpegStream:
    """``ffmpeg`` publishing ``clip`` in a loop in real time as ``protocol``; ``url`` is what to read.

    For ``udp`` the reader binds the port and ffmpeg sends to it; for the others ffmpeg (or the
    HLS folder's HTTP server) listens and the reader connects.
    """

    def __init__(self, protocol: Protocol, clip: Path, folder: Path) -> None:
        self.protocol = protocol
        self._clip = clip
        self._dir = Path(tempfile.mkdtemp(prefix=f"{protocol}-", dir=folder))
        self.port = free_port(socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM)
        self._ffmpeg = _Process(self._dir / "ffmpeg.log")
        self._http: ThreadingHTTPServer | None = None
        self.url = {
            "tcp": f"tcp://127.0.0.1:{self.port}",
            "udp": f"udp://127.0.0.1:{self.port}",
            "mjpeg": f"http://127.0.0.1:{self.port}/stream.mjpg",
            "rtmp": f"rtmp://127.0.0.1:{self.port}/live/stream",
            "hls1": f"http://127.0.0.1:{self.port}/live.m3u8",
            "hls4": f"http://127.0.0.1:{self.port}/live.m3u8",
        }[protocol]

    def start(self) -> FfmpegStream:
        """Start publishing (again); for HLS, return once the playlist has its first segments."""
        head = ["ffmpeg", "-v", "warning", "-nostdin", "-re", "-stream_loop", "-1", "-i", str(self._clip), "-an"]
        copy = ["-c:v", "copy"]
        p = self.port
        tail: list[str] = {
            "tcp": [*copy, "-f", "mpegts", f"tcp://127.0.0.1:{p}?listen=1"],
            "udp": [*copy, "-f", "mpegts", f"udp://127.0.0.1:{p}?pkt_size=1316"],
            "mjpeg": [
                "-c:v",
                "mjpeg",
                "-q:v",
                "5",
                "-f",
                "mpjpeg",
                "-listen",
                "1",
                f"http://127.0.0.1:{p}/stream.mjpg",
            ],
            "rtmp": [*copy, "-f", "flv", "-listen", "1", f"rtmp://127.0.0.1:{p}/live/stream"],
        }.get(self.protocol, [])
        if self.protocol in ("hls1", "hls4"):
            seconds = "1" if self.protocol == "hls1" else "4"
            for old in self._dir.glob("live*"):
                old.unlink()
            tail = [*copy, "-f", "hls", "-hls_time", seconds, "-hls_list_size", "5"]
            tail += ["-hls_flags", "delete_segments+omit_endlist", str(self._dir / "live.m3u8")]
            if self._http is None:
                handler = functools.partial(_QuietFiles, directory=str(self._dir))
                self._http = ThreadingHTTPServer(("127.0.0.1", p), handler)
                threading.Thread(target=self._http.serve_forever, name="hls-files", daemon=True).start()
        self._ffmpeg.spawn(head + tail)
        if self.protocol in ("hls1", "hls4"):
            self._wait_for(lambda: (self._dir / "live.m3u8").exists())
        elif self.protocol != "udp":
            self._wait_for(self._listening)
        return self

    @property
    def pid(self) -> int:
        """The publishing ffmpeg's process id (to pause it with SIGSTOP, say)."""
        return self._ffmpeg.pid

    def stop(self) -> None:
        """Kill the publisher (the HLS folder's server stays, serving a playlist that stops growing)."""
        self._ffmpeg.kill()

    def close(self) -> None:
        """Stop everything and remove the folder."""
        self.stop()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FfmpegStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listening(self) -> bool:
        # ffmpeg's -listen servers accept one client; probing would use it up, so read /proc.
        return _port_listening(self.port)

    def _wait_for(self, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if not self._ffmpeg.alive():
                raise RuntimeError(f"ffmpeg {self.protocol} exited: {(self._dir / 'ffmpeg.log').read_text()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"ffmpeg {self.protocol} did not start within {START_TIMEOUT_S:g} s")
            time.sleep(0.05)  # polling a child process that gives no other signal


def _port_listening(port: int) -> bool:
    """Whether a TCP socket listens on ``port``, or already accepted a client on it (a one-client
    ``-listen`` server stops listening then); read from /proc/net/tcp, without connecting."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[1].endswith(f":{port:04X}") and fields[3] in ("0A", "01"):
                return True
    return False


_RTSP_SERVER = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer
Gst.init(None)
port, clip = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( filesrc location={clip} ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
)
factory.set_shared(False)
server.get_mount_points().add_factory("/stream", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
"""


class RtspServer:
    """GStreamer's RTSP server on 127.0.0.1 serving ``clip`` at ``/stream`` (each client from its start)."""

    def __init__(self, clip: Path, folder: Path) -> None:
        self._clip = clip
        self._dir = Path(tempfile.mkdtemp(prefix="rtsp-", dir=folder))
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/stream"
        self._proc = _Process(self._dir / "server.log")

    def start(self) -> RtspServer:
        """Start (again) on the same port."""
        self._proc.spawn([SYSTEM_PYTHON, "-c", _RTSP_SERVER, str(self.port), str(self._clip)])
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _port_listening(self.port):
            if not self._proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the RTSP server did not start: {(self._dir / 'server.log').read_text()[-500:]}")
            time.sleep(0.05)  # polling a child process that gives no other signal
        return self

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self._proc.pid

    def stop(self) -> None:
        self._proc.kill()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _StatusHandler(socketserver.StreamRequestHandler):
    server: _StatusTCPServer

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                lines = []
                while (line := self.rfile.readline(8192)) not in (b"\r\n", b"\n", b""):
                    lines.append(line)
                if not lines:
                    return
                request = lines[0].decode("latin-1")
                rtsp = "RTSP/" in request
                cseq = next((x.decode().split(":", 1)[1].strip() for x in lines if x.lower().startswith(b"cseq:")), "1")
                code = self.server.status
                reason = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(code, "Error")
                head = [f"{'RTSP/1.0' if rtsp else 'HTTP/1.1'} {code} {reason}", f"CSeq: {cseq}", "Content-Length: 0"]
                if code == 401:
                    head.append('WWW-Authenticate: Basic realm="livecam-test"')
                if not rtsp:
                    head.append("Connection: close")
                self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())
                self.wfile.flush()
                if not rtsp:
                    return


class _StatusTCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    status = 404


class StatusServer:
    """Answers every HTTP or RTSP request on 127.0.0.1 with ``status`` (401 carries a Basic challenge)."""

    def __init__(self, status: int) -> None:
        self._server = _StatusTCPServer(("127.0.0.1", 0), _StatusHandler)
        self._server.status = status
        self.port = int(self._server.server_address[1])

    def __enter__(self) -> StatusServer:
        threading.Thread(target=self._server.serve_forever, name="status-server", daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


if __name__ == "__main__":  # serve one protocol by hand: python tests/stream_servers.py hls4
    kind = sys.argv[1] if len(sys.argv) > 1 else "tcp"
    work = Path(tempfile.mkdtemp(prefix="streams-"))
    clip = footage(work, 60.0)
    served: FfmpegStream | RtspServer = RtspServer(clip, work) if kind == "rtsp" else FfmpegStream(kind, clip, work)  # type: ignore[arg-type]
    with served:
        print(served.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    shutil.rmtree(work, ignore_errors=True)
