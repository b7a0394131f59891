"""The ``--collect DIR`` flags of ``run`` and ``annotate`` (the settings are :mod:`livecam.public.collecting`'s).

add_arguments(parser)                              # the flags, from COLLECT_OPTIONS
config = collect_config(given(args))               # None without --collect
"""

from __future__ import annotations

import argparse
from typing import Any

from livecam.cli.flags import add_options, given_values
from livecam.public.options import COLLECT_OPTIONS, Option

HELP = "Save the frames the model likely gets wrong, for labelling (then: livecam upload DIR)."


def _dest(option: Option) -> str:
    return f"collect_{option.dest}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--collect`` flags of ``run`` and ``annotate``."""
    add_options(
        parser.add_argument_group("collect frames for labelling", HELP), COLLECT_OPTIONS, check=True, dest=_dest
    )


def given_options(args: argparse.Namespace) -> dict[Option, Any]:
    """The ``--collect`` options given, with their values."""
    return given_values(args, COLLECT_OPTIONS, dest=_dest)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--collect`` options given, by option dest."""
    return {option.dest: value for option, value in given_options(args).items()}
