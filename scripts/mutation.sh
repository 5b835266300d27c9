#!/usr/bin/env bash
# Mutation testing of the pure modules (`make mutation`; configuration: [tool.mutmut] in pyproject.toml).
# Slow (tens of minutes): not part of the test command or CI. Results stay in mutants/ (ignored by git);
# the per-module table is printed at the end and belongs in docs/mutation.md. Extra arguments go to
# `mutmut run`, e.g. a mutant-name pattern: scripts/mutation.sh "shared.protocol*"
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/mutmut ] || bash scripts/install.sh
.venv/bin/mutmut run --max-children "${MUTATION_JOBS:-$(nproc)}" "$@" || true
.venv/bin/python scripts/mutation_table.py
