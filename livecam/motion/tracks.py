"""Giving each object one track id across answers: a small class-aware IoU matcher.

Each new answer's boxes are matched greedily (highest IoU first, same class only, at least
``min_iou``) to the boxes being carried, which motion compensation has already moved to where
the objects are now, so even fast objects overlap their own track. Unmatched boxes start new
tracks. Tracks the last answer missed are kept for ``memory`` answers at their last place, so an
object one answer overlooks keeps its id. When two objects of a class cross, the greater overlap
wins, so their ids can swap at the crossing; a greedy match is enough at a few dozen boxes and
needs no dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from livecam.predictions import Prediction


def iou(a: Prediction, b: Prediction) -> float:
    """Intersection over union of two boxes (0 for no overlap or empty boxes)."""
    w = min(a.x2, b.x2) - max(a.x1, b.x1)
    h = min(a.y2, b.y2) - max(a.y1, b.y1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Lost:
    box: Prediction
    answers_missed: int


class TrackMatcher:
    """Assigns ``track_id`` to the boxes of successive answers.

    Args:
        min_iou: the least overlap for a box to continue a track.
        memory: answers a missed track is remembered for.
    """

    def __init__(self, min_iou: float = 0.3, memory: int = 2) -> None:
        self.min_iou = min_iou
        self.memory = memory
        self.tracks_started = 0
        self._next_id = 1
        self._lost: dict[int, _Lost] = {}

    def assign(self, current: Sequence[Prediction], new: Sequence[Prediction]) -> tuple[Prediction, ...]:
        """``new`` with track ids, continuing those of ``current`` (boxes with ids, where they are now)."""
        candidates = [(p.track_id, p) for p in current if p.track_id is not None]
        held = {tid for tid, _ in candidates}
        candidates += [(tid, lost.box) for tid, lost in self._lost.items() if tid not in held]
        pairs = sorted(
            (
                (overlap, i, j)
                for i, box in enumerate(new)
                for j, (_, old) in enumerate(candidates)
                if box.class_name == old.class_name and (overlap := iou(box, old)) >= self.min_iou
            ),
            reverse=True,
        )
        ids: dict[int, int] = {}
        used: set[int] = set()
        for _, i, j in pairs:
            if i in ids or j in used:
                continue
            ids[i] = candidates[j][0]
            used.add(j)
        out = []
        for i, box in enumerate(new):
            if i not in ids:
                ids[i] = self._next_id
                self._next_id += 1
                self.tracks_started += 1
            out.append(replace(box, track_id=ids[i]))
        self._forget(candidates, set(ids.values()))
        return tuple(out)

    def _forget(self, candidates: Sequence[tuple[int, Prediction]], kept: set[int]) -> None:
        lost: dict[int, _Lost] = {}
        for tid, box in candidates:
            if tid in kept or tid in lost:
                continue
            missed = self._lost[tid].answers_missed + 1 if tid in self._lost else 1
            if missed <= self.memory:
                lost[tid] = _Lost(self._lost[tid].box if tid in self._lost else box, missed)
        self._lost = lost
