"""Which frames are worth a call: ``--send every|changes``, ``--refresh`` and the request budget.

The senders ask :meth:`SendGate.decide` about each new frame before claiming it. With ``every``
(and no budget) there is no gate at all. With ``changes`` a frame is sent only when it may change
what is drawn:

- there is no answer to draw yet, or the last call failed;
- something changed outside the boxes being drawn since the last frame sent (something new may
  have appeared);
- a box being drawn no longer holds what its answer boxed (its object left, turned, or the motion
  carrier lost it; without motion compensation, an object that moved out of its box);
- ``refresh_s`` passed since the last call (an object the model missed is found within that time).

A request budget (``--max-requests-per-minute``) then spaces the calls it lets through evenly.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from livecam.cost.budget import RequestBudget
from livecam.cost.change import Box, ChangeMeter, Thumb, boxes_of, thumbnail
from livecam.cost.policy import SendPolicy
from livecam.frames import Frame
from livecam.motion import Carried
from livecam.predictions import Predictions
from livecam.stats import RequestsSkipped

MAX_BOXES_CHECKED = 40
"""Boxes compared one by one at most; an answer with more is trusted only until the refresh."""
_THUMBS_KEPT = 64


@dataclass(frozen=True)
class Decision:
    """What to do with one frame.

    Attributes:
        send: send it now.
        reason: why it is sent (``first``, ``retry``, ``changed``, ``box``, ``refresh``, ``every``),
            or why not (``unchanged``, ``budget``).
        wait_s: with ``budget``, seconds until the budget allows the next call.
    """

    send: bool
    reason: str
    wait_s: float = 0.0


class SendGate:
    """Decides, frame by frame, whether a frame is worth a call. Safe to use from several threads.

    Args:
        policy: the mode, refresh period and budget.
        answers: the newest answer (the predictions slot's ``peek``).
        carried: the newest carried boxes, when motion compensation runs.
        clock: monotonic seconds.
        meter: the change measure and its thresholds.
        budget: the request budget, when several gates share one (else the policy's own).
    """

    def __init__(
        self,
        policy: SendPolicy,
        answers: Callable[[], Predictions | None],
        clock: Callable[[], float],
        carried: Callable[[], Carried | None] | None = None,
        meter: ChangeMeter | None = None,
        budget: RequestBudget | None = None,
    ) -> None:
        self.policy = policy
        self._meter = meter or ChangeMeter()
        self._answers = answers
        self._carried = carried
        self._clock = clock
        if budget is None and policy.max_per_minute:
            budget = RequestBudget(policy.max_per_minute, clock)
        self._budget = budget
        self._lock = threading.Lock()
        self._reference: Thumb | None = None
        self._reference_boxes: list[Box] = []
        self._sent: OrderedDict[int, Thumb] = OrderedDict()
        self._last_sent_at: float | None = None
        self._retry = False
        self._confirmed: tuple[int, float] = (-1, 0.0)
        self._unchanged = 0
        self._budget_skips = 0
        self.reasons: dict[str, int] = {}
        """Calls made, by the reason they were made."""

    def decide(self, frame: Frame) -> Decision:
        """Whether to send ``frame`` now; a frame it says yes to counts as sent."""
        with self._lock:
            now = self._clock()
            thumb: Thumb | None = None
            if self.policy.mode == "changes":
                thumb = thumbnail(frame.seq, frame.image)
                # One look at the slots: an answer arriving meanwhile must not mix two answers' boxes.
                answer = self._answers()
                carried = self._carried_now(answer)
                drawn = _drawn(answer, carried, frame.index)
                reason = self._reason(thumb, now, answer, carried, drawn)
                if reason is None:
                    self._unchanged += 1
                    if answer is not None:
                        self._confirmed = (answer.frame_seq, now)
                    return Decision(False, "unchanged")
            else:
                reason = "every"
            if self._budget is not None:
                wait = self._budget.try_spend()
                if wait > 0:
                    self._budget_skips += 1
                    return Decision(False, "budget", wait)
            self._mark_sent(frame, thumb, now, drawn if thumb is not None else [])
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
            return Decision(True, reason)

    def confirmed_at(self, frame_seq: int) -> float | None:
        """When a frame was last found to leave the answer for frame ``frame_seq`` right, if it was.

        The display keeps showing such an answer past ``--max-age``: it is old, but the picture
        has not changed since.
        """
        with self._lock:
            seq, at = self._confirmed
            return at if seq == frame_seq else None

    def failed(self) -> None:
        """The last call failed: the next frame is sent whatever it shows (the budget still applies)."""
        with self._lock:
            self._retry = True

    def skipped(self) -> RequestsSkipped:
        """Frames turned down so far, by reason."""
        with self._lock:
            return RequestsSkipped(self._unchanged, self._budget_skips)

    def _carried_now(self, answer: Predictions | None) -> Carried | None:
        """The motion thread's boxes for ``answer``, if it carries them."""
        carried = self._carried() if self._carried is not None and answer is not None else None
        if carried is None or answer is None or carried.answer.frame_seq != answer.frame_seq:
            return None
        return carried if carried.compensated and len(carried.items) == len(answer.items) else None

    def _reason(
        self, thumb: Thumb, now: float, answer: Predictions | None, carried: Carried | None, drawn: list[Box]
    ) -> str | None:
        reference = self._reference
        if reference is None:
            return "first"
        if self._retry:
            return "retry"
        if self._last_sent_at is not None and now - self._last_sent_at >= self.policy.refresh_s:
            return "refresh"
        if answer is None:
            return None  # the first call is still out
        detected = boxes_of(answer.items)
        meter = self._meter
        # An object's own motion is not news: its box where it was detected, where it was when the
        # reference frame was sent, and where it is drawn now are all left out.
        if meter.outside_changed(reference, thumb, detected + self._reference_boxes + drawn):
            return "changed"
        then = self._sent.get(answer.frame_seq)
        if then is None or not detected or len(detected) > MAX_BOXES_CHECKED:
            return None
        if carried is None:  # the boxes stay where they were detected: did their objects stay too?
            return "box" if any(meter.box_changed(then, thumb, [box]) for box in detected) else None
        lost = carried.lost if len(carried.lost) == len(detected) else (False,) * len(detected)
        for gone, before, now_box in zip(lost, detected, drawn, strict=True):
            if gone and meter.box_changed(then, thumb, [before, now_box]):
                return "box"
        return None

    def _mark_sent(self, frame: Frame, thumb: Thumb | None, now: float, drawn: list[Box]) -> None:
        self._last_sent_at = now
        self._retry = False
        if thumb is None:
            return
        self._reference = thumb
        self._reference_boxes = drawn
        self._sent[frame.seq] = thumb
        while len(self._sent) > _THUMBS_KEPT:
            self._sent.popitem(last=False)


def _drawn(answer: Predictions | None, carried: Carried | None, index: int) -> list[Box]:
    """The boxes drawn on frame ``index``: ``answer``'s, carried to it when motion runs."""
    if answer is None:
        return []
    # The motion thread may be a frame or two behind this frame: its boxes moved on by their
    # velocity, as the display draws them.
    return boxes_of(carried.ahead(index - carried.index) if carried is not None else answer.items)
