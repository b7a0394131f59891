"""The one bounded HTTP server base, shared by the embedded server and the kiosk's web view.

:class:`BoundedHTTPServer` runs a thread per connection up to a hard cap, answers the rest with a
ready-made busy reply, and stops gracefully; :class:`BoundedHandler` reads and writes through
per-connection deadlines so slow or stalled clients cannot hold a slot (:mod:`.connections`).
"""

from livecam.net.connections import Connection, ConnectionTable
from livecam.net.http import BoundedHandler, BoundedHTTPServer

__all__ = ["BoundedHTTPServer", "BoundedHandler", "Connection", "ConnectionTable"]
