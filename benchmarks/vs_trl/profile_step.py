"""Where a reasonrl step's time goes, beyond the phase timers (torch profiler, top operators).

    PYTHONPATH=src .venv/bin/python benchmarks/vs_trl/profile_step.py [--all-rows] [--steps 3]

Same recipe as the benchmark's reasonrl side (settings.json, dapo). `--all-rows` swaps the reward
for a random one so every group has reward spread and every row is trained: the worst case for
reasonrl's update, which otherwise skips zero-advantage rows (about 80% of rows with the shipped
base model on ops 3-5).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_settings, read_jsonl
from reasonrl_side import InOrder, recipe


def main() -> int:
    import torch
    import yaml
    from torch.profiler import ProfilerActivity, profile

    from reasonrl.config import load_config
    from reasonrl.rl.build import build_state
    from reasonrl.rl.step import train_step
    from reasonrl.tasks.synth.dataset import make_dataset, row_to_sample
    from reasonrl.types import RewardResult

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all-rows", action="store_true", help="random reward: train every row")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after 1 warm-up)")
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--shared-prefix",
        choices=("auto", "on", "off"),
        default="off",
        help="algo.shared_prefix (off: the padded forward, for before/after)",
    )
    args = parser.parse_args()
    settings = load_settings()
    torch.set_num_threads(settings["threads"])
    tmp = Path(tempfile.mkdtemp(prefix="vs_trl_profile_"))
    job = {"loss": "dapo", "seed": 0, "model": args.model or settings["model"],
           "max_steps": 1 + args.steps, "out_dir": str(tmp / "run")}  # fmt: skip
    cfg = recipe(settings, job)
    cfg["algo"]["shared_prefix"] = args.shared_prefix
    (tmp / "recipe.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rng = random.Random(0)

    def random_reward(sample, completion):
        return RewardResult(rng.random(), {})

    state = build_state(load_config(tmp / "recipe.yaml"),
                        reward_fn=random_reward if args.all_rows else None)  # fmt: skip
    work = Path(__file__).resolve().parent / "_work" / "full" / "prompts_seed0.jsonl"
    rows = list(read_jsonl(work)) if work.exists() else make_dataset([3, 4, 5], 40, seed=1000)
    state.source = InOrder([row_to_sample(r) for r in rows])
    train_step(state)  # warm-up
    metrics = []
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            metrics.append(train_step(state)[0])
    keys = ("perf/time_generate", "perf/time_update", "perf/step_s", "actor/active_frac")
    summary = {k: statistics.mean(m[k] for m in metrics) for k in keys}
    print(json.dumps(summary, indent=1))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
