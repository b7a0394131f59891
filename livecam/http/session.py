"""Keep-alive sessions whose sockets obey the call's limits (:mod:`livecam.http.limits`).

session = new_session(pool_size=4)
...
close_session(session)
"""

from __future__ import annotations

import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

from livecam.http.limits import GuardedSocket

_SOCKET_OPTIONS = [
    # Nagle's algorithm would hold the small request head until the body's first packet is acked.
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
]


class _Connection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = GuardedSocket(self.sock)


class _TlsConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock = GuardedSocket(self.sock)


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TlsPool(HTTPSConnectionPool):
    ConnectionCls = _TlsConnection


_POOLS = {"http": _Pool, "https": _TlsPool}


class _Adapter(HTTPAdapter):
    """requests' adapter with guarded connections, TCP_NODELAY and keep-alive probes."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any) -> None:
        pool_kwargs.setdefault("socket_options", _SOCKET_OPTIONS)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = _POOLS
        return manager


def new_session(pool_size: int = 4, user_agent: str | None = None) -> requests.Session:
    """A keep-alive session: up to ``pool_size`` connections per host, no retries of its own.

    The proxy settings of the environment apply (``HTTPS_PROXY``, ``NO_PROXY``).
    """
    session = requests.Session()
    adapter = _Adapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.trust_env = True
    if user_agent:
        session.headers["User-Agent"] = user_agent
    return session


def close_session(session: requests.Session) -> None:
    """Close ``session``'s keep-alive connections now."""
    # Session.close() only forgets urllib3's pools (they close their sockets when collected),
    # and a finished response in a reference cycle keeps its pool alive: close them first.
    for adapter in session.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            pools = adapter.poolmanager.pools
            for key in pools.keys():  # noqa: SIM118 - the container refuses iteration
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
    session.close()
