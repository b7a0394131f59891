"""Which detection API a run asks: the API settings as given, and the embedded server when none is named.

:class:`ApiSettings` holds the API options as the user gave them (flags, the kiosk file's ``[api]``
table or Python keywords); :func:`connect` turns them into the :class:`~livecam.client.ApiConfig`
the modes take, starting the embedded server (:func:`serve`) for as long as the context lasts
when neither an API URL nor a model was named.

    with connect(ApiSettings()) as api:          # the embedded server, bundled COCO model
        client = DetectionClient(api)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from livecam.client import ApiConfig
from livecam.cost.policy import DEFAULT_REFRESH_S, SendPolicy, send_policy

log = logging.getLogger("livecam")

API_KEY_ENV = "ROBOFLOW_API_KEY"
AUTO_MAX_IN_FLIGHT = 32
"""``in_flight="auto"``: the most requests open at once."""


@dataclass(frozen=True)
class ApiSettings:
    """The detection API options as given (see :data:`livecam.public.options.API_OPTIONS`).

    ``api_url`` and ``model`` both None means the embedded server; ``in_flight`` None means the
    command's own default. ``api_url`` holds every URL given (several servers of one model).
    """

    api_url: tuple[str, ...] | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    confidence: float = 40.0
    overlap: float = 30.0
    classes: tuple[str, ...] | None = None
    max_side: int = 640
    jpeg_quality: int = 80
    in_flight: int | str | None = None
    timeout: float = 10.0
    encoder: str = "auto"
    precision: str | None = None
    """The embedded server's model (``int8``, ``fp16``, ``fp32``), as the options table checks it."""
    send: str | None = None
    """``every`` or ``changes``; None chooses by the server (``changes`` for Roboflow's hosted API)."""
    refresh: float = DEFAULT_REFRESH_S
    max_requests_per_minute: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.api_url, str):  # one URL given as text (the Python API)
            object.__setattr__(self, "api_url", (self.api_url,))

    @classmethod
    def given(cls, values: Mapping[str, Any], env: Mapping[str, str]) -> ApiSettings:
        """From checked option values by name (absent ones take the defaults), the key from ``env`` if none.

        A confidence or overlap below 1 is a fraction, as servers read it (0.9 is 90 %); it is
        turned into percent, and the reading logged.
        """
        percent = {name: as_percent(values[name], name) for name in _PERCENT if values.get(name) is not None}
        return cls(**{**values, **percent}).with_env_key(env)

    def with_env_key(self, env: Mapping[str, str]) -> ApiSettings:
        """These settings; without a key, the key of the environment's ``ROBOFLOW_API_KEY``."""
        if self.api_key:
            return self
        return dataclasses.replace(self, api_key=env.get(API_KEY_ENV) or None)

    def send_policy(self, urls: Sequence[str]) -> SendPolicy:
        """Which frames a live run sends to the servers at ``urls`` (``--send``, ``--refresh``, the budget)."""
        return send_policy(self.send, self.refresh, self.max_requests_per_minute, urls)

    @property
    def embedded(self) -> bool:
        """Whether the embedded server answers (no API URL and no model)."""
        return self.api_url is None and self.model is None

    @property
    def servers(self) -> int:
        """How many detection servers were named (1 for the embedded or the hosted one)."""
        return len(self.api_url or ()) or 1

    @property
    def live_window(self) -> tuple[int, bool]:
        """``in_flight`` for the live pipeline: (requests open at most, adaptive); None means 1."""
        if self.in_flight == "auto":
            return AUTO_MAX_IN_FLIGHT, True
        return (self.in_flight if isinstance(self.in_flight, int) else 1), False

    def api_config(self, api_urls: tuple[str, ...], model_id: str) -> ApiConfig:
        """The :class:`ApiConfig` for these options against the servers ``api_urls`` of ``model_id``."""
        return ApiConfig(
            api_url=api_urls[0],
            api_urls=api_urls if len(api_urls) > 1 else (),
            model_id=model_id,
            api_key=self.api_key,
            confidence=self.confidence,
            overlap=self.overlap,
            classes=self.classes,
            max_side=self.max_side or None,
            jpeg_quality=self.jpeg_quality,
            read_timeout=self.timeout,
            encoder=self.encoder,
        )


_PERCENT = ("confidence", "overlap")


def as_percent(value: float, name: str) -> float:
    """``value`` in percent: one below 1 (but above 0) is read as a fraction, and says so."""
    if 0 < value < 1:
        percent = round(value * 100, 6)
        log.info("--%s %g read as %g %% (a value below 1 is a fraction)", name, value, percent)
        return percent
    return value
