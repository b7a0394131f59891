"""The one bounded HTTP server base, shared by the embedded server and the kiosk's web view.

:class:`BoundedHTTPServer` runs a thread per connection up to a hard cap, answers the rest with a
ready-made busy reply, and stops gracefully; :class:`BoundedHandler` reads and writes through
per-connection deadlines so slow or stalled clients cannot hold a slot (:mod:`.connections`), and
answers 421 to a ``Host`` header that does not name the server (:mod:`.hosts`, against DNS rebinding).
"""

from livecam.net.connections import Connection, ConnectionTable
from livecam.net.hosts import HostCheck, parse_allowed_hosts
from livecam.net.http import BoundedHandler, BoundedHTTPServer

__all__ = ["BoundedHTTPServer", "BoundedHandler", "Connection", "ConnectionTable", "HostCheck", "parse_allowed_hosts"]
