"""Object detection with ONNX models: the bundled COCO NanoDet, or a user's YOLOv8 export.

Usage::

    make = detector_factory()          # bundled model; one detector per worker thread
    detector = make()
    for d in detector.detect(frame, confidence=0.4, iou=0.5, max_detections=100):
        print(d.class_name, d.confidence, d.x1, d.y1, d.x2, d.y2)
"""

from livecam.detector.classes import coco_names
from livecam.detector.loader import detector_factory, load_detector
from livecam.detector.types import Detection, Detector

__all__ = ["Detection", "Detector", "coco_names", "detector_factory", "load_detector"]
