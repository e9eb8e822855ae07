"""Synchronous vs asynchronous rollouts on the quickstart task, side by side (issue 19).

    python benchmarks/async_rollouts.py                      # K = 0 and 1, seed 0, 270 s each
    python benchmarks/async_rollouts.py --budget 120 --eval-problems 20 --seeds 0 1 2
    python benchmarks/async_rollouts.py --steps 4 --eval-problems 0  # steps/s only, minutes

Each run is `recipes/quickstart.yaml` (GRPO, strict process-verified reward, ops 1-4) with the
same `trainer.time_budget_s`, once per `rollout.max_staleness` K (0 = the synchronous loop,
1 = the rollout thread samples step t+1 while step t trains). Reported per run: RL steps, steps
per second of training (steps / the summed `perf/step_s`, the trainer's wall time per step, so
waiting for the producer counts), the mean staleness and trainer wait, and the strict pass@1
on held-out problems of the RL ops after the run: at equal wall-clock, since every run gets
the same budget. The runs are sequential in one process (same machine state for both modes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from reasonrl.config import load_config
from reasonrl.rl.evaluation import heldout_samples, run_eval
from reasonrl.rl.run import train

REPO = Path(__file__).resolve().parents[1]


def run_one(
    k: int, seed: int, args: argparse.Namespace, threads: int | None = None
) -> dict[str, float]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    overrides = [
        f"trainer.seed={seed}",
        f"trainer.run_name=async-k{k}-s{seed}-{stamp}",
        f"trainer.out_dir={args.out}",
        f"trainer.time_budget_s={'null' if args.steps else args.budget}",
        f"trainer.steps={args.steps or 300}",
        f"rollout.max_staleness={k}",
        f"eval.problems_per_op={max(1, args.eval_problems)}",
        "trainer.save_every=100000",  # one checkpoint at the end, as in the quickstart
    ]
    if threads:  # model.threads: the trainer's torch threads (a control for K = 0)
        overrides.append(f"model.threads={threads}")
    cfg = load_config(REPO / "recipes" / "quickstart.yaml", overrides)
    t0 = time.monotonic()
    state = train(cfg, progress=False)
    wall = time.monotonic() - t0
    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines() if x]
    rows = [r for r in rows if "perf/step_s" in r]
    step_s = sum(r["perf/step_s"] for r in rows)
    steady = rows[1:] or rows  # the first async step has nothing to overlap with
    rl_ops = [{"strict_pass@1": float("nan"), "problems": 0}]
    if args.eval_problems:
        after = run_eval(state.model, state.tokenizer, heldout_samples(cfg), cfg)
        rl_ops = [after["per_op"][str(op)] for op in cfg.data.ops]  # equal problems per op
    return {
        "k": k,
        "seed": seed,
        "threads": threads or "default",
        "steps": state.step,
        "steps_per_s": state.step / step_s,
        "steady_steps_per_s": len(steady) / sum(r["perf/step_s"] for r in steady),
        "train_wall_s": wall,
        "staleness_mean": statistics.mean(r.get("rollout/staleness_mean", 0.0) for r in rows),
        "wait_s_mean": statistics.mean(r.get("perf/time_wait", 0.0) for r in rows),
        "generate_s_mean": statistics.mean(r.get("perf/time_generate", 0.0) for r in rows),
        "update_s_mean": statistics.mean(r.get("perf/time_update", 0.0) for r in rows),
        "strict_pass@1": statistics.mean(o["strict_pass@1"] for o in rl_ops),
        "problems": sum(int(o["problems"]) for o in rl_ops),
    }


def table(results: list[dict[str, float]]) -> str:
    lines = [
        "| K | trainer threads | seed | RL steps | steps/s | speed-up | "
        "steps/s after step 1 | speed-up | "
        "staleness mean | trainer wait s/step | generate s/step | update s/step | "
        "strict pass@1 (RL ops) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {r["seed"]: r for r in results if r["k"] == 0 and r["threads"] == "default"}
    for r in results:
        ref = base.get(r["seed"])
        speed = f"{r['steps_per_s'] / ref['steps_per_s']:.2f}x" if ref else "n/a"
        steady = f"{r['steady_steps_per_s'] / ref['steady_steps_per_s']:.2f}x" if ref else "n/a"
        lines.append(
            f"| {r['k']} | {r['threads']} | {r['seed']} | {r['steps']} | "
            f"{r['steps_per_s']:.3f} | {speed} | "
            f"{r['steady_steps_per_s']:.3f} | {steady} | "
            f"{r['staleness_mean']:.2f} | {r['wait_s_mean']:.2f} | {r['generate_s_mean']:.2f} | "
            f"{r['update_s_mean']:.2f} | {r['strict_pass@1']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ks", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--budget", type=float, default=270.0, help="trainer.time_budget_s")
    parser.add_argument(
        "--eval-problems", type=int, default=60, help="eval.problems_per_op; 0 = no evaluation"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=0,
        help="a fixed number of steps instead of the time budget (0 = budget)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/bench-async"))
    parser.add_argument(
        "--sync-threads",
        type=int,
        nargs="*",
        default=[],
        help="also run K = 0 with these model.threads (a thread-count control)",
    )
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        runs = [(k, None) for k in args.ks] + [(0, n) for n in args.sync_threads]
        for k, threads in runs:
            results.append(run_one(k, seed, args, threads))
            print(json.dumps(results[-1]), flush=True)
    print(table(results))


if __name__ == "__main__":
    main()
