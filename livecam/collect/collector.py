"""The collector: picks answered frames, and saves them from its own thread.

    collector = Collector(config, source="camera 0", model_id="my-project/3")
    collector.start()                       # one clear message and no collecting if DIR is unusable
    collector.offer(frame, predictions)     # from the sender thread; returns at once
    collector.close()                       # saves what is queued (bounded), stops the thread
    collector.stats()                       # {"collected": 7, "collect_dropped": 0, ...}

:meth:`Collector.offer` only runs the strategies and a limit check, then hands the frame to a
bounded queue: the display and the sender never wait for the disk. A frame within the limits
reserves its save; when the queue is full it is dropped and counted. The writer thread skips
near-duplicates of recent saves (giving their reservation back) and writes the full-resolution
frame, its VOC pre-label and a JSON sidecar.
A folder that cannot be written, or a disk below the free-space floor, stops collecting with
one message; the video goes on.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from livecam.collect.config import CollectConfig
from livecam.collect.dedupe import FINGERPRINT_BYTES, Fingerprint, RecentHashes, fingerprint, signature
from livecam.collect.disk import DiskGuard, FreeSpace, free_bytes
from livecam.collect.limits import SaveLimits
from livecam.collect.store import IMAGE_SUFFIX, items, remove_leftovers, write_item
from livecam.collect.strategies import Chooser
from livecam.collect.voc import voc_xml
from livecam.encode import Encoder, OpenCVEncoder
from livecam.frames import Frame
from livecam.predictions import Predictions
from livecam.redaction import redact
from livecam.stats import CollectStats, JsonDocument, to_json
from livecam.workers import Worker

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0
MAX_FAILURES = 5
"""Saves that may fail in a row before collection stops."""
SIDECAR_FORMAT = 1
_MB = 1024 * 1024


@dataclass(frozen=True)
class _Job:
    frame: Frame
    predictions: Predictions
    strategies: tuple[str, ...]
    wall_time: float
    video_time_s: float | None
    camera: tuple[int, str] | None = None


_END = object()


class Collector:
    """Saves the answered frames that the configured strategies pick.

    Args:
        config: what to collect and the limits.
        source: the source's display name, for the sidecar (already free of credentials).
        model_id: the model that answered, for the sidecar.
        clock: steady seconds, used by the rate limits when a frame's own time is not given.
        wall_clock: seconds since the epoch, for the sidecar's time.
        free_space: how free disk space is measured.
        rng: randomness of the ``random`` strategy and of item names.
        encoder: JPEG encoder for the saved frames.
    """

    def __init__(
        self,
        config: CollectConfig,
        *,
        source: str,
        model_id: str | None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        free_space: FreeSpace = free_bytes,
        rng: random.Random | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.config = config
        self._source = redact(source)
        self._model_id = model_id
        self._clock = clock
        self._wall_clock = wall_clock
        self._chooser = Chooser.from_config(config, rng)
        self._choose_lock = threading.Lock()
        self._recent = RecentHashes(config.recent, config.min_difference)
        self._guard = DiskGuard(config.directory, int(config.min_free_mb * _MB), free_space)
        self._limits = SaveLimits(config.max_per_minute, config.max_per_hour, config.max_total)
        self._encoder = encoder or OpenCVEncoder()
        self._queue: queue.Queue[_Job | object] = queue.Queue(maxsize=config.queue)
        self._worker = Worker(self._write_loop, "livecam-collect")
        self._stats_lock = threading.Lock()
        self._collected = 0
        self._dropped = 0
        self._by_strategy: dict[str, int] = {}
        self._skipped = {"duplicate": 0, "limit": 0}
        self._off: str | None = "not started"
        self._told_limit = False
        self._failures = 0
        self._name_token = secrets.token_hex(2) if rng is None else f"{rng.getrandbits(16):04x}"
        self._sequence = 0

    # --- lifetime -----------------------------------------------------------------------------

    def start(self) -> bool:
        """Prepare the folder and start the writer; False (after one log line) if it is unusable."""
        directory = self.config.directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
            probe = directory / f".livecam-probe-{os.getpid()}{IMAGE_SUFFIX}.tmp"
            probe.write_bytes(b"")
            probe.unlink()
            remove_leftovers(directory)
            existing = items(directory)
            free = self._guard.free()
        except OSError as exc:
            self._turn_off(f"cannot write to {directory} ({exc.strerror or exc})", logging.ERROR)
            return False
        self._limits.saved = len(existing)
        for item in existing[-self.config.recent :]:
            remembered = _remembered(item.read_sidecar)
            if remembered is not None:
                self._recent.add(*remembered)
        if free < self._guard.floor:
            self._turn_off(self._disk_message(free), logging.WARNING)
            return False
        if self._limits.exhausted:
            self._turn_off(
                f"{directory} already holds {len(existing)} items (--collect-max-total {self.config.max_total}); "
                "upload and move them elsewhere to collect more",
                logging.WARNING,
            )
            return False
        self._off = None
        self._worker.start()
        log.info(
            "collecting frames to %s (%s); %d items there already",
            directory,
            ", ".join(self.config.strategies),
            len(existing),
        )
        return True

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Save what is queued (within ``timeout``) and stop the writer thread. Idempotent."""
        if not self._worker.is_alive():
            return
        deadline = self._clock() + timeout
        try:
            self._queue.put(_END, timeout=timeout)
        except queue.Full:
            self._turn_off("closing", logging.DEBUG)  # the writer drops what is left when it wakes
        if not self._worker.join(max(0.0, deadline - self._clock())):
            log.warning("the collect writer did not finish within %.0f s; leaving it", timeout)
        if self._off is None:
            self._off = "closed"  # a late offer has no writer left to take it

    # --- the hot path ---------------------------------------------------------------------------

    def offer(
        self,
        frame: Frame,
        predictions: Predictions,
        video_time_s: float | None = None,
        *,
        copy: bool = False,
        camera: tuple[int, str] | None = None,
    ) -> None:
        """Consider one answered frame; returns at once, whatever the disk does.

        Args:
            frame: the full-resolution frame the answer is for. It is kept, not copied, unless
                ``copy``: live frames are never modified after capture.
            predictions: the answer, in the frame's pixels.
            video_time_s: the frame's position in a video file; when given it also drives the
                rate limits, so a file annotated faster than real time is sampled over its length.
            copy: the caller will draw on ``frame.image`` next; a frame that is queued is copied first.
            camera: with several live sources, (index, name) of the frame's camera: the sidecar
                says ``"camera": index`` and names that source.
        """
        if self._off is not None:
            return
        with self._choose_lock:
            names = self._chooser.pick(predictions)
        if not names:
            return
        if not self._limits.take(video_time_s if video_time_s is not None else frame.captured_at):
            self._count("limit")
            if self._limits.exhausted and not self._told_limit:
                self._told_limit = True
                log.info(
                    "%s holds %d items, the --collect-max-total limit: no more frames are collected",
                    self.config.directory,
                    self._limits.saved,
                )
            return
        if copy:
            frame = Frame(frame.seq, frame.image.copy(), frame.captured_at)
        job = _Job(frame, predictions, names, self._wall_clock(), video_time_s, camera)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._lost()

    # --- the writer thread ----------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if not isinstance(job, _Job):
                return
            if self._off is not None:
                self._lost()
                continue
            try:
                self._save(job)
            except Exception as exc:  # noqa: BLE001 - any failure: counted, told once, the run goes on
                self._failed(exc)
            else:
                self._failures = 0

    def _save(self, job: _Job) -> None:
        image = job.frame.image
        value = fingerprint(image)
        seen = signature(p.class_name for p in job.predictions.items)
        if self._recent.near(value, seen):
            self._limits.give_back()
            self._count("duplicate")
            return
        stem = self._stem(job)
        jpeg = self._encoder.encode(image, self.config.jpeg_quality)
        height, width = image.shape[:2]
        boxes = (*job.predictions.items, *job.predictions.below_threshold)
        annotation = voc_xml(stem + IMAGE_SUFFIX, (width, height), boxes) if boxes else None
        sidecar = self._sidecar(job, stem, value, (width, height), annotation is not None)
        try:
            room = self._guard.room_for(len(jpeg) + len(annotation or "") + 4096)
        except OSError as exc:
            room = False
            log.debug("cannot measure free space: %s", exc)
        if not room:
            self._lost()
            self._turn_off(self._disk_message(self._free_or_zero()), logging.WARNING)
            return
        try:
            write_item(self.config.directory, stem, jpeg, annotation, sidecar)
        except OSError as exc:
            self._dropped_save()
            self._turn_off(f"cannot write to {self.config.directory} ({exc.strerror or exc})", logging.ERROR)
            return
        self._recent.add(value, seen)
        with self._stats_lock:
            self._collected += 1
            for name in job.strategies:
                self._by_strategy[name] = self._by_strategy.get(name, 0) + 1

    def _stem(self, job: _Job) -> str:
        self._sequence += 1
        when = datetime.fromtimestamp(job.wall_time, timezone.utc)
        return f"{when:%Y%m%d-%H%M%S}-{when.microsecond // 1000:03d}-{self._name_token}-{self._sequence:05d}"

    def _sidecar(
        self, job: _Job, stem: str, value: Fingerprint, size: tuple[int, int], annotated: bool
    ) -> dict[str, Any]:
        answer = job.predictions.to_roboflow()
        sidecar: dict[str, Any] = {
            "format": SIDECAR_FORMAT,
            "image": stem + IMAGE_SUFFIX,
            "annotation": stem + ".xml" if annotated else None,
            "source": self._source,
            "frame": job.frame.seq,
            "video_time_s": None if job.video_time_s is None else round(job.video_time_s, 3),
            "time": datetime.fromtimestamp(job.wall_time, timezone.utc).isoformat(timespec="milliseconds"),
            "strategies": list(job.strategies),
            "model": self._model_id,
            "width": size[0],
            "height": size[1],
            "predictions": answer["predictions"],
            "below_threshold": Predictions(items=job.predictions.below_threshold).to_roboflow()["predictions"],
            "thumbnail": value.hex(),
        }
        if job.camera is not None:
            sidecar["camera"], sidecar["source"] = job.camera[0], redact(job.camera[1])
        return sidecar

    # --- state and stats ------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether frames are still being collected."""
        return self._off is None

    @property
    def off_reason(self) -> str | None:
        """Why collection stopped (or never started), else None."""
        return self._off

    def summary(self) -> CollectStats:
        """What was collected, dropped and skipped so far (the run statistics' collect figures)."""
        with self._stats_lock:
            return CollectStats(
                collected=self._collected,
                collect_dropped=self._dropped,
                collected_by_strategy=dict(sorted(self._by_strategy.items())),
                collect_skipped=dict(self._skipped),
            )

    def stats(self) -> JsonDocument:
        """:meth:`summary` as JSON (``collected``, ``collect_dropped``, ``collected_by_strategy``, ...)."""
        return to_json(self.summary())

    def _lost(self) -> None:
        """A reserved save that was never tried (queue full, collection off): dropped, its limit given back."""
        self._limits.give_back()
        self._dropped_save()

    def _dropped_save(self) -> None:
        with self._stats_lock:
            self._dropped += 1

    def _failed(self, exc: Exception) -> None:
        """A save that was tried and failed: its files are gone (``write_item``), and it still
        counts against the limits, so failing saves cannot write faster than the limits allow;
        ``MAX_FAILURES`` in a row stop collecting."""
        self._dropped_save()
        self._failures += 1
        reason = f"{type(exc).__name__}: {exc}"
        if self._failures == 1:
            log.info("saving a collected frame failed (%s)", reason)
        log.debug("collect save failure %d", self._failures, exc_info=(type(exc), exc, exc.__traceback__))
        if self._failures >= MAX_FAILURES:
            self._turn_off(f"{self._failures} saves in a row failed (the last: {reason})", logging.WARNING)

    def _count(self, reason: str) -> None:
        with self._stats_lock:
            self._skipped[reason] += 1

    def _turn_off(self, reason: str, level: int) -> None:
        if self._off is None or self._off == "not started":
            self._off = reason
            if level > logging.DEBUG:
                log.log(level, "collection stopped: %s; the video goes on", reason)

    def _free_or_zero(self) -> int:
        try:
            return self._guard.free()
        except OSError:
            return 0

    def _disk_message(self, free: int) -> str:
        return (
            f"only {free / _MB:.0f} MB free for {self.config.directory}, "
            f"under the --collect-min-free-mb floor of {self.config.min_free_mb:g} MB"
        )


def _remembered(read: Callable[[], dict[str, Any]]) -> tuple[Fingerprint, str] | None:
    """The fingerprint and signature of an earlier save, from its sidecar (None for older sidecars)."""
    try:
        sidecar = read()
        text = sidecar.get("thumbnail")
        boxes = sidecar.get("predictions")
        if not isinstance(text, str) or len(text) != 2 * FINGERPRINT_BYTES or not isinstance(boxes, list):
            return None
        return bytes.fromhex(text), signature(str(p.get("class")) for p in boxes if isinstance(p, dict))
    except (OSError, ValueError) as exc:  # the message names the file
        log.warning("ignoring an unreadable sidecar: %s", exc)
        return None
