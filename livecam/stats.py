"""The statistics of a run, typed: one frozen dataclass per section, one serialiser for them all.

:func:`to_json` turns any of these dataclasses into the documented ``--stats-json`` names: a
field's name is its key, a nested dataclass is a nested object, a field with the metadata
:data:`OPTIONAL` is left out while it is None, and one with :data:`FLATTENED` writes its keys
beside its parent's. Adding a statistic is adding one typed field with a default.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from livecam.errors import OutputError

Json: TypeAlias = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
"""A JSON value as :func:`json.dumps` writes it."""

JsonDocument: TypeAlias = dict[str, Json]
"""A serialised stats document. Its values are typed like :func:`json.loads`'s, for its readers to
index freely; the typed contract is the dataclasses it comes from."""

_OPTIONAL = "optional"
_FLATTENED = "flattened"


OPTIONAL = {_OPTIONAL: True}
"""The metadata of a field left out of the JSON while it is None (a section that did not run)."""

FLATTENED = {_OPTIONAL: True, _FLATTENED: True}
"""The metadata of an optional section whose keys are written beside its parent's."""


@dataclass(frozen=True)
class Percentiles:
    """p50 and p95 in milliseconds (None without samples)."""

    p50: float | None = None
    p95: float | None = None

    @classmethod
    def rounded(cls, p50: float | None, p95: float | None, digits: int = 1) -> Percentiles:
        """Both figures to ``digits`` decimals (a tenth of a millisecond by default)."""
        return cls(_round(p50, digits), _round(p95, digits))


@dataclass(frozen=True)
class SourceSummary:
    """The source a run showed (``source``)."""

    name: str
    width: int
    height: int
    nominal_fps: float
    live: bool


@dataclass(frozen=True)
class MotionStats:
    """Motion compensation (``motion``): frames drawn with carried boxes, frames the motion thread
    was too far behind for, its CPU and elapsed time per frame and per new answer, track ids given."""

    enabled: bool = False
    compensated_frames: int = 0
    skipped_frames: int = 0
    cost_ms: Percentiles = field(default_factory=Percentiles)
    wall_ms: Percentiles = field(default_factory=Percentiles)
    catch_up_ms: Percentiles = field(default_factory=Percentiles)
    tracks_started: int = 0


@dataclass(frozen=True)
class ServerStats:
    """One detection server's counters (an entry of ``servers``).

    Attributes:
        url: the base URL, credentials and keys redacted.
        requests, ok, failed: requests sent and their outcomes.
        latency_ms: round trips of the answered requests.
        state: ``healthy`` or ``backing-off``.
    """

    url: str
    requests: int = 0
    ok: int = 0
    failed: int = 0
    latency_ms: Percentiles = field(default_factory=Percentiles)
    state: str = "healthy"


@dataclass(frozen=True)
class BoxesLogStats:
    """``boxes_log``: lines written, lines lost, and why writing stopped (None while it works)."""

    lines: int = 0
    dropped: int = 0
    failed: str | None = None


@dataclass(frozen=True)
class CollectStats:
    """What ``--collect`` saved: frames, frames dropped, saves by strategy, frames skipped by reason."""

    collected: int = 0
    collect_dropped: int = 0
    collected_by_strategy: Mapping[str, int] = field(default_factory=dict)
    collect_skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CameraStats:
    """One camera of a run with several sources (an entry of ``cameras``).

    Attributes:
        source: its name, credentials redacted.
        restarts: times the kiosk's watchdog gave it a fresh capture (it showed no new frame for
            the watchdog time).
        failure: the type of the error that ended its capture thread, else None.
    """

    source: str
    source_frames: int = 0
    displayed_frames: int = 0
    source_fps: float = 0.0
    display_fps: float = 0.0
    requests_sent: int = 0
    responses_ok: int = 0
    responses_failed: int = 0
    prediction_age_ms: Percentiles = field(default_factory=Percentiles)
    reconnects: int = 0
    restarts: int = 0
    frames_not_shown: int = 0
    compensated_frames: int = 0
    failure: str | None = None


