"""`reasonrl irl RECIPE [KEY=VALUE ...]`: IRL from demonstrations on the synthetic task.

The IRL survey's adversarial / max-entropy loop (arXiv 2507.13158), as rounds r = 0..R-1:
1. reward model: `reasonrl rm`'s `run_rm` on the rm recipe with `data.sampler` = the CURRENT
   policy, so its pairs are the demonstrations (gold traces) vs the policy's own samples
   (`data.demonstrations`; `all` needs no verifier, the discriminator's data);
2. policy: `reasonrl train`'s `train` for `rl_steps` steps from the current policy with
   `reward.kind=learned` on that reward model (the strict reward logged as `reward/strict`).
Nothing is copied from those commands: the driver only sets their keys. It writes
OUT/round{r}/rm (reward model), OUT/round{r}/rl (the RL run) and OUT/round{r}/policy, and
OUT/irl.json: per round the RM's held-out pairwise accuracy, the last RL steps' mean
`reward/strict`, and held-out strict pass@1 of the base and each round's policy.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonrl.cli import common


def _eval(path: str, rl_cfg: Any, per_op: int) -> dict[str, float]:
    """Strict pass@1 and pass@1 on held-out problems of the RL ops (the rl recipe's eval)."""
    from reasonrl.models.io import load_policy
    from reasonrl.rl.evaluation import heldout_samples, run_eval

    cfg = rl_cfg.model_copy(update={"eval": rl_cfg.eval.model_copy(
        update={"problems_per_op": per_op})})  # fmt: skip
    model, tok = load_policy(path, device=rl_cfg.model.device)
    got = run_eval(model, tok, heldout_samples(cfg), cfg)["overall"]
    return {k: float(got[k]) for k in ("strict_pass@1", "pass@1") if k in got}


def run_irl(cfg: Any) -> dict[str, Any]:
    """The loop of the module docstring; returns (and writes) irl.json's content."""
    from reasonrl.config import RLConfig, load_config
    from reasonrl.config.rm import RMConfig
    from reasonrl.models.io import save_policy
    from reasonrl.rl.run import train
    from reasonrl.rm.train import run_rm

    out = Path(cfg.out_dir)
    base_rl = load_config(cfg.rl_recipe, cfg.rl_overrides, schema=RLConfig)
    policy, rm_dir = base_rl.model.path, None
    log: dict[str, Any] = {"rounds": []}
    if cfg.eval_problems_per_op:
        log["base"] = _eval(policy, base_rl, cfg.eval_problems_per_op)
    for r in range(cfg.rounds):
        here = out / f"round{r}"
        rm_over = [*cfg.rm_overrides, f"train.out_dir={here / 'rm'}", f"data.sampler={policy}"]
        if cfg.continue_rm and rm_dir is not None:
            rm_over.append(f"model.init={rm_dir}")
        rm_dir = run_rm(load_config(cfg.rm_recipe, rm_over, schema=RMConfig))
        rm_summary = json.loads((here / "rm" / "summary.json").read_text())
        rl_over = [*cfg.rl_overrides, f"model.path={policy}", "reward.kind=learned",
                   f"reward.learned_model={rm_dir}", f"trainer.steps={cfg.rl_steps}",
                   "trainer.time_budget_s=null", f"trainer.out_dir={here}",
                   "trainer.run_name=rl"]  # fmt: skip
        rl_cfg = load_config(cfg.rl_recipe, rl_over, schema=RLConfig)
        state = train(rl_cfg)
        policy = str(save_policy(state.model, state.tokenizer, here / "policy"))
        rows = [json.loads(x) for x in (rl_cfg.run_dir / "metrics.jsonl").read_text().splitlines()
                if x]  # fmt: skip
        strict = [x["reward/strict"] for x in rows if "reward/strict" in x][-5:]
        entry = {"round": r, "rm_heldout_accuracy": rm_summary["after"].get("pair_accuracy"),
                 "rm_pairs": rm_summary["pairs"].get("train_pairs"),
                 "rl_reward_strict_last5": sum(strict) / len(strict) if strict else None,
                 }  # fmt: skip
        if cfg.eval_problems_per_op:
            entry["eval"] = _eval(policy, base_rl, cfg.eval_problems_per_op)
        log["rounds"].append(entry)
        print(f"[irl] round {r}: {json.dumps(entry)}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        (out / "irl.json").write_text(json.dumps(log, indent=2) + "\n")
    return log


def main(argv: Sequence[str] | None = None) -> int:
    """Run the recipe's rounds; a config error exits 2."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl irl",
        formatter_class=common.HelpFormatter,
        description="IRL from demonstrations: alternate reward-model training and RL.",
    )
    parser.add_argument("recipe", help="YAML recipe (see recipes/irl_synth.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. rounds=3")
    args = parser.parse_args(list(argv) if argv is not None else None)
    from reasonrl.config import load_config
    from reasonrl.config.rm import IRLConfig

    cfg = load_config(args.recipe, args.overrides, schema=IRLConfig)  # ConfigError: exit 2
    run_irl(cfg)
    return 0
