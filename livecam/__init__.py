"""livecam: object detections from a Roboflow-format HTTP API, drawn on live video."""

from livecam.errors import (
    AuthError,
    ConfigError,
    DetectionError,
    LivecamError,
    ModelNotFoundError,
    SourceError,
)
from livecam.predictions import Prediction, Predictions

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "DetectionError",
    "LivecamError",
    "ModelNotFoundError",
    "Prediction",
    "Predictions",
    "SourceError",
    "__version__",
]
