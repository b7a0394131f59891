"""The command line: parses arguments, reads the environment and the kiosk file, runs a mode.

Nothing else in livecam imports this package; each module here builds a mode's frozen config
and calls it: :mod:`.run`, :mod:`.annotate`, :mod:`.kiosk`, :mod:`.serve`, :mod:`.upload`
(:mod:`.collect` holds the `--collect` options the first three share). Every option taken by
both the flags and the kiosk file is declared once, in :mod:`.options`.
"""

from livecam.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
