"""The embedded Roboflow-compatible detection server (``livecam serve``).

Usage::

    with EmbeddedServer() as server:   # bundled COCO model on a free 127.0.0.1 port
        print(server.url)

    serve(server_config_from_args(ns), stop)   # blocking, until ``stop`` is set
"""

from livecam.server.config import ServerConfig, add_serve_arguments, server_config_from_args
from livecam.server.embedded import EmbeddedServer, serve

__all__ = ["EmbeddedServer", "ServerConfig", "add_serve_arguments", "serve", "server_config_from_args"]
