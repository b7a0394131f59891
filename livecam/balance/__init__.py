"""Spreading requests over several detection servers: per-server windows, health and counters."""

from livecam.balance.pool import Lease, ServerPool
from livecam.balance.window import InFlightWindow

__all__ = ["InFlightWindow", "Lease", "ServerPool"]
