#!/usr/bin/env bash
# Screenshot of the report of a tiny `reasonrl train` run with evaluation -> docs/img/report.png.
#
# Usage: scripts/screenshot_report.sh [RUN_DIR]
#   RUN_DIR given: screenshot its report (written first with `reasonrl report`).
#   No RUN_DIR: train a tiny quickstart run with trainer.eval_every (about a minute on 2 CPU cores)
#   under a temporary folder first.
# Needs the Debian `chromium` package (apt-get install -y chromium). Override the output with
# SHOT=path.png and the window with SIZE=1400,3000.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SHOT=${SHOT:-docs/img/report.png}
SIZE=${SIZE:-1400,3000}
RUN_DIR=${1:-}
if [[ -z "$RUN_DIR" ]]; then
  OUT=$(mktemp -d)
  "$PY" -m reasonrl.cli train recipes/quickstart.yaml \
    trainer.steps=12 trainer.eval_every=4 trainer.sample_every=2 trainer.save_every=100 \
    trainer.time_budget_s=600 trainer.out_dir="$OUT" trainer.run_name=demo \
    rollout.prompts_per_step=4 rollout.n=4 algo.micro_batch_size=16 \
    eval.problems_per_op=6 eval.samples=4 > "$OUT/train.log" 2>&1
  RUN_DIR="$OUT/demo"
fi
"$PY" -m reasonrl.cli report "$RUN_DIR" >/dev/null
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$PROFILE" --window-size="$SIZE" \
  --screenshot="$SHOT" "file://$(realpath "$RUN_DIR")/report/index.html" 2>/dev/null
echo "$SHOT (report of $RUN_DIR)"
