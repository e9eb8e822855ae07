"""Kimi k1.5's long2short methods on the synthetic task: mean completion length vs strict pass@1.

    python benchmarks/long2short.py --out runs/l2s --seeds 0          # base, sft, merge
    python benchmarks/long2short.py --out runs/l2s --seeds 0 1 2 --arms base sft merge rl rl_len

Arms, each evaluated on the quickstart's held-out problems (its `eval` settings: 8 samples at
T=1 per problem, ops 1-5) with the quickstart recipe's config:
- base: the shipped `builtin:synth-micro`;
- sft: shortest rejection sampling (`reasonrl data rejection`: 8 samples per problem of the RL
  ops, the shortest strict-correct one kept) then `reasonrl sft recipes/sft_short.yaml`;
- merge: `reasonrl merge` of base and sft, weight 0.5 (Kimi's model merging);
- rl: `reasonrl quickstart` (GRPO, strict reward, the 270 s budget);
- rl_len: the same with the Kimi length penalty (`algo.length_penalty_coef`, default 0.5 here).

Prints one table (per arm: strict pass@1 and mean completion tokens, pooled over the RL ops, per
seed and mean) and writes `summary.json` and `long2short.png` (length vs strict pass@1) in --out.
Every stage is cached in --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
CLI = [sys.executable, "-m", "reasonrl.cli"]


def sh(cmd: list[str]) -> None:
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def pooled(per_op: dict, ops: list[int], key: str) -> float:
    """Mean of `key` over the RL ops (equal problems per op: a plain mean)."""
    return statistics.mean(per_op[str(op)][key] for op in ops)


def eval_model(path: str, out: Path) -> dict:
    """The quickstart's held-out evaluation of one model, cached as `out`."""
    if out.exists():
        return json.loads(out.read_text())
    from reasonrl.config import load_config
    from reasonrl.models.io import load_policy, resolve_policy_path
    from reasonrl.rl.evaluation import heldout_samples, run_eval

    cfg = load_config(QUICKSTART)
    model, tokenizer = load_policy(resolve_policy_path(path))
    result = run_eval(model, tokenizer, heldout_samples(cfg), cfg)
    out.write_text(json.dumps(result, indent=1))
    return result


def sft_arm(seed: int, work: Path, ops: list[int], per_op: int) -> Path:
    final = work / "sft" / "final"
    if not final.exists():
        data = work / "short.jsonl"
        if not data.exists():
            sh([*CLI, "data", "rejection", "builtin:synth-micro", "--ops",
                ",".join(map(str, ops)), "--per-op", str(per_op), "--samples", "8",
                "--seed", str(seed), "--out", str(data)])  # fmt: skip
        sh([*CLI, "sft", str(REPO / "recipes/sft_short.yaml"), f"data.train_file={data}",
            f"train.out_dir={work / 'sft'}", f"train.seed={seed}"])  # fmt: skip
    return final


def rl_arm(seed: int, work: Path, name: str, overrides: list[str]) -> dict:
    """The quickstart's own before/after eval.json of a run (cached by its run directory)."""
    out = work / name
    runs = sorted(out.glob(f"quickstart-*-s{seed}"))
    if not runs:
        sh([*CLI, "quickstart", "--seed", str(seed), f"trainer.out_dir={out}", *overrides])
        runs = sorted(out.glob(f"quickstart-*-s{seed}"))
    data = json.loads((runs[-1] / "eval.json").read_text())
    return {"per_op": data["after"]}


def plot(results: dict[str, dict[int, dict[str, float]]], path: Path) -> None:
    """Mean completion tokens (x) vs strict pass@1 (y): one small dot per arm and seed, a large
    one at the arm's mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for arm, by_seed in results.items():
        if not by_seed:
            continue
        xs = [r["mean_tokens"] for r in by_seed.values()]
        ys = [r["strict_pass@1"] for r in by_seed.values()]
        (dots,) = ax.plot(xs, ys, "o", alpha=0.35, markersize=4)
        ax.plot([statistics.mean(xs)], [statistics.mean(ys)], "o", markersize=9,
                color=dots.get_color(), label=f"{arm} ({len(xs)} seeds)")  # fmt: skip
    ax.set_xlabel("mean completion tokens (RL ops)")
    ax.set_ylabel("strict pass@1 (T = 1)")
    ax.set_title("long2short on the synthetic task")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--arms", nargs="+", default=["base", "sft", "merge"],
                   choices=["base", "sft", "merge", "rl", "rl_len"])  # fmt: skip
    p.add_argument("--per-op", type=int, default=200, help="rejection-sampling problems per op")
    p.add_argument("--length-coef", type=float, default=0.5, help="rl_len's penalty coefficient")
    p.add_argument("--merge-weight", type=float, default=0.5, help="weight of the base in merge")
    args = p.parse_args()
    from reasonrl.config import load_config

    ops = list(load_config(QUICKSTART).data.ops)
    results: dict[str, dict[int, dict[str, float]]] = {arm: {} for arm in args.arms}
    t0 = time.monotonic()
    for seed in args.seeds:
        work = args.out / f"s{seed}"
        work.mkdir(parents=True, exist_ok=True)
        evals: dict[str, dict] = {}
        if "base" in args.arms:
            evals["base"] = eval_model("builtin:synth-micro", work / "eval_base.json")
        if "sft" in args.arms or "merge" in args.arms:
            final = sft_arm(seed, work, ops, args.per_op)
            if "sft" in args.arms:
                evals["sft"] = eval_model(str(final), work / "eval_sft.json")
            if "merge" in args.arms:
                merged = work / "merged"
                if not merged.exists():
                    sh([*CLI, "merge", "builtin:synth-micro", str(final), str(merged),
                        "--weight", str(args.merge_weight)])  # fmt: skip
                evals["merge"] = eval_model(str(merged), work / "eval_merge.json")
        if "rl" in args.arms:
            evals["rl"] = rl_arm(seed, work, "rl", [])
        if "rl_len" in args.arms:
            coef = f"algo.length_penalty_coef={args.length_coef}"
            evals["rl_len"] = rl_arm(seed, work, "rl_len", [coef])
        for arm, ev in evals.items():
            keys = ("strict_pass@1", "pass@1", "mean_tokens")
            results[arm][seed] = {key: pooled(ev["per_op"], ops, key) for key in keys}
    print(f"\nlong2short on ops {ops} (pooled), seeds {args.seeds}, "
          f"{time.monotonic() - t0:.0f} s")  # fmt: skip
    print(
        "| arm | strict pass@1 per seed | mean | outcome pass@1 mean | mean tokens per seed "
        "| mean |"
    )
    print("|---|---|---|---|---|---|")
    for arm, by_seed in results.items():
        rows = [by_seed[s] for s in args.seeds if s in by_seed]
        if not rows:
            continue
        sp = ", ".join(f"{r['strict_pass@1']:.3f}" for r in rows)
        tk = ", ".join(f"{r['mean_tokens']:.1f}" for r in rows)
        print(f"| {arm} | {sp} | {statistics.mean(r['strict_pass@1'] for r in rows):.3f} | "
              f"{statistics.mean(r['pass@1'] for r in rows):.3f} | {tk} | "
              f"{statistics.mean(r['mean_tokens'] for r in rows):.1f} |")  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(results, indent=1))
    plot(results, args.out / "long2short.png")


if __name__ == "__main__":
    main()
