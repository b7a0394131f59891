#!/usr/bin/env bash
# Formatting, lint and type checks, as CI runs them: `ruff format --check`, `ruff check`, `mypy`
# (strict, as pyproject.toml sets it) over the package, the tests and the scripts.
# Needs the test extras in .venv (scripts/setup.sh '.[test]', which scripts/test.sh runs).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff format --check --quiet .
.venv/bin/ruff check --quiet .
.venv/bin/mypy livecam tests scripts
