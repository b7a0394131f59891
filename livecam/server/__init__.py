"""The embedded Roboflow-compatible detection server (``livecam serve``).

Usage::

    with EmbeddedServer() as server:   # bundled COCO model on a free 127.0.0.1 port
        print(server.url)

    serve(ServerConfig(port=9001), stop)       # blocking, until ``stop`` is set
"""

from livecam.server.config import ServerConfig
from livecam.server.embedded import EmbeddedServer, serve

__all__ = ["EmbeddedServer", "ServerConfig", "serve"]
