"""File annotation from Python: a video file (or a folder of images) in, the annotated copy out.

    result = annotate("in.mp4", "out.mp4", json="out.jsonl")      # -> AnnotateResult

It shares with ``livecam annotate`` how many requests go out at once (:func:`window_for`) and how
the outputs are opened (:func:`outputs`).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livecam.annotate.engine import (
    DEFAULT_IN_FLIGHT,
    EMBEDDED_IN_FLIGHT,
    MAX_WORKERS,
    AnnotateOptions,
    AnnotateResult,
    Annotator,
    PooledDetector,
    server_pool,
)
from livecam.annotate.jsonl import JsonLinesWriter
from livecam.annotate.keyframes import Keyframes, asking_for_tracks, parse_keyframes
from livecam.annotate.media import (
    FrameInput,
    FrameOutput,
    ImageFolderInput,
    ImageFolderOutput,
    VideoInput,
    VideoOutput,
)
from livecam.connection import ApiSettings
from livecam.errors import ConfigError
from livecam.outputs import StagedFile, check_writable, check_writable_folder
from livecam.public.options import API_OPTIONS, LABELS, keyword_values, label_style
from livecam.public.serve import connect


def window_for(settings: ApiSettings) -> tuple[int, bool]:
    """(requests in flight per server, learnt from round trips) for ``settings.in_flight``.

    A number is used as given; otherwise up to :data:`DEFAULT_IN_FLIGHT` per API server, learnt,
    or :data:`EMBEDDED_IN_FLIGHT` for the embedded model, which shares this machine's cores with
    the client (more requests would only add encoding work).
    """
    if isinstance(settings.in_flight, int):
        return settings.in_flight, False
    if settings.embedded:
        return EMBEDDED_IN_FLIGHT, False
    return DEFAULT_IN_FLIGHT, True


@dataclass
class Outputs:
    """The open outputs of a run; ``keep`` decides whether they replace their targets at the end."""

    frames: FrameOutput
    jsonl: JsonLinesWriter | None
    keep: bool | None = None


def worth_keeping(result: AnnotateResult) -> bool:
    """Whether the files hold something: a frame written, and an answer unless the run failed for good."""
    if result.frames_written == 0:
        return False
    return result.fatal is None or result.sent > result.failed


@contextlib.contextmanager
def outputs(source: FrameInput, output: Path, json: Path | None, folder: bool) -> Iterator[Outputs]:
    """The video (or image folder) and JSON Lines outputs, written beside their targets and moved
    over them at the end only if worth keeping (else a file already there stays as it was)."""
    staged = [StagedFile(path) for path in (None if folder else output, json) if path is not None]
    by_target = {s.target: s.path for s in staged}
    frames: FrameOutput
    if folder:
        output.mkdir(exist_ok=True)
        frames = ImageFolderOutput(output)
    else:
        assert isinstance(source, VideoInput)
        frames = VideoOutput(by_target[output], source.fps, source.size)
    opened = Outputs(frames, None)
    try:
        with contextlib.ExitStack() as stack:
            if json is not None:
                opened.jsonl = stack.enter_context(JsonLinesWriter(by_target[json]))
            yield opened
    finally:
        frames.close()
        keep = opened.keep if opened.keep is not None else frames.written > 0
        for file in staged:
            if keep:
                file.commit()
            else:
                file.discard()


def annotate(
    input: str | Path,
    output: str | Path,
    *,
    json: str | Path | None = None,
    every: int = 1,
    keyframes: int | str | None = None,
    labels: bool | str | list[str] = True,
    **options: Any,
) -> AnnotateResult:
    """Annotate every frame of ``input`` into ``output``, in order, as ``livecam annotate`` does.

    Args:
        input: a video file OpenCV can read, or a folder of images.
        output: the annotated video (or a folder for annotated images).
        json: also write one JSON object per frame here (Roboflow format), in order.
        every: send only every Nth frame; the frames between keep its boxes.
        keyframes: send only keyframes (``"auto"`` or every Nth frame) and place the boxes of the
            frames between from the answers on both sides, carried with the objects' motion.
        labels: what labels show, as for :func:`livecam.draw`.
        options: the API options by their long names with underscores (``api_url``, ``model``,
            ``api_key``, ``confidence``, ``in_flight``, ...); without ``api_url`` and ``model``
            the embedded server answers.

    Returns:
        What was read, sent, written and failed; ``fatal``, ``broken`` and ``input_error`` say
        why a run ended early.

    Raises:
        TypeError, ValueError: an unknown or bad option (naming it).
        ConfigError: a missing input, an output folder that does not exist, an unusable API.
    """
    source_path, output_path = Path(input), Path(output)
    json_path = None if json is None else Path(json)
    if not source_path.exists():
        raise ConfigError(f"{source_path} does not exist; give a video file or a folder of images")
    folder = source_path.is_dir()
    if folder:
        check_writable_folder(output_path, "output")
    else:
        check_writable(output_path, "output")
    if json_path is not None:
        check_writable(json_path, "json")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every: must be a whole number of at least 1 (got {every!r})")
    choice = _keyframes(keyframes)
    parts = keyword_values({"labels": labels}, (LABELS,))[LABELS]
    settings = ApiSettings.given({o.dest: v for o, v in keyword_values(options, API_OPTIONS).items()}, os.environ)
    per_server, adaptive = window_for(settings)
    source: FrameInput = ImageFolderInput(source_path) if folder else VideoInput(source_path)
    run_options = AnnotateOptions(
        in_flight=min(MAX_WORKERS, per_server * settings.servers),
        every=every,
        keyframes=choice,
        confidence=settings.confidence / 100,
        style=label_style(parts),
    )
    try:
        with contextlib.ExitStack() as stack:
            api = asking_for_tracks(stack.enter_context(connect(settings)), choice)
            written = stack.enter_context(outputs(source, output_path, json_path, folder))
            pool = server_pool(api, per_server, adaptive)
            stack.callback(pool.close)
            result = Annotator(
                source,
                written.frames,
                lambda: PooledDetector(pool),
                run_options,
                threading.Event(),
                jsonl=written.jsonl,
                servers=pool,
            ).run()
            written.keep = worth_keeping(result)
            return result
    finally:
        source.close()


def _keyframes(value: int | str | None) -> Keyframes | None:
    """``keyframes=`` checked as ``--keyframes`` is."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"keyframes: must be 'auto' or a whole number of at least 2 (got {value!r})")
    try:
        return parse_keyframes(str(value))
    except ValueError as exc:
        raise ValueError(f"keyframes: {exc}") from None
