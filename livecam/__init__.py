"""livecam: object detections from a Roboflow-format HTTP API, drawn on live video.

Example:
    >>> from livecam import ApiConfig, HeadlessDisplay, LivePipeline, open_source
    >>> api = ApiConfig("http://127.0.0.1:9001", "coco/1")
    >>> with LivePipeline(open_source("video.mp4"), api, HeadlessDisplay()) as pipeline:
    ...     stats = pipeline.run()
"""

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
from livecam.sources import SyntheticSource, open_source

__version__ = "0.1.0"

__all__ = [
    "ApiConfig",
    "AuthError",
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
    "SourceError",
    "SyntheticSource",
    "WindowDisplay",
    "__version__",
    "open_source",
]
