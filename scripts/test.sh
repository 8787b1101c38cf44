#!/usr/bin/env bash
# The one test command (README.md, .ci/run): lint, format check, types, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    . .venv/bin/activate
fi
ruff check .
ruff format --check .
mypy lsp model plugins
python -m pytest -q -p no:cacheprovider "$@"
