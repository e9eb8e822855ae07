#!/usr/bin/env bash
# GPU smoke check (benchmarks/gpu/smoke.py): real-shape Qwen2.5-0.5B and Llama-3.2-1B, random
# weights, 3 RL steps each with rollout.engine=hf (and vllm when importable), bf16, on one GPU.
# Finishes in about 5 minutes; prints one table and writes $OUT/smoke.json when OUT is set.
#
# Usage: bash benchmarks/gpu/smoke.sh [smoke.py options]     e.g. --model qwen2.5-0.5b
#        bash benchmarks/gpu/smoke.sh --cpu-dry-run           (tiny shapes on the CPU)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # nothing is downloaded
exec timeout "${SMOKE_TIMEOUT_S:-540}" "$PYTHON" benchmarks/gpu/smoke.py "$@"
