"""The quickstart's learning result over several seeds (issue 9's table in benchmarks/README.md).

    python benchmarks/quickstart_seeds.py --seeds 0 1 2   # runs `reasonrl quickstart` per seed
    python benchmarks/quickstart_seeds.py --recipe recipes/ppo.yaml --out runs/bench-ppo
    python benchmarks/quickstart_seeds.py --summarize runs/quickstart-*   # re-read eval.json

Prints, per op, strict and outcome pass@1 (8 samples per problem, T=1.0) before and after RL, for
each seed and their mean, plus the mean gain over the RL ops (problems pooled). For a recipe with
a critic (PPO) it also prints the value head's explained variance: the mean of
`critic/explained_variance` over the last 10 steps of each run (steps where it is undefined,
every return equal, are skipped).
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


def run_seed(seed: int, recipe: Path | None, out: Path) -> Path:
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "reasonrl.cli", "quickstart", "--seed", str(seed)]
    cmd += ["--recipe", str(recipe)] if recipe else []
    subprocess.run([*cmd, f"trainer.out_dir={out}"], check=True)
    runs = sorted(out.glob(f"quickstart-*-s{seed}"), key=lambda p: p.stat().st_mtime)
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
    ev = [late_explained_variance(d) for d in run_dirs]
    walls = [e["meta"]["wall_s"] for e in evals]
    lines.append("")
    per_seed = ", ".join(f"{g:+.3f}" for g in gains)
    lines.append(
        f"Strict pass@1 gain over the RL ops {sorted(rl_ops, key=int)} (pooled): {per_seed} "
        f"(mean {statistics.mean(gains):+.3f}); RL steps {steps}; "
        f"quickstart wall s (eval + RL + eval) {walls}."
    )
    if any(v is not None for v in ev):
        shown = ", ".join("n/a" if v is None else f"{v:.3f}" for v in ev)
        lines.append(f"Critic explained variance, mean of the last 10 steps: {shown}.")
    return "\n".join(lines)


def late_explained_variance(run_dir: Path, last: int = 10) -> float | None:
    """Mean critic/explained_variance over the last `last` steps defining it; None: no critic."""
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    values = [r["critic/explained_variance"] for r in rows
              if r.get("critic/explained_variance") is not None]  # fmt: skip
    return statistics.mean(values[-last:]) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--recipe", type=Path, default=None, help="default: the quickstart's")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="trainer.out_dir")
    parser.add_argument("--summarize", type=Path, nargs="*", default=None)
    args = parser.parse_args()
    dirs = args.summarize or [run_seed(s, args.recipe, args.out) for s in args.seeds]
    print(summarize(dirs))


if __name__ == "__main__":
    main()
