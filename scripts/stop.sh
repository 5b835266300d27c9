#!/usr/bin/env bash
# Stop every aistudio-proxy program and supervisord itself.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -S run/supervisor.sock ]; then
  .venv/bin/supervisorctl -c supervisord.conf shutdown
else
  echo "not running"
fi
