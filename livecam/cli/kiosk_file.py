"""The kiosk's TOML file: read and checked against the declared options, merged with the flags.

Usage::

    file_values = read_toml(Path("kiosk.toml"))        # ConfigError names the key and line
    config = build_config(file_values, flag_values)    # flags override the file
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from livecam.connection import ApiSettings
from livecam.errors import ConfigError
from livecam.kiosk.config import (
    CollectSettings,
    DisplaySettings,
    KioskConfig,
    KioskSettings,
    OverlaySettings,
    SourceSettings,
)
from livecam.public.options import OPTIONS, NestedError, Option, check_flag

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_TABLES: dict[str, type[Any]] = {
    "source": SourceSettings,
    "api": ApiSettings,
    "overlay": OverlaySettings,
    "display": DisplaySettings,
    "kiosk": KioskSettings,
    "collect": CollectSettings,
}
_BY_NAME = {(o.table, o.key): o for o in OPTIONS}

FileValues = dict[Option, Any]
"""Checked values by option."""


# --- reading the file ---------------------------------------------------------------------------


def read_toml(path: Path) -> FileValues:
    """Read and check a kiosk TOML file.

    Raises:
        ConfigError: the file is missing or unreadable, is not valid TOML, has an unknown
            table or key, or a bad value. Every problem is listed with its line number.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read kiosk config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"kiosk config {path} is not UTF-8 text") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    values: FileValues = {}
    problems: list[str] = []

    def fail(where: tuple[str, ...], message: str) -> None:
        line = find_line(text, where)
        problems.append(f"{path}{f' line {line}' if line else ''}: {'.'.join(where)}: {message}")

    for table, entries in data.items():
        if table == "source" and isinstance(entries, list):
            values[SOURCES] = tuple(
                _source_table(entry, (table, str(i)), fail)
                for i, entry in enumerate(entries)
                if isinstance(entry, dict)
            )
            if len(entries) != len(values[SOURCES]):
                fail((table,), "must be [[source]] tables")
            continue
        if table == "source" and isinstance(entries, dict) and isinstance(entries.get("input"), list):
            entries = dict(entries)
            inputs = entries.pop("input")
            values[SOURCES] = tuple(
                _source_table({**entries, "input": spec}, (table, "input"), fail) for spec in inputs
            )
            if not inputs:
                fail((table, "input"), "an empty list: give at least one source")
        if table not in _TABLES:
            fail(
                (table,),
                f"unknown table{_suggest(table, list(_TABLES))}; tables are {', '.join(f'[{t}]' for t in _TABLES)}",
            )
            continue
        if not isinstance(entries, dict):
            fail((table,), f"must be a table [{table}], not a value")
            continue
        for key, raw in entries.items():
            option = _BY_NAME.get((table, key))
            if option is None:
                fail((table, key), f"unknown key{_hint(table, key)}")
                continue
            try:
                values[option] = option.check(raw)
            except NestedError as exc:
                fail((table, key, exc.key), str(exc))
            except ValueError as exc:
                fail((table, key), str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    return values


_PER_SOURCE = {
    "name": _BY_NAME[("source", "input")],
    "rotation": _BY_NAME[("display", "rotation")],
    "mirror": _BY_NAME[("display", "mirror")],
    "size": _BY_NAME[("display", "size")],
}
"""The keys a ``[[source]]`` table takes besides the ``[source]`` options, checked as their namesakes."""

SOURCES = Option("source", "sources", "--sources", lambda value: value, "several sources (file only)")
"""The file's several sources (``[[source]]`` tables or a list ``source.input``), as :class:`SourceSettings`."""


def _source_table(
    entry: dict[str, Any], where: tuple[str, ...], fail: Callable[[tuple[str, ...], str], None]
) -> SourceSettings:
    """One camera of several: its ``[source]`` keys and its own name, rotation, mirror and size."""
    settings: dict[str, Any] = {}
    for key, raw in entry.items():
        option = _PER_SOURCE.get(key) or _BY_NAME.get(("source", key))
        if option is None:
            keys = ", ".join([o.key for o in OPTIONS if o.table == "source"] + list(_PER_SOURCE))
            fail((*where[:1], key), f"unknown key{_suggest(key, keys.split(', '))}; [[source]] keys are {keys}")
            continue
        try:
            value = option.check(raw)
        except ValueError as exc:
            fail((*where[:1], key), str(exc))
            continue
        if key == "size":
            settings["width"], settings["height"] = value
        else:
            settings[option.dest if key not in _PER_SOURCE else key] = value
    if "input" not in settings:
        fail(where[:1], "each [[source]] needs an input")
    return SourceSettings(**settings)


def find_line(text: str, where: tuple[str, ...]) -> int | None:
    """The line number where the key path ``where`` is set in TOML ``text`` (1-based).

    tomllib reports no positions, so the text is scanned: table headers set the current
    table, and a line ``key = ...`` (or a dotted ``a.b = ...``) matches when the current table
    plus its key equals ``where``. When ``where`` itself is not found (an entry of an inline
    table), its nearest enclosing key or table is reported instead.
    """
    for depth in range(len(where), 0, -1):
        line = _find_exact(text, where[:depth])
        if line is not None:
            return line
    return None


_HEADER = re.compile(r"^\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")  # [table] and [[table]]
_KEY_LINE = re.compile(r"""^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def _find_exact(text: str, where: tuple[str, ...]) -> int | None:
    current: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = _HEADER.match(line)
        if header is not None:
            current = _dotted(header.group(1))
            if current == where:
                return number
            continue
        key = _KEY_LINE.match(line)
        if key is not None and current + _dotted(key.group(1)) == where:
            return number
    return None


def _dotted(path: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", path)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word.replace("_", "-"), candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _hint(table: str, key: str) -> str:
    elsewhere = [o.name for o in OPTIONS if o.key == key.replace("_", "-") and o.table != table]
    if elsewhere:
        return f" here (did you mean {elsewhere[0]!r}?)"
    keys = [o.key for o in OPTIONS if o.table == table]
    return _suggest(key, keys) or f"; [{table}] keys are {', '.join(keys)}"


# --- merging ------------------------------------------------------------------------------------


def build_config(file_values: Mapping[Option, Any], flag_values: Mapping[Option, Any]) -> KioskConfig:
    """The settings: each flag given overrides the file, which overrides the default.

    Args:
        file_values: from :func:`read_toml` (already checked).
        flag_values: options given on the command line (checked here).

    Raises:
        ConfigError: a bad flag value, or a combination that cannot work.
    """
    merged: dict[str, dict[str, Any]] = {table: {} for table in _TABLES}
    sources: tuple[SourceSettings, ...] = ()
    for option, value in file_values.items():
        if option is SOURCES:
            sources = value
            continue
        merged[option.table][option.dest] = value
    for option, value in flag_values.items():
        merged[option.table][option.dest] = check_flag(option, value)
    sections = {table: cls(**merged[table]) for table, cls in _TABLES.items()}
    if any(option.table == "source" for option in flag_values):
        sources = ()  # --source and the camera flags describe the one source to show
    config = KioskConfig(**sections, sources=sources if len(sources) > 1 else ())
    if len(sources) == 1:
        config = dataclasses.replace(config, source=sources[0])
    if config.api.max_side and config.api.max_side < 32:
        raise ConfigError(f"api.max-side must be 0 or at least 32 pixels (got {config.api.max_side})")
    return config


def describe(config: KioskConfig) -> dict[str, Any]:
    """The settings as plain data for a log line or ``/stats``, without the API key."""
    data = dataclasses.asdict(config)
    data["api"].pop("api_key", None)
    data["kiosk"]["quit"] = config.kiosk.quit.text
    return data
