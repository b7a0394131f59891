"""The frames the int8 model is calibrated on (``scripts/quantize_model.py``) and those held out
for the agreement figures of ``scripts/bench.py model``."""

from __future__ import annotations

CALIBRATION = {"bikes.mp4": (0, 150, 5), "vtest.avi": (0, 480, 16)}
"""Calibration frames per video: range(start, stop, step). The frames from ``stop`` on are held out."""