@dataclass(frozen=True)
class RequestsSkipped:
    """Frames considered for a call and not sent (``requests_skipped``): nothing had changed, or
    the request budget had no call left yet."""

    unchanged: int = 0
    budget: int = 0


@dataclass(frozen=True)
class RunStats:
    """What one live run did; :meth:`to_json` gives the ``--stats-json`` document.

    Attributes:
        failure: why the run ended early because one of its threads crashed, else None.
        send: ``every`` or ``changes`` (``--send``).
        requests_by_reason: calls made with a send gate, by why each was made.
        requests_per_minute: calls per minute over the run.
        estimated_credits: what the answered calls cost on Roboflow's hosted API:
            ``max(processing time, 100 ms) / 500 000 ms`` each.
        motion, servers, boxes_log, collect: the sections of the parts that ran.
        cameras: each camera's figures when the run had several sources (the totals are theirs added up).
    """

    source_frames: int = 0
    displayed_frames: int = 0
    source_fps: float = 0.0
    display_fps: float = 0.0
    requests_sent: int = 0
    responses_ok: int = 0
    responses_failed: int = 0
    stale_responses: int = 0
    prediction_rate: float = 0.0
    request_latency_ms: Percentiles = field(default_factory=Percentiles)
    prediction_age_ms: Percentiles = field(default_factory=Percentiles)
    bytes_sent: int = 0
    duration_s: float = 0.0
    errors: Mapping[str, int] = field(default_factory=dict)
    detections: Mapping[str, int] = field(default_factory=dict)
    in_flight: int | str = 1
    encoder: str | None = None
    frames_not_shown: int = 0
    reconnects: int = 0
    stream_lag_ms: Percentiles = field(default_factory=Percentiles)
    frames_dropped_to_stay_live: int = 0
    send: str = "every"
    requests_skipped: RequestsSkipped = field(default_factory=RequestsSkipped)
    requests_by_reason: Mapping[str, int] = field(default_factory=dict)
    requests_per_minute: float = 0.0
    estimated_credits: float = 0.0
    source: SourceSummary | None = field(default=None, metadata=OPTIONAL)
    failure: str | None = field(default=None, metadata=OPTIONAL)
    motion: MotionStats | None = field(default=None, metadata=OPTIONAL)
    servers: tuple[ServerStats, ...] | None = field(default=None, metadata=OPTIONAL)
    boxes_log: BoxesLogStats | None = field(default=None, metadata=OPTIONAL)
    collect: CollectStats | None = field(default=None, metadata=FLATTENED)
    cameras: tuple[CameraStats, ...] | None = field(default=None, metadata=OPTIONAL)

    def to_json(self) -> JsonDocument:
        """The stats as plain JSON data, under the documented names."""
        return to_json(self)


def to_json(stats: object) -> JsonDocument:
    """A stats dataclass as a JSON object under its documented names (see the module's docstring).

    Raises:
        TypeError: ``stats`` is not a dataclass instance, or holds a value JSON cannot write.
    """
    if not dataclasses.is_dataclass(stats) or isinstance(stats, type):
        raise TypeError(f"{type(stats).__name__} is not a stats dataclass")
    data: dict[str, Json] = {}
    for item in dataclasses.fields(stats):
        value = getattr(stats, item.name)
        if value is None and item.metadata.get(_OPTIONAL):
            continue
        if item.metadata.get(_FLATTENED):
            data.update(to_json(value))
        else:
            data[item.name] = _value(value)
    return data


def _value(value: object) -> Json:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json(value)
    if isinstance(value, Mapping):
        return {str(key): _value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_value(item) for item in value]
    raise TypeError(f"a {type(value).__name__} has no JSON form in the stats")


def write_json(path: Path, data: Mapping[str, object]) -> None:
    """Write ``data`` atomically (a reader never sees half a file).

    Raises:
        OutputError: the file cannot be written (no permission, disk full, ...).
    """
    path = Path(path)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # A device or a link (/dev/stdout, /dev/null, a pipe): written in place. Moving a file
        # over it would replace the device itself, which root may do.
        try:
            with path.open("w", encoding="utf-8") as out:
                out.write(text)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
