"""Object detection with ONNX models: the bundled COCO NanoDet, or a user's YOLOv8 export.

Usage::

    make = detector_factory(precision="int8")   # bundled model; one detector per worker thread
    detector = make()
    for p in detector.detect(frame, confidence=0.4, iou=0.5, max_detections=100).items:
        print(p.class_name, p.confidence, p.x1, p.y1, p.x2, p.y2)
"""

from livecam.detector.bundled import DEFAULT_PRECISION, PRECISIONS, Precision, bundled_model
from livecam.detector.classes import coco_names
from livecam.detector.loader import DetectorFactory, detector_factory, load_detector
from livecam.detector.runtime import BACKENDS, Backend
from livecam.detector.types import Detector

__all__ = [
    "BACKENDS",
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "Backend",
    "Detector",
    "DetectorFactory",
    "Precision",
    "bundled_model",
    "coco_names",
    "detector_factory",
    "load_detector",
]
