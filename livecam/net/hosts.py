"""Which ``Host`` header values a local server answers, against DNS rebinding.

A web page can rebind its own name to 127.0.0.1 and then read a loopback server from the
browser: the request arrives with ``Host: attacker.example``. So a server answers only a
``Host`` naming the address it is bound to, ``localhost``, a loopback address when bound to
loopback, any literal IP address when bound to every interface (0.0.0.0 or ::), or a name the
user allowed. The port is not compared: port forwarding and proxies change it, rebinding does not.

Usage::

    check = HostCheck("127.0.0.1", allowed=("camera.lan",))
    check.accepts("127.0.0.1:8080")     # True
    check.accepts("attacker.example")   # False
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

ANY_HOST = "*"
"""In the allowed names: answer every ``Host`` (behind a proxy that checks it itself)."""

MISDIRECTED = (
    "misdirected request: this server answers only to its own address, localhost, or a name given with --allowed-hosts"
)
"""The body of a 421 answer."""

_WILDCARD_BINDS = ("", "0.0.0.0", "::")
_LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62}(\.[a-z0-9_-]{1,63})*)?")
_HOST_PORT = re.compile(r"(?:\[(?P<v6>[0-9a-f:.%]+)\]|(?P<name>[^:\[\]]*))(?::(?P<port>\d{1,5}))?")


def parse_allowed_hosts(text: str) -> tuple[str, ...]:
    """``NAME,...`` as a tuple of names (``*`` alone allows every name; ``.lan`` allows ``x.lan``).

    Raises:
        ValueError: an entry that is not a host name, an IP address or ``*``.
    """
    names = tuple(part.strip().lower().rstrip(".") for part in text.split(",") if part.strip())
    for name in names:
        if name != ANY_HOST and _host_name(name.removeprefix(".")) is None:
            raise ValueError(f"{name!r} is not a host name or address")
    return names


class HostCheck:
    """Whether a request's ``Host`` header names this server.

    Args:
        bound: the address the server listens on, as given (``127.0.0.1``, ``0.0.0.0``, a name).
        allowed: more names to answer (lower case; a leading dot allows every subdomain; ``*``
            allows all).
    """

    def __init__(self, bound: str, allowed: Iterable[str] = ()) -> None:
        self._allowed = tuple(name.lower().rstrip(".") for name in allowed)
        self._any_address = bound in _WILDCARD_BINDS
        bound_name = _host_name(bound.lower())
        names = {"localhost"} | ({bound_name} if bound_name else set())
        if bound_name in _LOOPBACK_NAMES or _is_loopback(bound_name):
            names |= {"127.0.0.1", "::1"}
        self._names = frozenset(names)

    def accepts(self, header: str | None) -> bool:
        """True for a ``Host`` value (``name``, ``name:port``, ``[v6]:port``) this server answers.

        A request without a ``Host`` header (HTTP/1.0 tools; never a browser) is answered.
        """
        if header is None:
            return True
        if ANY_HOST in self._allowed:
            return True
        name = _host_name(header.strip().lower())
        if name is None:
            return False
        if name in self._names:
            return True
        if self._any_address and _is_address(name):
            return True
        return any(name == entry or (entry.startswith(".") and name.endswith(entry)) for entry in self._allowed)


def _host_name(text: str) -> str | None:
    """The host part of ``text`` (``name[:port]``, ``[v6][:port]``, a bare IPv6 address), or None."""
    if _is_address(text):  # a bare IPv6 address has colons that are not a port
        return str(ipaddress.ip_address(text))
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        return None
    if match.group("v6") is not None:
        return str(ipaddress.ip_address(match.group("v6"))) if _is_address(match.group("v6")) else None
    name = (match.group("name") or "").rstrip(".")
    if _is_address(name):
        return str(ipaddress.ip_address(name))
    return name if _NAME.fullmatch(name) else None


def _is_address(text: str | None) -> bool:
    if not text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_loopback(name: str | None) -> bool:
    return _is_address(name) and ipaddress.ip_address(name or "").is_loopback
