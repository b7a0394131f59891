"""The one HTTP client core of the detection client and the upload.

- :mod:`livecam.http.session`: keep-alive sessions (pool size, TCP_NODELAY, no hidden retries)
  whose sockets obey the limits of the call in progress.
- :mod:`livecam.http.limits`: a call's total deadline, its idle timeout and the run's stop event,
  checked by every socket wait.
- :mod:`livecam.http.errors`: HTTP statuses and transport failures to livecam errors, one
  Retry-After rule, the server's own words (sanitised and redacted).
- :mod:`livecam.http.transport`: :class:`Transport`, one POST with all of the above and an
  answer read in bounded chunks up to a cap (a gzip bomb never inflates past it).
"""

from livecam.http.errors import (
    RETRY_AFTER_CAP_S,
    CallInterrupted,
    ErrorKinds,
    Refusal,
    parse_retry_after,
    refusal,
    server_message,
)
from livecam.http.session import close_session, new_session
from livecam.http.transport import Answer, Transport, join_path

__all__ = [
    "RETRY_AFTER_CAP_S",
    "Answer",
    "CallInterrupted",
    "ErrorKinds",
    "Refusal",
    "Transport",
    "close_session",
    "join_path",
    "new_session",
    "parse_retry_after",
    "refusal",
    "server_message",
]
