"""Why a network stream did not open or stopped, in one line with the next step.

OpenCV only says "not opened", whatever happened. When a stream fails to open,
:func:`diagnose_open` finds the cause itself, in this order, stopping at the first answer:

1. the scheme is not a protocol of this OpenCV build's FFmpeg (read from its own library);
2. the host name does not resolve;
3. a TCP connect: refused, unreachable, or no answer;
4. one request in the stream's own protocol: an HTTP GET (HLS, MJPEG, MPEG-TS over HTTP) or an
   RTSP DESCRIBE (answering a Basic or Digest challenge with the URL's credentials), whose status
   says 401, 403, 404 or a server error.

What is left is "the server answers but no video came". Messages never contain credentials.
"""

from __future__ import annotations

import base64
import ctypes
import errno
import functools
import glob
import hashlib
import http.client
import os
import re
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

PROBE_TIMEOUT_S = 3.0
"""The most one probe step waits."""

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935, "rtmps": 443}
_FORMAT_SCHEMES = frozenset({"rtsp", "rtsps"})  # FFmpeg demuxers that open their own connections
_UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
_MAX_HEAD = 16_384
_STATUS = re.compile(rb"^(?:RTSP|HTTP)/\d\.\d (\d{3})")


@dataclass(frozen=True)
class StreamFailure:
    """A classified failure.

    Attributes:
        cause: ``unsupported``, ``name-not-found``, ``refused``, ``unreachable``, ``timed-out``,
            ``auth-required``, ``auth-failed``, ``forbidden``, ``not-found``, ``server-error``,
            ``refused-request``, ``tls``, ``no-video`` or ``ended``.
        message: one line: what happened and what to check.
    """

    cause: str
    message: str


@functools.cache
def ffmpeg_protocols() -> frozenset[str] | None:
    """The protocols of the FFmpeg inside OpenCV's wheel; None when it cannot be found (another build)."""
    import cv2  # noqa: PLC0415  (only needed here; keeps this module importable alone)

    libs = os.path.join(os.path.dirname(os.path.dirname(cv2.__file__)), "opencv_python.libs")
    found = sorted(glob.glob(os.path.join(libs, "libavformat*.so*")))
    if not found:
        return None
    try:
        lib = ctypes.CDLL(found[0])
        enum = lib.avio_enum_protocols
    except (OSError, AttributeError):
        return None
    enum.restype = ctypes.c_char_p
    enum.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int]
    opaque = ctypes.c_void_p()
    names: set[str] = set()
    while (name := enum(ctypes.byref(opaque), 0)) is not None:
        names.add(name.decode("ascii", "replace"))
    return frozenset(names)


def unsupported(url: str) -> StreamFailure | None:
    """A failure if this OpenCV build's FFmpeg has no protocol for ``url``'s scheme, else None."""
    scheme = urlsplit(url).scheme.lower()
    protocols = ffmpeg_protocols()
    if protocols is None or scheme in _FORMAT_SCHEMES or scheme in protocols:
        return None
    return StreamFailure(
        "unsupported",
        f"this OpenCV build's FFmpeg cannot read {scheme}:// streams; relay the stream as rtsp://, udp:// "
        "or http:// (for example with ffmpeg or mediamtx)",
    )


def diagnose_open(url: str, waited_s: float, timeout_s: float = PROBE_TIMEOUT_S) -> StreamFailure:
    """Why ``url`` did not open, after OpenCV gave up following ``waited_s`` seconds."""
    found = unsupported(url)
    if found is not None:
        return found
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return StreamFailure("not-found", "the port in the URL is not a number from 1 to 65535; check the URL")
    if not host:
        return StreamFailure("not-found", "the URL names no host; use a form like rtsp://HOST:PORT/PATH")
    try:
        socket.getaddrinfo(host, port or 0)
    except (socket.gaierror, UnicodeError):
        return StreamFailure("name-not-found", f"host name {host} not found; check the address in the URL")
    if scheme in ("udp", "srt") or port is None:
        return StreamFailure(
            "timed-out",
            f"no video arrived at {host}:{port or '?'} within {waited_s:.0f} s; check that the sender "
            "sends to this address and port",
        )
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except ConnectionRefusedError:
        return StreamFailure(
            "refused", f"connection refused by {host}:{port}; check the port and that the stream server is running"
        )
    except TimeoutError:
        return StreamFailure(
            "timed-out",
            f"no answer from {host}:{port} within {timeout_s:.0f} s; check the address, the network and any firewall",
        )
    except OSError as exc:
        if exc.errno in _UNREACHABLE:
            return StreamFailure("unreachable", f"host {host} is unreachable; check the address and the network")
        return StreamFailure("unreachable", f"cannot connect to {host}:{port} ({exc.strerror or exc}); check the URL")
    status = _request_status(url, timeout_s)
    if status is not None:
        return status
    return StreamFailure(
        "no-video",
        f"the server answers but no video came within {waited_s:.0f} s; check that the stream is being "
        "published and that its codec is one OpenCV decodes (H.264, H.265, MJPEG)",
    )


