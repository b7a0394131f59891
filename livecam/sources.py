"""Video sources: cameras, files and streams through OpenCV, and a synthetic test pattern.

Every source follows :class:`VideoSource`: the constructor only checks its arguments, ``open``
connects (and can be called again to reconnect), ``read`` returns one BGR image or None when
that read failed, ``close`` releases the device. The capture thread
(:mod:`livecam.live.capture`) drives them.

SOURCE specs understood by :func:`open_source`:

- ``0``, ``1``, ...: a camera index.
- ``rtsp://...``, ``rtsps://``, ``http(s)://`` (MJPEG, HLS, MPEG-TS), ``udp://``, ``tcp://``,
  ``rtmp://``: a network stream (read through FFmpeg, with open/read timeouts; each frame
  carries its presentation time, see :class:`Timestamped`). ``srt://`` is recognised but the
  opencv-python wheel's FFmpeg has no SRT; opening it says so.
- ``synthetic[:WIDTHxHEIGHT[@FPS]][:FRAMES]``: a generated test pattern, e.g.
  ``synthetic:1280x720@30`` (a live 30 fps camera that never ends) or
  ``synthetic:640x480@25:250`` (a 250-frame clip that then ends like a file).
- anything else: a video file path.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import cv2
import numpy as np

from livecam.errors import ConfigError, SourceError
from livecam.frames import Image
from livecam.hls import is_hls, target_duration
from livecam.redaction import redact_url as redact_url  # also imported from here
from livecam.streamerrors import diagnose_open, read_failure, unsupported
from livecam.streamprobe import ENV, capture_options, needs_full_probe, short_probe_options

log = logging.getLogger(__name__)

SourceKind = Literal["camera", "file", "stream", "synthetic"]

CAMERA_FALLBACK_FPS = 30.0
"""Assumed rate for a camera or stream that reports none."""
FILE_FALLBACK_FPS = 25.0
"""Assumed rate for a file that reports none."""
_MAX_SANE_FPS = 500.0

_STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt")
_SYNTHETIC = re.compile(r"synthetic(?::(?P<w>\d+)x(?P<h>\d+)(?:@(?P<fps>\d+(?:\.\d+)?))?)?(?::(?P<n>\d+))?")


@dataclass(frozen=True)
class SourceInfo:
    """What an opened source delivers.

    Attributes:
        fps: frames per second (a fallback when the source reports none; see the log).
        width, height: frame size in pixels as reported on open.
        live: True for cameras and streams (a failed read is a dropout, reconnect);
            False for files (a failed read is the end).
        frame_count: frames in a file, None when unknown or live.
        name: display name, with any credentials in a URL replaced by ``***``.
        kind: ``camera``, ``file``, ``stream`` or ``synthetic``.
        paced: True when ``read`` returns at once instead of waiting for the next frame (files,
            synthetic): the capture thread then spaces reads at ``fps`` so the source plays in
            real time. Cameras and streams block in ``read`` and are not paced.
        clocked: True for network streams: frames arrive unevenly (bursts, backlogs), so the
            capture thread releases them on their own timestamps through a jitter buffer
            (:mod:`livecam.live.streamclock`).
        stall_timeout_s: no new frame for this long is a stall (banner, log line, and a
            reconnect if the read is stuck); None: never declared.
        burst_s: how long the stream goes between bursts, when known before any frame (an HLS
            playlist's target duration); the stream clock starts with that delay.
    """

    fps: float
    width: int
    height: int
    live: bool = True
    frame_count: int | None = None
    name: str = ""
    kind: SourceKind = "camera"
    paced: bool = False
    clocked: bool = False
    stall_timeout_s: float | None = None
    burst_s: float | None = None


@dataclass(frozen=True)
class CaptureOptions:
    """How to open an OpenCV source.

    Attributes:
        width, height, fps, fourcc: requested camera mode (e.g. ``fourcc="MJPG"`` lets many USB
            cameras deliver 1080p at 30 fps); cameras may ignore them, files and streams do.
        backend: OpenCV backend name (``ffmpeg``, ``gstreamer``, ``v4l2``, ``dshow``, ``msmf``,
            ``avfoundation``); None picks OpenCV's default (FFmpeg for streams).
        open_timeout_s: give up connecting to a stream after this long.
        read_timeout_s: a stream read that waits longer than this fails (a dropout).
        stall_timeout: a stream that delivers no new frame for this long is stalled
            (``--stall-timeout``).
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    fourcc: str | None = None
    backend: str | None = None
    open_timeout_s: float = 10.0
    read_timeout_s: float = 5.0
    stall_timeout: float = 3.0

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"capture {name} must be a positive number of pixels, got {value}")
        if self.fps is not None and not 0 < self.fps <= _MAX_SANE_FPS:
            raise ConfigError(f"capture fps must be between 0 and {_MAX_SANE_FPS:g}, got {self.fps}")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ConfigError(f"fourcc must be 4 characters such as MJPG or YUYV, got {self.fourcc!r}")
        if self.backend is not None and not isinstance(getattr(cv2, f"CAP_{self.backend.upper()}", None), int):
            raise ConfigError(f"unknown OpenCV backend {self.backend!r}; try ffmpeg, gstreamer or v4l2")
        if self.open_timeout_s <= 0 or self.read_timeout_s <= 0 or self.stall_timeout <= 0:
            raise ConfigError("stream open, read and stall timeouts must be positive seconds")

    @property
    def backend_id(self) -> int | None:
        """The ``cv2.CAP_*`` constant for ``backend``, or None."""
        return None if self.backend is None else int(getattr(cv2, f"CAP_{self.backend.upper()}"))


