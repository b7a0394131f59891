"""Video file and image folder annotation: every frame, several requests in flight, written in order."""

from livecam.annotate.engine import (
    DEFAULT_IN_FLIGHT,
    EMBEDDED_IN_FLIGHT,
    AnnotateOptions,
    AnnotateResult,
    Annotator,
    ApiDetector,
    FrameDetector,
    PooledDetector,
    server_pool,
)
from livecam.annotate.media import (
    FrameInput,
    FrameOutput,
    ImageFolderInput,
    ImageFolderOutput,
    InputFrame,
    VideoInput,
    VideoOutput,
)

__all__ = [
    "DEFAULT_IN_FLIGHT",
    "EMBEDDED_IN_FLIGHT",
    "AnnotateOptions",
    "AnnotateResult",
    "Annotator",
    "ApiDetector",
    "FrameDetector",
    "FrameInput",
    "FrameOutput",
    "ImageFolderInput",
    "ImageFolderOutput",
    "InputFrame",
    "PooledDetector",
    "VideoInput",
    "VideoOutput",
    "server_pool",
]
