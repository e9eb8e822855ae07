"""Preference learning on the synthetic task, CPU, one seed (issue 20).

1. reward model: Bradley–Terry on pairs (strict-correct vs strict-wrong) of the shipped base
   model's own samples (recipes/rm_synth.yaml); held-out pairwise accuracy and ECE;
2. DPO on the same kind of self-generated pairs (recipes/dpo_synth.yaml): sampled strict pass@1
   on held-out problems before and after;
3. the pairwise judge (the base model itself, answer tokens "A"/"B", swap-averaged) on the RM's
   held-out pairs: agreement with the strict reward = fraction with P(chosen beats rejected) > .5.

    nice .venv/bin/python benchmarks/preferences.py [--out runs/bench_pref] [--seed 0]

Writes OUT/results.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/bench_pref")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from reasonrl.config import load_config
    from reasonrl.config.rm import DPOConfig, RMConfig
    from reasonrl.models.io import load_policy
    from reasonrl.rewards.judge import PairwiseJudge
    from reasonrl.rm.data import load_pairs
    from reasonrl.rm.dpo import run_dpo
    from reasonrl.rm.train import run_rm

    out = Path(args.out)
    seed = [f"data.seed={args.seed}", f"train.seed={args.seed}"]
    res: dict = {"seed": args.seed}
    t0 = time.perf_counter()
    rm_cfg = load_config("recipes/rm_synth.yaml", [f"train.out_dir={out / 'rm'}", *seed],
                         schema=RMConfig)  # fmt: skip
    run_rm(rm_cfg)
    res["rm"] = json.loads((out / "rm" / "summary.json").read_text())
    res["rm"]["minutes"] = (time.perf_counter() - t0) / 60
    t1 = time.perf_counter()
    dpo_cfg = load_config("recipes/dpo_synth.yaml", [f"train.out_dir={out / 'dpo'}", *seed],
                          schema=DPOConfig)  # fmt: skip
    run_dpo(dpo_cfg)
    res["dpo"] = json.loads((out / "dpo" / "summary.json").read_text())
    res["dpo"]["minutes"] = (time.perf_counter() - t1) / 60
    torch.set_num_threads(2)
    lm, tok = load_policy("builtin:synth-micro")
    judge = PairwiseJudge(lm, tok, yes="A", no="B")
    pairs = load_pairs(out / "rm" / "pairs_eval.jsonl")
    items = [(p.prompt, p.chosen, p.rejected) for p in pairs]
    first = judge.first_better(items + [(q, r, c) for q, c, r in items])
    n = len(items)
    swapped = [0.5 * (first[k] + 1 - first[n + k]) for k in range(n)]
    res["judge"] = {"pairs": n, "agreement": sum(p > 0.5 for p in swapped) / n,
                    "agreement_unswapped": sum(p > 0.5 for p in first[:n]) / n,
                    "mean_p_chosen": sum(swapped) / n}  # fmt: skip
    for key in ("rm", "dpo"):
        res[key].pop("config", None)
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    rm_a, d, nan = res["rm"]["after"], res["dpo"], float("nan")
    print("| measure | value |\n|---|---|")
    print(
        f"| RM held-out pairwise accuracy (before -> after) | "
        f"{res['rm']['before']['pair_accuracy']:.3f} -> {rm_a['pair_accuracy']:.3f} |"
    )
    print(f"| RM held-out ECE | {rm_a['ece']:.3f} |")
    print(
        f"| RM pairs train / held-out | {res['rm']['pairs']['train_pairs']:g} / "
        f"{res['rm']['pairs']['eval_pairs']:g} |"
    )
    print(
        f"| DPO strict pass@1 before -> after | {d['before'].get('strict_pass@1', nan):.3f}"
        f" -> {d['after'].get('strict_pass@1', nan):.3f} |"
    )
    print(
        f"| DPO pass@1 before -> after | {d['before'].get('pass@1', float('nan')):.3f} -> "
        f"{d['after'].get('pass@1', float('nan')):.3f} |"
    )
    print(
        f"| judge (base model) agreement with strict, swap-averaged | "
        f"{res['judge']['agreement']:.3f} (unswapped {res['judge']['agreement_unswapped']:.3f}) |"
    )
    print(f"| minutes RM / DPO | {res['rm']['minutes']:.1f} / {res['dpo']['minutes']:.1f} |")


if __name__ == "__main__":
    main()
