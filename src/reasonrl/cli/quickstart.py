"""`reasonrl quickstart`: watch a tiny model get better at verifiable reasoning on a laptop CPU.

1. load the shipped base checkpoint (`builtin:synth-micro`, pre-trained on ops 2-6),
2. evaluate it on held-out synthetic problems (8 samples each, T=1.0),
3. GRPO with the strict process-verified reward on its edge-of-competence ops
   (recipes/quickstart.yaml),
4. evaluate again and print strict and outcome pass@1 per op, before -> after.

Strict (process-verified) metrics are the ones to read: outcome-only metrics are inflated by
guessing on this task (answers are small numbers; see docs/tasks.md).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reasonrl.cli import common
from reasonrl.config import RLConfig, load_config


def format_table(before: dict[str, Any], after: dict[str, Any], samples: int) -> str:
    """Markdown table: one row per op (and overall), before -> after for strict and outcome
    pass@1 and strict pass@`samples` (pass@1 only when greedy, eval.temperature=0: the results'
    own samples per problem win over `samples`)."""
    samples = int(after.get("settings", {}).get("samples_per_problem", samples))
    shown = tuple(dict.fromkeys(("strict_pass@1", "pass@1", f"strict_pass@{samples}")))
    head = "| op | " + " | ".join(f"{m} before → after" for m in shown) + " |"
    lines = [head, "|" + "---|" * (len(shown) + 1)]
    keys = [*sorted(before["per_op"], key=int), "overall"]
    for key in keys:
        b = before["overall"] if key == "overall" else before["per_op"][key]
        a = after["overall"] if key == "overall" else after["per_op"][key]
        cells = [f"{b[m]:.3f} → {a[m]:.3f} ({a[m] - b[m]:+.3f})" for m in shown]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="reasonrl quickstart",
        formatter_class=common.HelpFormatter,
        description="Evaluate the shipped tiny model, RL-train it for minutes, evaluate again.",
    )
    parser.add_argument("--recipe", default=None, help="recipe (default: recipes/quickstart.yaml)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (trainer.seed)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args(list(argv) if argv is not None else None)

    from reasonrl.cli.common import repo_recipes_dir

    recipe = Path(args.recipe) if args.recipe else repo_recipes_dir() / "quickstart.yaml"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    overrides = [f"trainer.seed={args.seed}", f"trainer.run_name=quickstart-{stamp}-s{args.seed}"]
    cfg = load_config(recipe, [*overrides, *args.overrides])
    from reasonrl.cli.checks import check_rl

    check_rl(cfg, recipe)  # device, model and data paths: exit 2 before the model loads
    return run_quickstart(cfg)


def run_quickstart(cfg: RLConfig) -> int:
    from reasonrl.models.io import load_policy
    from reasonrl.rl.evaluation import heldout_samples, run_eval  # as trainer.eval_every
    from reasonrl.rl.run import train

    t0 = time.monotonic()
    samples = heldout_samples(cfg)
    print(
        f"evaluating the base model on {len(samples)} held-out problems (ops {cfg.data.eval_ops})"
    )
    base_model, tokenizer = load_policy(cfg.model.path, device=cfg.model.device)
    before = run_eval(base_model, tokenizer, samples, cfg)
    del base_model
    print(f"RL: {cfg.algo.advantage} / {cfg.algo.loss} on ops {list(cfg.data.ops)}, "
          f"{cfg.reward.kind} reward, budget {cfg.trainer.time_budget_s or 'none'} s")  # fmt: skip
    state = train(cfg)
    after = run_eval(state.model, state.tokenizer, samples, cfg)
    run_dir = cfg.run_dir
    payload = {"before": before["per_op"], "after": after["per_op"],
               "meta": {"overall_before": before["overall"], "overall_after": after["overall"],
                        "steps": state.step, "problems": len(samples),
                        "wall_s": round(time.monotonic() - t0, 1)}}  # fmt: skip
    (run_dir / "eval.json").write_text(json.dumps(payload, indent=2) + "\n")
    table = format_table(before, after, cfg.eval.samples)
    (run_dir / "eval.md").write_text(table + "\n")
    print(table)
    print(
        f"\n{state.step} RL steps, {time.monotonic() - t0:.0f} s in all. Run directory: {run_dir}"
    )
    try:
        from reasonrl.report.report import write_report

        print(f"report: {write_report(run_dir)}")
    except ImportError as exc:  # matplotlib is an extra
        print(f"(no HTML report: {exc})")
    return 0
