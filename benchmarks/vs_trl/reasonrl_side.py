"""reasonrl side of the TRL comparison (run in the project venv by run.py).

    python benchmarks/vs_trl/reasonrl_side.py JOB.json

Builds the run from reasonrl's own config loader and `build_state`, then drives the library's
`train_step` (the whole RL step: rollout, reward, advantages, update, weight sync). The only thing
replaced is the prompt source: a fixed list read from the prompts JSONL, in file order, which is
exactly the order TRL's sampler reads it with `shuffle_dataset=False`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Marks, StepLog, load_settings, read_jsonl


class InOrder:
    """Yields the given samples in order, cycling (TRL's sequential RepeatSampler does the same)."""

    def __init__(self, samples: list) -> None:
        self.samples, self.position = samples, 0

    def next(self, k: int) -> list:
        out = []
        for _ in range(k):
            out.append(self.samples[self.position % len(self.samples)])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])


def recipe(settings: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """The reasonrl recipe for this job: the same numbers TRL gets in trl_side.py."""
    loss = job["loss"]
    algo: dict[str, Any] = {
        "preset": loss,
        "micro_batch_size": settings["micro_batch_size"],
        "kl_coef": 0.0,  # no KL (our grpo preset has beta 0.04 like the paper; TRL's default is 0)
        "adv_eps": settings["adv_eps"],  # TRL's (r - mean) / (std + 1e-4)
        "clip_low": settings["clip_low"],
        "clip_high": settings["clip_high"][loss],
    }
    if loss == "dapo":
        # TRL's `dapo` is DAPO's loss only: no dynamic sampling, no overlong shaping.
        algo |= {"dynamic_sampling": False, "overlong_buffer": None}
    return {
        "model": {"path": job["model"], "dtype": settings["dtype"], "threads": settings["threads"]},
        "data": {"ops": settings["data"]["ops"], "contexts": settings["data"]["contexts"]},
        "rollout": {
            "n": settings["group_size"],
            "prompts_per_step": settings["prompts_per_step"],
            "max_new_tokens": settings["max_new_tokens"],
            "temperature": settings["temperature"],
        },
        "algo": algo,
        "reward": {"kind": settings["reward"]},
        "optim": {"lr": settings["lr"], "grad_clip": settings["grad_clip"]},
        "trainer": {
            "steps": job["max_steps"],
            "seed": job["seed"],
            "out_dir": str(Path(job["out_dir"]).parent),
            "run_name": Path(job["out_dir"]).name,
        },
    }


def main(job_path: str) -> int:
    import torch
    import yaml

    from reasonrl.config import load_config
    from reasonrl.models.io import save_policy
    from reasonrl.rl.build import build_state
    from reasonrl.rl.step import train_step
    from reasonrl.tasks.synth.dataset import row_to_sample

    job = json.loads(Path(job_path).read_text())
    settings = load_settings(smoke=job.get("smoke", False))
    torch.set_num_threads(settings["threads"])
    out = Path(job["out_dir"])
    out.mkdir(parents=True, exist_ok=True)
    recipe_path = out / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe(settings, job), sort_keys=False))
    cfg = load_config(recipe_path)
    t0 = time.perf_counter()
    state = build_state(cfg)
    state.source = InOrder([row_to_sample(row) for row in read_jsonl(job["prompts"])])
    setup_s = time.perf_counter() - t0
    log = StepLog(out, Marks(job.get("step_every"), job.get("time_marks", [])), job.get("budget_s"))

    def save(path: Path) -> None:
        save_policy(state.model, state.tokenizer, path)

    log.restart_clock()
    while state.step < job["max_steps"]:
        metrics, _ = train_step(state)
        record = {k: float(v) for k, v in metrics.items()}
        record["gen_tokens"] = (
            record["rollout/len_mean"] * settings["prompts_per_step"] * settings["group_size"]
        )
        if log.end_step(state.step, record, save):
            break
    from reasonrl.runtime.precision import resolve_dtype

    log.close({"framework": "reasonrl", "setup_s": setup_s, "steps": state.step, "job": job,
               "bf16": resolve_dtype(cfg.model.dtype) == torch.bfloat16,
               "threads": [torch.get_num_threads()]})  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
