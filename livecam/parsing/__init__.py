"""Answer bodies to :class:`~livecam.predictions.Predictions`: in the calling thread when small,
in a worker process when large, so a heavy answer never holds the display's interpreter lock."""

from livecam.parsing.body import NotJson, decode, parse_body
from livecam.parsing.worker import INLINE_LIMIT, AnswerParser

__all__ = ["INLINE_LIMIT", "AnswerParser", "NotJson", "decode", "parse_body"]