class VideoSource(Protocol):
    """A camera, file, stream or generator of BGR frames. Constructors never open anything."""

    @property
    def info(self) -> SourceInfo | None:
        """What the last successful ``open`` returned; None before that."""
        ...

    def open(self) -> SourceInfo:
        """Connect, or reconnect after ``close``.

        Raises:
            SourceError: the source cannot be opened; the message says what to check.
        """
        ...

    def read(self) -> Image | None:
        """The next frame, or None when this read failed (end of a file, dropout of a live source).

        Raises:
            SourceError: the source is broken in a way a retry may fix (treated like None).
        """
        ...

    def close(self) -> None:
        """Release the device or connection; safe to call twice."""
        ...


@runtime_checkable
class Timestamped(Protocol):
    """A source that knows each frame's presentation time and why its last read failed."""

    def position_s(self) -> float | None:
        """The presentation time of the frame the last ``read`` returned, in seconds; None if unknown."""
        ...

    def read_failure(self) -> str | None:
        """Why the last ``read`` returned None, in one line; None if it did not fail."""
        ...


def may_come_back(source: VideoSource) -> bool:
    """Whether a source that cannot be opened now may open later: a stream or a camera, not a file.

    A wrapper (e.g. a turned source) answers for the source it wraps (its ``inner``).
    """
    inner = getattr(source, "inner", None)
    if inner is not None:
        return may_come_back(inner)
    return isinstance(source, OpenCVSource) and source.kind in ("stream", "camera")


def is_stream_url(spec: str) -> bool:
    """True for ``rtsp://``, ``http://`` and the other network stream schemes."""
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and scheme.lower() in _STREAM_SCHEMES


def sane_fps(raw: float) -> float | None:
    """``raw`` if it is a believable frame rate, else None (containers report 0, NaN or 90000)."""
    return raw if math.isfinite(raw) and 0 < raw <= _MAX_SANE_FPS else None


