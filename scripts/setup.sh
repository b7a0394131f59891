#!/usr/bin/env bash
# Create .venv with livecam installed (editable). Extra pip arguments are passed through,
# e.g. `scripts/setup.sh '.[test]'`. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-.}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "livecam needs Python 3.10 or newer; set PYTHON=/path/to/python3.x" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
version="$(cat pyproject.toml "$0" | sha256sum | cut -c1-16)"
stamp=".venv/.installed-$version-${target//[^a-z]/}"
# The package with extras (e.g. '.[test]') includes the plain package: `scripts/run.sh` after
# `scripts/test.sh` installs nothing.
if [ "$target" = "." ] && compgen -G ".venv/.installed-$version-*" >/dev/null; then
    exit 0
fi
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$target"
    touch "$stamp"
fi
