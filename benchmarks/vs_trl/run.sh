#!/usr/bin/env bash
# The one command of the reasonrl vs TRL benchmark:
#   bash benchmarks/vs_trl/run.sh [--smoke] [--model DIR] [--only speed|learning|report]
# Creates the TRL-only venv on first use (benchmarks/vs_trl/.venv-trl), then runs run.py with the
# project venv. Everything it writes goes to benchmarks/vs_trl/_work/ (git-ignored), except the
# README results section and learning.png (full runs only).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
bash "$HERE/setup_trl_venv.sh"
cd "$ROOT"
exec env PYTHONPATH="$ROOT/src" "$ROOT/.venv/bin/python" "$HERE/run.py" "$@"
