"""Boxes that follow their objects between answers: a ring of small grey frames, a box carrier
(sparse optical flow), a track matcher, and the compensator that ties them together.

Nothing here starts a thread; the live mode runs :class:`Compensator` on its own motion thread.
"""

from livecam.motion.carrier import BoxCarrier, Shift
from livecam.motion.compensator import Carried, Compensator
from livecam.motion.ring import FrameRing
from livecam.motion.tracks import TrackMatcher, iou

__all__ = ["BoxCarrier", "Carried", "Compensator", "FrameRing", "Shift", "TrackMatcher", "iou"]
