"""Wall time of one GRPO step, broken down by phase (issue 9).

Runs a few RL steps of a recipe (default: recipes/quickstart.yaml, from the shipped base model) and
prints the median seconds per phase: generate (rollout engine), reward, update (forward + backward
+ optimizer over the micro-batches), sync (engine weight update), and the rest.

    python benchmarks/grpo_step_bench.py [--recipe R] [--steps 8] [KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

PHASES = ("generate", "reward", "ref_logprobs", "update", "sync")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/quickstart.yaml")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2, help="steps excluded from the medians")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from reasonrl.config import load_config
    from reasonrl.rl.run import train

    with tempfile.TemporaryDirectory() as out:
        overrides = [
            f"trainer.steps={args.steps}",
            f"trainer.out_dir={out}",
            "trainer.run_name=bench",
            "trainer.time_budget_s=null",
            f"trainer.save_every={args.steps}",
            *args.overrides,
        ]
        cfg = load_config(args.recipe, overrides)
        t0 = time.monotonic()
        train(cfg, progress=False)
        wall = time.monotonic() - t0
        rows = [json.loads(x) for x in (Path(out) / "bench/metrics.jsonl").read_text().splitlines()]
    rows = rows[args.warmup :]
    med = {p: statistics.median(r.get(f"perf/time_{p}", 0.0) for r in rows) for p in PHASES}
    step = statistics.median(r["perf/step_s"] for r in rows)
    print(f"recipe {args.recipe}: {len(rows)} steps after {args.warmup} warm-up, wall {wall:.0f} s")
    print(f"{'phase':<14}{'median s':>10}{'share':>8}")
    for phase in PHASES:
        print(f"{phase:<14}{med[phase]:>10.3f}{med[phase] / step:>8.0%}")
    rest = step - sum(med.values())
    print(f"{'other':<14}{rest:>10.3f}{rest / step:>8.0%}")
    print(f"{'step':<14}{step:>10.3f}")
    keys = (
        "perf/gen_tokens_per_s",
        "rollout/len_mean",
        "actor/active_frac",
        "rollout/zero_std_frac",
    )
    for key in keys:
        print(f"{key:<28}{statistics.median(r.get(key, float('nan')) for r in rows):>10.3f}")


if __name__ == "__main__":
    main()