class OpenCVSource:
    """A camera index, video file or stream URL read with ``cv2.VideoCapture``.

    Example::

        source = OpenCVSource("rtsp://user:pw@cam.local/stream", CaptureOptions(read_timeout_s=3))
        info = source.open()      # SourceError if it cannot
        image = source.read()     # None on dropout or end of file

    Raises:
        ConfigError: ``spec`` is empty.
    """

    def __init__(self, spec: str | int, options: CaptureOptions | None = None) -> None:
        self._options = options or CaptureOptions()
        self._target: str | int
        self._kind: SourceKind
        if isinstance(spec, int) or spec.strip().isdigit():
            self._target, self._kind, self.name = int(spec), "camera", f"camera {int(spec)}"
        elif is_stream_url(spec.strip()):
            self._target, self._kind, self.name = spec.strip(), "stream", redact_url(spec.strip())
        elif spec:
            self._target, self._kind, self.name = spec, "file", spec
        else:
            raise ConfigError("empty source: give a camera index, a video file or a stream URL")
        self._cap: cv2.VideoCapture | None = None
        self._info: SourceInfo | None = None
        self._pts: float | None = None
        self._first_pts: float | None = None
        self._has_pts = False
        self._read_failure: str | None = None

    @property
    def kind(self) -> SourceKind:
        """``camera``, ``file`` or ``stream``."""
        return self._kind

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        """Open (or reopen) the capture.

        Raises:
            SourceError: missing file, unreadable video, absent camera or unreachable stream.
        """
        self.close()
        if self._kind == "file" and Path(str(self._target)).is_dir():
            raise SourceError(f"cannot open {self.name}: it is a folder, not a video file")
        if self._kind == "file" and not Path(str(self._target)).is_file():
            raise SourceError(f"cannot open file {self.name}: no such file; check the path")
        if self._kind == "stream":
            found = unsupported(str(self._target))
            if found is not None:
                raise SourceError(f"cannot open {self.name}: {found.message}")
        started = time.monotonic()
        try:
            cap = self._create()
        except cv2.error as exc:
            raise SourceError(f"cannot open {self.name}: OpenCV refused it ({self._advice()})") from exc
        if not cap.isOpened():
            cap.release()
            if self._kind == "stream":
                failure = diagnose_open(str(self._target), time.monotonic() - started)
                raise SourceError(f"cannot open {self.name}: {failure.message}")
            raise SourceError(self._open_failure())
        self._pts = self._first_pts = None
        # MJPEG carries no timestamps: OpenCV makes them up from the frame rate it assumes.
        self._has_pts = self._kind == "stream" and int(cap.get(cv2.CAP_PROP_FOURCC)) != cv2.VideoWriter.fourcc(*"MJPG")
        if self._kind == "camera":
            self._configure(cap)
        self._cap = cap
        self._info = self._describe(cap)
        if self._kind == "stream" and is_hls(str(self._target)):
            self._info = dataclasses.replace(self._info, burst_s=target_duration(str(self._target)))
        return self._info

    def read(self) -> Image | None:
        """One frame, or None when the read failed.

        Raises:
            SourceError: not open, or OpenCV raised while decoding.
        """
        if self._cap is None:
            raise SourceError(f"{self.name} is not open; call open() first")
        started = time.monotonic()
        try:
            ok, image = self._cap.read()
        except cv2.error as exc:
            raise SourceError(f"reading {self.name} failed inside OpenCV") from exc
        if not ok or image is None:
            self._pts = None
            self._read_failure = read_failure(time.monotonic() - started, self._options.read_timeout_s).message
            return None
        self._read_failure = None
        self._pts = self._position(self._cap) if self._has_pts else None
        return image  # type: ignore[return-value]  # decoded video is always 8-bit BGR

    def seek(self, frame: int) -> None:
        """Position an open file so the next :meth:`read` returns frame ``frame`` (from 0).

        Raises:
            SourceError: not open, not a file, or the backend cannot seek in it.
        """
        if self._cap is None or self._kind != "file":
            raise SourceError(f"{self.name} is not an open file; only files can be positioned")
        if frame and not self._cap.set(cv2.CAP_PROP_POS_FRAMES, frame):
            raise SourceError(f"cannot seek to frame {frame} of {self.name}; the file may be damaged")

    def position_s(self) -> float | None:
        """The last frame's presentation time in seconds (streams with timestamps only)."""
        return self._pts

    def read_failure(self) -> str | None:
        """Why the last read returned None (timed out, or the stream ended)."""
        return self._read_failure

    def _position(self, cap: cv2.VideoCapture) -> float | None:
        msec = cap.get(cv2.CAP_PROP_POS_MSEC)
        if not math.isfinite(msec) or msec < 0:
            return None
        pts = msec / 1000
        if self._first_pts is None:
            self._first_pts = pts
        elif pts == self._first_pts and self._pts == pts:
            # The first two frames at one time: the stream carries no timestamps at all.
            self._has_pts = False
            return None
        return pts

    def close(self) -> None:
        """Release the capture (safe when not open)."""
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def _create(self) -> cv2.VideoCapture:
        opts = self._options
        if self._kind == "stream":
            # Only FFmpeg honours the timeouts; other backends refuse unknown open parameters.
            api = opts.backend_id if opts.backend_id is not None else cv2.CAP_FFMPEG
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                round(opts.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                round(opts.read_timeout_s * 1000),
            ]
            with capture_options(short_probe_options(str(self._target), os.environ.get(ENV))):
                cap = cv2.VideoCapture(self._target, api, params)
            if cap.isOpened() and needs_full_probe(
                cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
            ):
                log.info("%s: no picture size after a short probe; probing it fully", self.name)
                cap.release()
                cap = cv2.VideoCapture(self._target, api, params)
            return cap
        api = opts.backend_id if opts.backend_id is not None else cv2.CAP_ANY
        return cv2.VideoCapture(self._target, api)

    def _configure(self, cap: cv2.VideoCapture) -> None:
        opts = self._options
        # FOURCC goes first: many cameras only offer large modes in MJPG.
        if opts.fourcc is not None:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*opts.fourcc))
        if opts.width is not None:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, opts.width)
        if opts.height is not None:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, opts.height)
        if opts.fps is not None:
            cap.set(cv2.CAP_PROP_FPS, opts.fps)

    def _describe(self, cap: cv2.VideoCapture) -> SourceInfo:
        live = self._kind != "file"
        fallback = CAMERA_FALLBACK_FPS if live else FILE_FALLBACK_FPS
        raw_fps = cap.get(cv2.CAP_PROP_FPS)
        fps = sane_fps(raw_fps)
        if fps is None:
            log.info("%s reports no usable frame rate (%r); assuming %g fps", self.name, raw_fps, fallback)
            fps = fallback
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        frame_count = int(count) if not live and math.isfinite(count) and count > 0 else None
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        opts = self._options
        if (
            self._kind == "camera"
            and (opts.width, opts.height) != (None, None)
            and (width, height) != (opts.width or width, opts.height or height)
        ):
            log.info(
                "%s delivers %dx%d instead of the requested %sx%s", self.name, width, height, opts.width, opts.height
            )
        return SourceInfo(
            fps=fps,
            width=width,
            height=height,
            live=live,
            frame_count=frame_count,
            name=self.name,
            kind=self._kind,
            paced=not live,
            clocked=self._kind == "stream",
            stall_timeout_s=opts.stall_timeout if self._kind == "stream" else None,
        )

    def _open_failure(self) -> str:
        if self._kind == "file":
            return f"cannot open file {self.name}: not a video OpenCV can read; check the file and its codec"
        return f"cannot open {self.name}: {self._advice()}"

    def _advice(self) -> str:
        if self._kind == "camera":
            return "no such device, or another program is using it; check the camera number (cameras count from 0)"
        if self._kind == "stream":
            return (
                f"no video within {self._options.open_timeout_s:g} s; check the URL, the credentials "
                "and that the stream is running"
            )
        return "check the file and its codec"