def read_failure(elapsed_s: float, read_timeout_s: float) -> StreamFailure:
    """Why a read of an open stream returned nothing, from how long it waited."""
    if elapsed_s >= 0.9 * read_timeout_s:
        return StreamFailure("timed-out", f"no data for {elapsed_s:.0f} s; the network or the server stalled")
    return StreamFailure("ended", "the stream ended (the server closed it or stopped publishing)")


def status_failure(status: int, has_credentials: bool) -> StreamFailure | None:
    """The failure an HTTP or RTSP status means, or None for a success."""
    if status < 400:
        return None
    if status == 401:
        if has_credentials:
            return StreamFailure("auth-failed", "authentication failed (401); check the user and password in the URL")
        return StreamFailure(
            "auth-required",
            "authentication required (401); put the user and password in the URL (scheme://USER:PASS@host/...)",
        )
    if status == 403:
        return StreamFailure(
            "forbidden", "access refused (403); check the credentials and that this user may view the stream"
        )
    if status == 404:
        return StreamFailure("not-found", "not found (404); check the path of the stream in the URL")
    if status >= 500:
        return StreamFailure("server-error", f"the server failed ({status}); check the stream server and its log")
    return StreamFailure("refused-request", f"the server refused the request ({status}); check the URL")


def _request_status(url: str, timeout_s: float) -> StreamFailure | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    status: int | None
    try:
        if scheme in ("http", "https"):
            status = _http_status(url, user, password, timeout_s)
        elif scheme in ("rtsp", "rtsps"):
            status = _rtsp_status(url, user, password, timeout_s)
        else:
            return None
    except ssl.SSLError:
        return StreamFailure("tls", "the TLS handshake failed; check the certificate, or the scheme (http or https)")
    except TimeoutError:
        return StreamFailure(
            "timed-out",
            f"{parts.hostname}:{parts.port or DEFAULT_PORTS[scheme]} accepted the connection but did not answer "
            f"within {timeout_s:.0f} s; check that this is the stream's port and that the server is healthy",
        )
    except (OSError, http.client.HTTPException, ValueError):
        return None
    return None if status is None else status_failure(status, bool(user))


def _http_status(url: str, user: str, password: str, timeout_s: float) -> int:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    challenge = ""
    for attempt in range(2):
        conn: http.client.HTTPConnection
        if parts.scheme.lower() == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=timeout_s)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
        headers = {"User-Agent": "livecam", "Accept": "*/*"}
        if attempt and challenge:
            headers["Authorization"] = _authorization(challenge, user, password, "GET", target)
        try:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            status, challenge = response.status, response.getheader("WWW-Authenticate", "") or ""
        finally:
            conn.close()
        if status != 401 or not user or not challenge:
            return status
    return status


def _rtsp_status(url: str, user: str, password: str, timeout_s: float) -> int | None:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme.lower()]
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    target = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    with socket.create_connection((host, port), timeout=timeout_s) as raw:
        sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host) if parts.scheme == "rtsps" else raw
        status, challenge = _describe(sock, target, 1, "")
        if status == 401 and user and challenge:
            status, _ = _describe(sock, target, 2, _authorization(challenge, user, password, "DESCRIBE", target))
        return status


def _describe(sock: socket.socket, target: str, cseq: int, authorization: str) -> tuple[int | None, str]:
    lines = [f"DESCRIBE {target} RTSP/1.0", f"CSeq: {cseq}", "Accept: application/sdp", "User-Agent: livecam"]
    if authorization:
        lines.append(f"Authorization: {authorization}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace"))
    head = b""
    while b"\r\n\r\n" not in head and len(head) < _MAX_HEAD:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    match = _STATUS.match(head)
    if match is None:
        return None, ""
    header = head.split(b"\r\n\r\n", 1)[0]
    challenges = [
        line.split(b":", 1)[1].strip().decode("latin-1")
        for line in header.split(b"\r\n")[1:]
        if line.lower().startswith(b"www-authenticate:")
    ]
    # Prefer Digest: a server offering both may refuse Basic.
    challenges.sort(key=lambda c: not c.lower().startswith("digest"))
    return int(match.group(1)), challenges[0] if challenges else ""


def _authorization(challenge: str, user: str, password: str, method: str, uri: str) -> str:
    """The Authorization header answering a Basic or Digest (MD5) ``challenge``."""
    if challenge.lower().startswith("basic"):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    params = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge[len("digest") :]))
    realm, nonce = params.get("realm", ""), params.get("nonce", "")

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1, ha2 = md5(f"{user}:{realm}:{password}"), md5(f"{method}:{uri}")
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in params.get("qop", "").split(","):
        cnonce = os.urandom(8).hex()
        fields.append(f'response="{md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")}"')
        fields += ["qop=auth", "nc=00000001", f'cnonce="{cnonce}"']
    else:
        fields.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    return "Digest " + ", ".join(fields)
