"""The parse worker process: reads answer bodies on stdin, writes parsed answers on stdout.

Run by :class:`~livecam.parsing.worker.AnswerParser` as ``python -m livecam.parsing.child``.
It sees only answer bodies and image sizes (never a URL, a key or the environment holding one),
logs nothing, and exits when its stdin closes.

Wire: a request is ``REQUEST`` (body length, image width, image height; -1 for no size) then
the body; a reply is ``REPLY`` (length) then a pickle of one of ``("ok", Predictions)``,
``("not_json",)``, ``("bad", message)`` (the body is not a prediction answer) or
``("failed", message)`` (an unexpected error). The first byte written is ``READY``.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
from typing import Any, BinaryIO

from livecam.errors import ResponseError
from livecam.parsing.body import NotJson, parse_body

REQUEST = struct.Struct("!Qii")
REPLY = struct.Struct("!Q")
READY = b"R"
NICENESS = 10


def answer(body: bytes, image_size: tuple[int, int] | None) -> tuple[Any, ...]:
    """The reply for one body (the same outcomes ``parse_body`` has in the caller's thread)."""
    try:
        return ("ok", parse_body(body, image_size))
    except NotJson:
        return ("not_json",)
    except ResponseError as exc:
        return ("bad", str(exc))
    except Exception as exc:  # noqa: BLE001 - reported to the caller, who logs it; the worker lives on
        return ("failed", f"{type(exc).__name__}: {exc}"[:200])


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until ``requests`` ends."""
    replies.write(READY)
    replies.flush()
    while (header := _read_exactly(requests, REQUEST.size)) is not None:
        length, width, height = REQUEST.unpack(header)
        body = _read_exactly(requests, length)
        if body is None:
            return
        reply = pickle.dumps(answer(body, (width, height) if width > 0 else None), pickle.HIGHEST_PROTOCOL)
        replies.write(REPLY.pack(len(reply)) + reply)
        replies.flush()


def main() -> int:
    """The worker's entry point."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    with contextlib.suppress(OSError):
        # Parsing is background work: when the cores are busy, the display gets them first.
        os.nice(NICENESS)
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing printed by accident can corrupt the replies
    with contextlib.suppress(BrokenPipeError):  # the parent went away
        serve(sys.stdin.buffer, replies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
