"""Run a script of this folder with the checkout's ``.venv`` Python when started by another one.

    # isort: off
    import checkout_venv  # noqa: F401  (first: it may start this script again under .venv/bin/python)
    # isort: on

``scripts/soak.py`` started as ``./scripts/soak.py`` or ``python3 scripts/soak.py`` runs under
the system Python, which lacks livecam's dependencies: this starts it again, with the same
arguments, under ``.venv/bin/python`` (made by ``scripts/setup.sh``). Importing this module
does it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def ensure(module: str = "cv2") -> None:
    """Re-execute this script under the checkout's venv if ``module`` cannot be imported here.

    Exits with status 2 and what to do when there is no venv to switch to.
    """
    if importlib.util.find_spec(module) is not None:
        return
    in_venv = Path(sys.prefix).resolve() == VENV_PYTHON.parent.parent.resolve()
    if VENV_PYTHON.exists() and not in_venv:
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])
    sys.exit(
        f"{Path(sys.argv[0]).name} needs livecam's dependencies ({module} is missing): "
        f"run {ROOT / 'scripts' / 'setup.sh'} first"
    )


ensure()
