"""A threading HTTP/1.1 server with a connection cap, request deadlines and a graceful stop.

Built on the standard library's ``http.server``: neither user needs a framework (the model, not
HTTP parsing, is the embedded server's bottleneck), and a thread per connection with a hard cap
and socket deadlines is simple to reason about and to stop.
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from livecam.net.connections import ConnectionTable, DeadlineReader, DeadlineWriter, send_busy
from livecam.net.hosts import MISDIRECTED, HostCheck
from livecam.sanitize import for_log
from livecam.workers import join_all

log = logging.getLogger(__name__)


class BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``connections.limit`` of them; stops gracefully.

    Args:
        address: (host, port) to bind; an IPv6 host binds an IPv6 socket.
        handler: a :class:`BoundedHandler` subclass.
        connections: the open connections and their deadlines.
        busy_reply: the whole HTTP answer sent to a connection refused at the cap.
        header_timeout_s: a request line and headers must arrive within this long (so it is
            also the keep-alive idle timeout).
        allowed_hosts: names answered besides the bound address and localhost (see
            :class:`~livecam.net.hosts.HostCheck`); other ``Host`` headers get 421.

    Raises:
        OSError: the address cannot be bound.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default backlog of 5 makes a burst of new clients wait for SYN retries.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BoundedHandler],
        connections: ConnectionTable,
        busy_reply: bytes,
        header_timeout_s: float,
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.hosts = HostCheck(address[0], allowed_hosts)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.connections = connections
        self.header_timeout_s = header_timeout_s
        self.stopping = threading.Event()
        self._busy_reply = busy_reply
        self._lock = threading.Lock()
        self._open: dict[threading.Thread, socket.socket] = {}
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.stopping.is_set() or self.connections.open(request) is None:
            send_busy(request, self._busy_reply)
            self.shutdown_request(request)
            return
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), name="livecam-http", daemon=True
        )
        with self._lock:
            self._open[thread] = request
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.pop(threading.current_thread(), None)
            self.connections.close(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer is routine; anything else is a bug to log."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s hung up: %s", client_address[0], error)
        else:
            log.exception("internal error on a connection from %s", client_address[0])

    def wait_quiet(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for answers in progress before connections are closed.

        The base has nothing to wait for; servers that count their requests override it.
        """

    def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting, let answers in progress finish (up to ``grace_s``), close the rest.

        Call from a thread other than the one running ``serve_forever``.
        """
        self.stopping.set()
        self.shutdown()
        deadline = time.monotonic() + grace_s
        self.wait_quiet(grace_s)
        with self._lock:
            open_now = dict(self._open)
        for sock in open_now.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                log.debug("connection already closed: %s", exc)
        stuck = join_all(open_now, max(0.1, deadline - time.monotonic()))
        if stuck:
            log.warning("%d HTTP connection thread(s) did not stop in time", len(stuck))
        self.server_close()


class BoundedHandler(BaseHTTPRequestHandler):
    """Reads and writes through the connection's deadlines; HTTP/1.1 keep-alive."""

    server: BoundedHTTPServer
    protocol_version = "HTTP/1.1"
    # http.server's default error page is HTML; a line of text says the same.
    error_message_format = "%(message)s\n"
    error_content_type = "text/plain; charset=utf-8"

    def setup(self) -> None:
        self.connection = self.request
        self.conn = self.server.connections.find(self.request)
        # Headers and body go out in separate writes; without this, Nagle plus the client's
        # delayed ACK adds ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile = io.BufferedReader(DeadlineReader(self.conn))
        self.writer = DeadlineWriter(self.conn)
        self.wfile = self.writer

    def handle_one_request(self) -> None:
        # The next request line and headers must arrive in full within the limit; while none
        # comes this is also the keep-alive idle timeout.
        self.conn.expect(self.server.header_timeout_s)
        super().handle_one_request()

    def parse_request(self) -> bool:
        """Parse the request line and headers; a ``Host`` not naming this server gets 421."""
        if not super().parse_request():
            return False
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1 or not self.server.hosts.accepts(hosts[0] if hosts else None):
            log.debug("refused Host %s from %s", for_log(", ".join(hosts)), self.client_address[0])
            self.send_error(HTTPStatus.MISDIRECTED_REQUEST, MISDIRECTED)
            return False
        return True
