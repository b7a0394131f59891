"""The command-line flags of the options declared in :mod:`livecam.public.options`.

group = parser.add_argument_group("detection API")
add_options(group, API_OPTIONS, check=True)       # bad values are usage errors at once
values = given_values(args, API_OPTIONS)          # {option: value} for the flags given
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from livecam.public.options import Option


def add_options(
    group: argparse._ActionsContainer,
    options: Iterable[Option],
    *,
    check: bool,
    dest: Callable[[Option], str] = lambda option: option.dest,
    helps: Mapping[str, str] | None = None,
) -> None:
    """One flag per option, all defaulting to None so :func:`given_values` knows which were given.

    Args:
        group: the parser or argument group.
        options: the declarations.
        check: validate each value as it is parsed (a bad value is a usage error naming the
            flag); otherwise the caller checks it later (the kiosk, to report flags like keys).
        dest: the namespace attribute for an option.
        helps: help texts that differ for this command, by option key.
    """
    for option in options:
        text = (helps or {}).get(option.key, option.help)
        if option.metavar is None:
            group.add_argument(
                option.flag, dest=dest(option), action=argparse.BooleanOptionalAction, default=None, help=text
            )
        elif option.repeat:
            group.add_argument(option.flag, dest=dest(option), action="append", metavar=option.metavar, help=text)
        else:
            convert = _checked(option) if check else option.from_text
            group.add_argument(option.flag, dest=dest(option), type=convert, metavar=option.metavar, help=text)


def given_values(
    args: argparse.Namespace, options: Iterable[Option], dest: Callable[[Option], str] = lambda option: option.dest
) -> dict[Option, Any]:
    """The options given on the command line, with their values."""
    values = {option: getattr(args, dest(option), None) for option in options}
    return {option: value for option, value in values.items() if value is not None}


def _checked(option: Option) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = option.from_text(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {option.metavar} (got {text!r})") from None
        try:
            return option.check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = option.key  # argparse names the type in some messages
    return convert
