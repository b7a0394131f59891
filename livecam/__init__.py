"""livecam: object detections from a Roboflow-format HTTP API, drawn on live video.

Example:
    >>> import livecam
    >>> with livecam.serve() as url:                       # the embedded server, bundled COCO model
    ...     with livecam.Client(url, model="coco/1") as client:
    ...         predictions = client.infer("photo.jpg")
    >>> picture = livecam.draw(image, predictions)
    >>> stats = livecam.run("video.mp4", max_frames=100)   # -> RunStats, as ``livecam run`` gives
    >>> for shown in livecam.stream("video.mp4"):          # each displayed frame and its boxes
    ...     print(shown.index, len(shown.predictions or ()))

Names are imported when first used, so ``import livecam`` loads neither OpenCV nor onnxruntime.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from livecam.annotate.engine import AnnotateResult
    from livecam.client import ApiConfig, DetectionClient
    from livecam.display import HeadlessDisplay, WindowDisplay
    from livecam.errors import (
        AuthError,
        ConfigError,
        DetectionError,
        LivecamError,
        ModelNotFoundError,
        SourceError,
    )
    from livecam.live.pipeline import LiveConfig, LivePipeline
    from livecam.predictions import Prediction, Predictions
    from livecam.public.annotate import annotate
    from livecam.public.client import Client, draw
    from livecam.public.live import Shown, run, stream
    from livecam.public.serve import serve
    from livecam.sources import SyntheticSource, open_source
    from livecam.stats import RunStats

__version__ = "0.1.0"

_WHERE = {
    "AnnotateResult": "livecam.annotate.engine",
    "ApiConfig": "livecam.client",
    "AuthError": "livecam.errors",
    "Client": "livecam.public.client",
    "ConfigError": "livecam.errors",
    "DetectionClient": "livecam.client",
    "DetectionError": "livecam.errors",
    "HeadlessDisplay": "livecam.display",
    "LiveConfig": "livecam.live.pipeline",
    "LivePipeline": "livecam.live.pipeline",
    "LivecamError": "livecam.errors",
    "ModelNotFoundError": "livecam.errors",
    "Prediction": "livecam.predictions",
    "Predictions": "livecam.predictions",
    "RunStats": "livecam.stats",
    "Shown": "livecam.public.live",
    "SourceError": "livecam.errors",
    "SyntheticSource": "livecam.sources",
    "WindowDisplay": "livecam.display",
    "annotate": "livecam.public.annotate",
    "draw": "livecam.public.client",
    "open_source": "livecam.sources",
    "run": "livecam.public.live",
    "serve": "livecam.public.serve",
    "stream": "livecam.public.live",
}

__all__ = [
    "AnnotateResult",
    "ApiConfig",
    "AuthError",
    "Client",
    "ConfigError",
    "DetectionClient",
    "DetectionError",
    "HeadlessDisplay",
    "LiveConfig",
    "LivePipeline",
    "LivecamError",
    "ModelNotFoundError",
    "Prediction",
    "Predictions",
    "RunStats",
    "Shown",
    "SourceError",
    "SyntheticSource",
    "WindowDisplay",
    "annotate",
    "draw",
    "open_source",
    "run",
    "serve",
    "stream",
    "__version__",
]


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: object) -> None:
        # Importing a subpackage sets it as an attribute of its parent: ``livecam.annotate`` stays
        # the function, and the subpackage is still imported by its full name.
        if name in _WHERE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'livecam' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
