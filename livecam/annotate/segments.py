"""Long videos cut into segments of whole frames, and the segments' outputs joined back in order.

    spans = frame_spans(frames=9000, fps=25.0, segment_s=120, every=1)   # [(0, 3000), (3000, 6000), (6000, None)]
    join_videos([part0, part1, part2], out, fps, size)                  # every frame, in order
    join_lines([lines0, lines1, lines2], out_jsonl)                     # byte for byte

A segment's JSON Lines are the lines a run over the whole file writes for those frames (the
engine numbers frames and times in the whole file), so joining is concatenation. Its video's
compressed frames are copied into one file with PyAV (the ray extra), or, without it, decoded and
written again, once per video cut in several segments.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from livecam.display import VideoRecorder
from livecam.errors import ConfigError, OutputError, SourceError
from livecam.sources import OpenCVSource

DEFAULT_SEGMENT_S = 600.0
"""Seconds of video per task by default (BENCHMARKS.md, "Ray"): a worker's first task costs 0.7 s,
under 0.5 % of ten minutes' client work; a one-hour video still spreads over six workers, and
clips up to ten minutes are not cut at all."""
log = logging.getLogger(__name__)

PARTS_FOLDER = ".livecam-parts"
"""Where segments' outputs wait in OUTDIR until their video is complete."""


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` of one input (``end`` None: to the end of the file).

    Attributes:
        name: the input's output name.
        index: the segment's place in the input, from 0.
        start, end: the frame range.
        last: the final segment of the input.
    """

    name: str
    index: int
    start: int
    end: int | None

    @property
    def key(self) -> str:
        """The segment's manifest key."""
        return f"{self.name}#{self.start}-{'end' if self.end is None else self.end}"

    def parts(self, outdir: Path) -> tuple[Path, Path]:
        """Its video and JSON Lines files while waiting to be joined."""
        stem = outdir / PARTS_FOLDER / self.name / f"{self.index:05d}-{self.start}"
        return stem.with_suffix(".mp4"), stem.with_suffix(".jsonl")


def frame_spans(frames: int | None, fps: float, segment_s: float, every: int = 1) -> list[tuple[int, int | None]]:
    """Frame ranges of about ``segment_s`` seconds, the last open-ended (the header's count may be off).

    Each cut falls on a multiple of ``every`` so every segment starts with a frame that is sent,
    as in a run over the whole file.

    Raises:
        ConfigError: ``segment_s`` is not positive.
    """
    if not segment_s > 0 or not math.isfinite(segment_s):
        raise ConfigError(f"--segment-s must be a positive number of seconds (got {segment_s})")
    length = max(every, round(segment_s * fps) // every * every)
    if frames is None or frames <= length:
        return [(0, None)]
    starts = list(range(0, frames, length))
    if frames - starts[-1] < length // 4 and len(starts) > 1:
        starts.pop()  # a short tail joins the segment before it rather than costing a task of its own
    return [(start, nxt) for start, nxt in zip(starts, [*starts[1:], None], strict=True)]


def join_videos(parts: Sequence[Path], output: Path, fps: float, size: tuple[int, int]) -> None:
    """Every frame of ``parts``, in order, into ``output`` (replaced atomically; one part is moved).

    The compressed frames are copied when PyAV is installed (the ray extra brings it): no second
    encoding, so no loss and little work. Without it, or if a part will not copy, the frames are
    decoded and written again.

    Raises:
        OutputError: a part cannot be read or the output cannot be written.
    """
    if len(parts) == 1:
        os.replace(parts[0], output)
        return
    temporary = output.with_name(f".{output.stem}.joining{output.suffix}")
    if not _copy_packets(parts, temporary):
        _encode_again(parts, temporary, fps, size)
    os.replace(temporary, output)


def _copy_packets(parts: Sequence[Path], output: Path) -> bool:
    """Remux ``parts`` one after another into ``output``, shifting each part's timestamps; False if it cannot."""
    try:
        import av
    except ImportError:
        return False
    try:
        with av.open(str(parts[0])) as first, av.open(str(output), "w") as out:
            stream = out.add_stream_from_template(first.streams.video[0])
            offset = 0
            for part in parts:
                with av.open(str(part)) as source:
                    end = offset
                    for packet in source.demux(source.streams.video[0]):
                        if packet.dts is None:
                            continue  # the demuxer's empty packet at the end
                        packet.pts = (packet.pts or 0) + offset
                        packet.dts += offset
                        end = max(end, packet.pts + (packet.duration or 0))
                        packet.stream = stream
                        out.mux(packet)
                    offset = end
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        log.warning("cannot copy the segments into %s (%s); decoding and writing them again", output, exc)
        output.unlink(missing_ok=True)
        return False
    return True


def _encode_again(parts: Sequence[Path], output: Path, fps: float, size: tuple[int, int]) -> None:
    writer = VideoRecorder(output, fps, size)
    try:
        for part in parts:
            source = OpenCVSource(str(part))
            try:
                source.open()
                while (image := source.read()) is not None:
                    writer.write(image)
            except SourceError as exc:
                raise OutputError(f"cannot read the segment {part}: {exc}") from exc
            finally:
                source.close()
    finally:
        writer.close()


def join_lines(parts: Sequence[Path], output: Path) -> None:
    """Concatenate ``parts`` into ``output`` (replaced atomically).

    Raises:
        OutputError: a part cannot be read or the output cannot be written.
    """
    temporary = output.with_name(f".{output.name}.joining")
    try:
        with temporary.open("wb") as out:
            for part in parts:
                with part.open("rb") as file:
                    shutil.copyfileobj(file, out)
        os.replace(temporary, output)
    except OSError as exc:
        raise OutputError(f"cannot join the segments into {output} ({exc.strerror or exc})") from exc
