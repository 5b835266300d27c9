#!/usr/bin/env bash
# Install everything (as scripts/install.sh), lint, check the formatting and type-check (ruff check,
# ruff format --check, mypy; any failing fails the run), then run the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/shared -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
if [ -f tests/e2e/node/package-lock.json ]; then
  if ! command -v npm >/dev/null; then
    [ "$(id -u)" -eq 0 ] && SUDO="" || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
  fi
  (cd tests/e2e/node && npm ci --silent --no-audit --no-fund)
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy  # files and strictness: [tool.mypy] in pyproject.toml
exec .venv/bin/python -m pytest "$@"
