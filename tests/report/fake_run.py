"""A run directory with plausible files, written without training (for report tests)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

from reasonrl.config import RLConfig, save_resolved

PROMPT = (
    "<q> The number of adult lions in Zoo A equals 3. The number of adult bears in Zoo A equals "
    "the number of adult lions in Zoo A plus 2. How many adult bears are in Zoo A? </q>"
)
GOOD = (
    "Define adult lions in Zoo A as a ; so a = 3 . Define adult bears in Zoo A as b ; "
    "so b = a + 2 = 3 + 2 = 5 . </solution> <answer> 5 </answer>"
)
BAD = (
    "Define adult lions in Zoo A as a ; so a = 3 . Define adult bears as b ; so b = 4 . <answer> 4"
)


def make_fake_run(run_dir: Path, *, steps: int = 60, seed: int = 0) -> Path:
    """config.yaml, metrics.jsonl, samples.jsonl (every 10 steps) and eval.json."""
    rng = random.Random(seed)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = RLConfig.model_validate({"trainer": {"run_name": run_dir.name, "steps": steps}})
    save_resolved(cfg, run_dir)
    with (run_dir / "metrics.jsonl").open("w") as fh:
        for step in range(1, steps + 1):
            progress = 1 - math.exp(-step / 25)
            row = {
                "step": step,
                "time_s": round(2.6 * step, 2),
                "reward/mean": round(0.1 + 0.3 * progress + rng.gauss(0, 0.04), 4),
                "reward/verified_correct": round(0.06 + 0.25 * progress + rng.gauss(0, 0.03), 4),
                "rollout/len_mean": round(52 - 4 * progress + rng.gauss(0, 1.5), 2),
                "rollout/zero_std_frac": round(0.6 - 0.2 * progress + rng.gauss(0, 0.05), 3),
                "actor/loss": round(rng.gauss(0, 0.02), 5),
                "actor/entropy": round(0.9 - 0.3 * progress + rng.gauss(0, 0.02), 4),
                "actor/grad_norm": round(abs(rng.gauss(0.4, 0.1)), 4),
                "actor/clipfrac": 0.0,  # one PPO epoch: never clipped (a constant series)
                "perf/step_s": round(2.6 + rng.gauss(0, 0.2), 3),
            }
            if step % 20 == 0:
                row["eval/strict_pass@1"] = round(0.06 + 0.2 * progress, 3)
            fh.write(json.dumps(row) + "\n")
    with (run_dir / "samples.jsonl").open("w") as fh:
        for step in range(10, steps + 1, 10):
            for group in range(3):
                for i in range(4):
                    ok = rng.random() < 0.2 + step / (2 * steps)
                    info = {
                        "process": 1.0 if ok else 0.5,
                        "process_acc": 1.0 if ok else 0.5,
                        "penalty": 0 if ok else 2,
                        "steps": [  # as the synthetic reward writes them
                            {"name": "adult lions in Zoo A", "var": "a", "status": "ok"},
                            {"name": "adult bears in Zoo A", "var": "b",
                             "status": "ok" if ok else "wrong_value"}],
                    }  # fmt: skip
                    row = {
                        "step": step,
                        "id": f"synth-{group}",
                        "group": group,
                        "prompt": PROMPT,
                        "answer": "5",
                        "completion": GOOD if ok else BAD,
                        "parsed_answer": "5.0" if ok else "4.0",
                        "outcome": ok,
                        "verified": ok,
                        "finish_reason": "stop",
                        "tokens": 31 + i,
                        "reward": 1.0 if ok else 0.0,
                        "info": info,
                    }
                    fh.write(json.dumps(row) + "\n")
    evals = {
        "before": {str(op): {"strict_pass@1": p, "outcome_pass@1": p + 0.2} for op, p in
                   [(3, 0.29), (4, 0.07), (5, 0.04)]},
        "after": {str(op): {"strict_pass@1": p, "outcome_pass@1": p + 0.25} for op, p in
                  [(3, 0.31), (4, 0.23), (5, 0.11)]},
        "meta": {"problems_per_op": 100, "samples": 8, "temperature": 1.0},
    }  # fmt: skip
    (run_dir / "eval.json").write_text(json.dumps(evals))
    return run_dir
