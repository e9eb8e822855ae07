#!/usr/bin/env bash
# Create the TRL-only virtual environment used by the side-by-side benchmark (never a reasonrl dependency).
# torch is pinned on every pip command so nothing pulls a CUDA build.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-trl"
PY="${TRL_BASE_PYTHON:-python3.11}"
TORCH_PIN="torch==2.13.0"
TRL_PIN="${TRL_PIN:-trl==1.16.*}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import trl, torch" 2>/dev/null; then
  echo "TRL venv ready: $("$VENV/bin/python" -c 'import trl, transformers, torch; print("trl", trl.__version__, "transformers", transformers.__version__, "torch", torch.__version__)')"
  exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "$TORCH_PIN"
"$VENV/bin/pip" install --quiet "$TORCH_PIN" "$TRL_PIN"
# reasonrl's reward code is imported from the checkout via PYTHONPATH (src/); these are its light deps.
"$VENV/bin/pip" install --quiet "$TORCH_PIN" pydantic pyyaml
"$VENV/bin/python" -c 'import trl, transformers, torch; print("trl", trl.__version__, "transformers", transformers.__version__, "torch", torch.__version__)'