class SyntheticSource:
    """A generated test pattern: a moving box and the frame number on a fixed background.

    Frames are deterministic (the same ``seed`` and index give the same pixels) and cheap: the
    background is drawn once, each read copies it and draws only the box and the counter.

    Args:
        width, height: frame size.
        fps: the rate it claims; the capture thread paces reads to it.
        frames: end after this many frames per open (None: never). With ``live=True`` the end
            looks like a camera dropout and the next ``open`` starts again, which tests use to
            exercise reconnects.
        live: behave like a camera (True) or a file (False).
        seed: varies the background and colours.
    """

    def __init__(
        self,
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
        frames: int | None = None,
        live: bool = True,
        seed: int = 0,
    ) -> None:
        if width < 32 or height < 32:
            raise ConfigError(f"synthetic frames must be at least 32x32, got {width}x{height}")
        if sane_fps(fps) is None:
            raise ConfigError(f"synthetic fps must be between 0 and {_MAX_SANE_FPS:g}, got {fps}")
        if frames is not None and frames < 0:
            raise ConfigError(f"synthetic frame count must be >= 0, got {frames}")
        self.width, self.height, self.fps = width, height, fps
        self.frames, self.live, self.seed = frames, live, seed
        self._background: Image | None = None
        self._index = -1
        self._info: SourceInfo | None = None
        rng = np.random.default_rng(seed)
        self._box_colour = tuple(int(c) for c in rng.integers(64, 256, 3))
        self._box = (max(8, width // 8), max(8, height // 6))

    @property
    def info(self) -> SourceInfo | None:
        return self._info

    def open(self) -> SourceInfo:
        """Start from frame 0."""
        if self._background is None:
            self._background = self._render_background()
        self._index = 0
        name = f"synthetic {self.width}x{self.height}@{self.fps:g} {'live' if self.live else 'clip'}"
        self._info = SourceInfo(
            fps=self.fps,
            width=self.width,
            height=self.height,
            live=self.live,
            frame_count=self.frames,
            name=name,
            kind="synthetic",
            paced=True,
        )
        return self._info

    def read(self) -> Image | None:
        """The next frame, or None after ``frames`` frames.

        Raises:
            SourceError: not open.
        """
        if self._background is None or self._index < 0:
            raise SourceError("synthetic source is not open; call open() first")
        if self.frames is not None and self._index >= self.frames:
            return None
        image = self.frame(self._index)
        self._index += 1
        return image

    def close(self) -> None:
        """Stop; the next ``open`` starts again from frame 0."""
        self._index = -1

    def frame(self, index: int) -> Image:
        """Frame number ``index`` (what the ``index``-th read after ``open`` returns)."""
        if self._background is None:
            self._background = self._render_background()
        image = self._background.copy()
        bw, bh = self._box
        travel_x, travel_y = self.width - bw, self.height - bh
        # A triangle wave so the box bounces between the edges.
        x = abs((index * 7) % (2 * travel_x) - travel_x)
        y = abs((index * 5) % (2 * travel_y) - travel_y)
        cv2.rectangle(image, (x, y), (x + bw - 1, y + bh - 1), self._box_colour, -1)
        scale = max(0.5, self.height / 480)
        cv2.putText(
            image,
            str(index),
            (int(10 * scale), int(36 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            max(1, int(2 * scale)),
            cv2.LINE_AA,
        )
        return image

    def _render_background(self) -> Image:
        rng = np.random.default_rng(self.seed)
        base = rng.integers(40, 120, 3)
        ramp = np.linspace(0.6, 1.0, self.width, dtype=np.float32)
        image = (ramp[None, :, None] * base[None, None, :]).astype(np.uint8)
        image = np.ascontiguousarray(np.broadcast_to(image, (self.height, self.width, 3)))
        step = max(16, self.width // 16)
        for x in range(0, self.width, step):
            cv2.line(image, (x, 0), (x, self.height - 1), (70, 70, 70), 1)
        for y in range(0, self.height, step):
            cv2.line(image, (0, y), (self.width - 1, y), (70, 70, 70), 1)
        return image


def parse_synthetic(spec: str) -> SyntheticSource | None:
    """A SyntheticSource for a ``synthetic[:WxH[@FPS]][:FRAMES]`` spec; None if ``spec`` is not one.

    Raises:
        ConfigError: it starts with ``synthetic`` but is malformed.
    """
    lowered = spec.lower()
    if lowered != "synthetic" and not lowered.startswith("synthetic:"):
        return None
    match = _SYNTHETIC.fullmatch(lowered)
    if match is None:
        raise ConfigError(
            f"bad synthetic source {spec!r}; use synthetic:WIDTHxHEIGHT@FPS[:FRAMES], e.g. synthetic:1280x720@30"
        )
    width = int(match["w"]) if match["w"] else 1280
    height = int(match["h"]) if match["h"] else 720
    fps = float(match["fps"]) if match["fps"] else 30.0
    frames = int(match["n"]) if match["n"] else None
    return SyntheticSource(width, height, fps, frames=frames, live=frames is None)


def open_source(spec: str | int, options: CaptureOptions | None = None) -> VideoSource:
    """The source for a SOURCE spec (see the module docs); it is not opened yet.

    Raises:
        ConfigError: a malformed spec.
    """
    if isinstance(spec, str):
        synthetic = parse_synthetic(spec.strip())
        if synthetic is not None:
            return synthetic
    return OpenCVSource(spec, options)
