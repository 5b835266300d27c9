#!/usr/bin/env bash
# Install what aistudio-proxy needs, idempotently: Python >= 3.12 venv in .venv with every
# dependency in one resolve, and Debian's Chromium when no browser is there.
# Usage: scripts/install.sh            (quiet when nothing changed)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root or install sudo (apt-get needs it)"
  SUDO="sudo"
fi

apt_install() {
  say "apt-get install $*"
  if [ ! -f /tmp/.aisp-apt-updated ]; then
    $SUDO apt-get update -qq && touch /tmp/.aisp-apt-updated
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# 1. Python >= 3.12 (pyenv picks 3.12 from .python-version; otherwise the system's).
find_python() {
  local c
  for c in "${PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$c"; return 0
    fi
  done
  return 1
}
PY=$(find_python) || {
  if command -v apt-get >/dev/null; then apt_install python3 python3-venv; fi
  PY=$(find_python) || die "Python >= 3.12 is needed (found: $(python3 --version 2>&1)). Install python3.12 or set PYTHON=/path/to/python3.12"
}
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  command -v apt-get >/dev/null && apt_install python3-venv
fi

# 2. The venv, rebuilt when Python changed; deps reinstalled when pyproject.toml changed.
if [ -x .venv/bin/python ] && ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then
  say "rebuilding .venv (it was made with an older Python)"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
stamp=$(sha256sum pyproject.toml | cut -c1-16)
if [ "$(cat .venv/.install-stamp 2>/dev/null)" != "$stamp" ]; then
  say "installing Python dependencies (one resolve; log in .venv/install.log)"
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[test]'; } \
      > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    die "pip install failed (full log: .venv/install.log)"
  fi
  echo "$stamp" > .venv/.install-stamp
fi

# 3. A browser: Debian's Chromium unless Camoufox is chosen and installed.
browser=$(.venv/bin/python -c 'from shared.settings import load_settings as l; s=l(); print(s.browser, s.browser_executable)' 2>/dev/null || echo "auto /usr/bin/chromium")
kind=${browser%% *}; exe=${browser#* }
if [ "$kind" != "camoufox" ] && [ ! -x "$exe" ]; then
  if command -v apt-get >/dev/null; then
    apt_install chromium
  fi
  [ -x "$exe" ] || die "no browser at $exe: install Chromium (apt-get install chromium) or set BROWSER_EXECUTABLE"
fi

# 4. Private runtime folders.
mkdir -p run logs && chmod 700 run logs
