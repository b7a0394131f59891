"""How far apart the sender threads start their requests: :class:`SendPacer`.

The spacing and the learning of ``--in-flight auto`` are those of one server's in-flight window
(:mod:`livecam.balance.window`); with several servers each has its own.
"""

from __future__ import annotations

from livecam.balance.window import InFlightWindow


class SendPacer(InFlightWindow):
    """Spacing between sends, from the round trips seen so far (see :class:`InFlightWindow`)."""
