"""The quickstart's learning result over several seeds (issue 9's table in benchmarks/README.md).

    python benchmarks/quickstart_seeds.py --seeds 0 1 2   # runs `reasonrl quickstart` per seed
    python benchmarks/quickstart_seeds.py --summarize runs/quickstart-*   # re-read eval.json

Prints, per op, strict and outcome pass@1 (8 samples per problem, T=1.0) before and after RL, for
each seed and their mean, plus the mean gain over the RL ops (problems pooled).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml


def run_seed(seed: int) -> Path:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "reasonrl.cli", "quickstart", "--seed", str(seed)],
                   check=True)  # fmt: skip
    runs = sorted(Path("runs").glob(f"quickstart-*-s{seed}"), key=lambda p: p.stat().st_mtime)
    print(f"seed {seed}: {time.monotonic() - t0:.0f} s")
    return runs[-1]


def summarize(run_dirs: list[Path]) -> str:
    evals = [json.loads((d / "eval.json").read_text()) for d in run_dirs]
    cfg = yaml.safe_load((run_dirs[0] / "config.yaml").read_text())
    rl_ops = {str(op) for op in cfg["data"]["ops"]}
    ops = sorted(evals[0]["before"], key=int)
    lines = [
        "| op | RL op? | problems | strict pass@1 before → after (per seed) | mean gain | "
        "outcome pass@1 before → after (per seed) | mean gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in ops:
        cells = []
        for metric in ("strict_pass@1", "pass@1"):
            pairs = [(e["before"][op][metric], e["after"][op][metric]) for e in evals]
            cells.append(", ".join(f"{b:.3f} → {a:.3f}" for b, a in pairs))
            cells.append(f"{statistics.mean(a - b for b, a in pairs):+.3f}")
        problems = int(evals[0]["before"][op]["problems"])
        lines.append(
            f"| {op} | {'yes' if op in rl_ops else 'no'} | {problems} | " + " | ".join(cells) + " |"
        )
    gains = []
    for e in evals:  # pooled over the RL ops (equal problems per op, so a plain mean)
        gains.append(
            statistics.mean(
                e["after"][op]["strict_pass@1"] - e["before"][op]["strict_pass@1"] for op in rl_ops
            )
        )
    steps = [e["meta"]["steps"] for e in evals]
    walls = [e["meta"]["wall_s"] for e in evals]
    lines.append("")
    per_seed = ", ".join(f"{g:+.3f}" for g in gains)
    lines.append(
        f"Strict pass@1 gain over the RL ops {sorted(rl_ops, key=int)} (pooled): {per_seed} "
        f"(mean {statistics.mean(gains):+.3f}); RL steps {steps}; "
        f"quickstart wall s (eval + RL + eval) {walls}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--summarize", type=Path, nargs="*", default=None)
    args = parser.parse_args()
    dirs = args.summarize if args.summarize else [run_seed(s) for s in args.seeds]
    print(summarize(dirs))


if __name__ == "__main__":
    main()
