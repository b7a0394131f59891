"""``livecam upload``'s work: every collected item not yet in the journal, image then pre-label.

    with Journal(folder) as journal:
        result = upload_folder(folder, api, UploadOptions(split="train", batch="livecam"), journal, stop)

Items go one after the other. A transient failure (network, 5xx, 429) is retried with backoff;
when the attempts run out the run stops, so a rerun later continues where it stopped. A refused
key or an unknown project stops at once. Any other refusal of one item (a 400, a file that is a
link or leads out of the folder, a malformed sidecar) is reported and the run goes on with the
next. The stop event ends the call in progress at once; the journal then holds every step that
finished, and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from livecam.backoff import Backoff
from livecam.collect.store import Item, items
from livecam.http import CallInterrupted
from livecam.progress import Progress
from livecam.upload.api import RoboflowUploadApi, UploadError, UploadRefused
from livecam.upload.files import ItemFileError, read_item_file, read_item_text, read_sidecar
from livecam.upload.journal import Journal

log = logging.getLogger(__name__)

T = TypeVar("T")

SPLITS = ("train", "valid", "test")
DEFAULT_BATCH = "livecam"


@dataclass(frozen=True)
class UploadOptions:
    """How items are filed in the project.

    Attributes:
        split: ``train``, ``valid`` or ``test``.
        batch: the upload batch (Roboflow groups images for labelling by batch).
        tags: tags on every image.
        attempts: tries per call before a transient failure stops the run.
        backoff: waits between tries.
    """

    split: str = "train"
    batch: str = DEFAULT_BATCH
    tags: tuple[str, ...] = ()
    attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=30.0))


@dataclass(frozen=True)
class UploadResult:
    """How a run went.

    Attributes:
        total: complete items in the folder.
        uploaded: items uploaded by this run.
        already: items the journal had as done.
        failed: items refused (name, reason); a rerun tries them again.
        stopped: why the run stopped early (refused key, unknown project, network down), if it did.
        interrupted: the stop event ended the run.
    """

    total: int
    uploaded: int
    already: int
    failed: tuple[tuple[str, str], ...]
    stopped: str | None
    interrupted: bool


class _Interrupted(Exception):
    pass


def upload_folder(
    directory: Path,
    api: RoboflowUploadApi,
    options: UploadOptions,
    journal: Journal,
    stop: threading.Event,
    progress: Progress | None = None,
) -> UploadResult:
    """Upload every complete item of ``directory`` the journal does not have as done."""
    project = api.target.project
    found = items(directory)
    todo = [item for item in found if not journal.done(project, item.stem)]
    already = len(found) - len(todo)
    if already:
        log.info("%d of %d items already uploaded to %s; %d to go", already, len(found), project, len(todo))
    uploaded = 0
    failed: list[tuple[str, str]] = []
    stopped: str | None = None
    interrupted = False
    for index, item in enumerate(todo):
        if stop.is_set():
            interrupted = True
            break
        try:
            _upload_item(item, api, options, journal, stop)
            uploaded += 1
        except (_Interrupted, CallInterrupted):
            interrupted = True
            break
        except UploadRefused as exc:
            stopped = str(exc)
            break
        except UploadError as exc:
            if exc.retryable:
                stopped = f"{exc} (after {options.attempts} tries)"
                break
            failed.append((item.image.name, str(exc)))
            log.warning("%s", exc)
        except ItemFileError as exc:
            failed.append((item.image.name, str(exc)))
            log.warning("skipping %s: %s", item.image.name, exc)
        if progress is not None:
            progress.update(index + 1, len(failed))
    return UploadResult(len(found), uploaded, already, tuple(failed), stopped, interrupted)


def _upload_item(
    item: Item, api: RoboflowUploadApi, options: UploadOptions, journal: Journal, stop: threading.Event
) -> None:
    project = api.target.project
    image_id = journal.image_id(project, item.stem)
    annotation = item.annotation
    text = read_item_text(annotation) if annotation is not None else None
    if image_id is None:
        metadata = _metadata(item)
        data = read_item_file(item.image)
        image_id = _retried(
            lambda: api.upload_image(
                item.image.name, data, split=options.split, batch=options.batch, tags=options.tags, metadata=metadata
            ),
            options,
            stop,
        )
        journal.record_image(project, item.stem, image_id)
    if annotation is not None and text is not None:
        _retried(
            lambda: api.save_annotation(image_id, annotation.name, text, batch=options.batch),
            options,
            stop,
        )
    journal.record_done(project, item.stem)


def _retried(call: Callable[[], T], options: UploadOptions, stop: threading.Event) -> T:
    backoff = Backoff(options.backoff.initial, options.backoff.maximum, options.backoff.jitter)
    for attempt in range(1, options.attempts + 1):
        try:
            return call()
        except UploadError as exc:
            if not exc.retryable or isinstance(exc, UploadRefused) or attempt == options.attempts:
                raise
            delay = backoff.next_delay(exc.retry_after or 0.0)
            log.info("%s; trying again in %.0f s (%d of %d)", exc, delay, attempt + 1, options.attempts)
            if stop.wait(delay):
                raise _Interrupted from exc
    raise AssertionError("unreachable")


def _metadata(item: Item) -> dict[str, Any]:
    """What the sidecar says about where and why the frame was collected, as Roboflow image metadata.

    Raises:
        ItemFileError: the sidecar is a link, unreadable or not a JSON object.
    """
    sidecar = read_sidecar(item.sidecar)
    metadata: dict[str, Any] = {"collected_by": "livecam"}
    for key in ("source", "model", "time", "frame", "video_time_s"):
        value = sidecar.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            metadata[key] = value
    strategies = sidecar.get("strategies")
    if isinstance(strategies, list):
        metadata["strategies"] = ",".join(s for s in strategies if isinstance(s, str))
    return metadata
