"""The package's layers, enforced: imports go cli -> modes -> shared, never back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "livecam"
MODES = {"live", "annotate", "kiosk", "server", "detector", "collect", "upload"}
"""Packages that are a mode or a mode's machinery; shared modules never import them."""
ENTRY_POINTS = {"__init__", "__main__"}
"""The package's facade and ``python -m livecam`` may reach everything."""


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "livecam" or name.startswith("livecam.")}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def sources() -> list[tuple[str, Path]]:
    return [(".".join(("livecam", *p.relative_to(PACKAGE).with_suffix("").parts)), p) for p in PACKAGE.rglob("*.py")]


def test_nothing_outside_the_cli_imports_it() -> None:
    offenders = [
        (name, target)
        for name, path in sources()
        if layer_of(name) != "cli" and name.rsplit(".", 1)[-1] not in ENTRY_POINTS
        for target in imported_modules(path)
        if layer_of(target) == "cli"
    ]
    assert offenders == []


def test_shared_modules_import_no_mode() -> None:
    shared = [(n, p) for n, p in sources() if n.count(".") == 1 and n.rsplit(".", 1)[-1] not in ENTRY_POINTS]
    assert len(shared) >= 10  # the scan found the top-level modules
    offenders = [
        (name, target) for name, path in shared for target in imported_modules(path) if layer_of(target) in MODES
    ]
    assert offenders == []


def test_no_module_argparses_outside_the_cli() -> None:
    offenders = [name for name, path in sources() if layer_of(name) != "cli" and "argparse" in _top_imports(path)]
    assert offenders == []


def _top_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names
