"""Class-name files: one name a line, and the bundled COCO list."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from livecam.errors import ConfigError


def coco_names() -> tuple[str, ...]:
    """The 80 COCO class names in the standard order ("person", "bicycle", ..., "toothbrush")."""
    return parse_names(resources.files("livecam.models").joinpath("coco.txt").read_text("utf-8"))


def read_names(path: Path) -> tuple[str, ...]:
    """Class names from a text file, one a line (blank lines ignored).

    Raises:
        ConfigError: the file cannot be read or names nothing.
    """
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the class names file {path}: {exc}; give a UTF-8 text file with one class name a line"
        ) from exc
    names = parse_names(text)
    if not names:
        raise ConfigError(f"the class names file {path} is empty; put one class name a line")
    return names


def parse_names(text: str) -> tuple[str, ...]:
    """Non-blank lines, stripped."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())
