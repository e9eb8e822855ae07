"""RepExp on the synthetic task (issue 21): strict pass@8 and pass@32 after GRPO with and without
the representation-based exploration bonus (arXiv 2510.11686), at an equal step budget.

    python benchmarks/repexp.py --seeds 0                       # the short version (~10 min)
    python benchmarks/repexp.py --seeds 0 1 2 --steps 60 --problems-per-op 60
    python benchmarks/repexp.py --summarize runs/repexp_bench

Per seed and arm (coef 0 = plain GRPO, coef > 0 = RepExp): `reasonrl train recipes/repexp.yaml`
for --steps RL steps (no time budget: both arms see the same number of rollouts; RepExp's extra
forward shows in its wall-clock, reported), then 32 samples at T = 1 per held-out problem of
ops 1-5 and the unbiased strict pass@k (arXiv 2107.03374) for k = 1, 8, 32. The base model's
numbers are measured once as the reference. Steps whose outputs exist are reused.

Writes OUT/repexp_results.json, OUT/repexp.md and OUT/repexp.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KS = (1, 8, 32)


def train(args: argparse.Namespace, seed: int, coef: float) -> tuple[Path, float]:
    name = f"coef{coef:g}_s{seed}"
    run_dir = args.out / name
    secs = 0.0
    if not (run_dir / "checkpoints").is_dir():
        t0 = time.monotonic()
        cmd = ["train", "recipes/repexp.yaml", f"reward.repexp_coef={coef}",
               f"trainer.steps={args.steps}", "trainer.time_budget_s=null",
               f"trainer.out_dir={args.out}", f"trainer.run_name={name}",
               f"trainer.seed={seed}", f"trainer.save_every={args.steps}"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "reasonrl.cli", *cmd], check=True, cwd=ROOT)
        secs = time.monotonic() - t0
    return sorted((run_dir / "checkpoints").glob("step_*"))[-1], secs


def passk(args: argparse.Namespace, model_path: str, seed: int) -> dict:
    import torch

    from reasonrl.config import load_config
    from reasonrl.eval.evaluate import evaluate
    from reasonrl.models.io import load_policy
    from reasonrl.rl.evaluation import heldout_samples

    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT / "recipes/repexp.yaml",
                      [f"eval.problems_per_op={args.problems_per_op}"])  # fmt: skip
    model, tok = load_policy(model_path)
    t0 = time.monotonic()
    samples, max_new = heldout_samples(cfg), cfg.rollout.max_new_tokens
    res = evaluate(model, tok, samples, samples_per_problem=max(KS), temperature=1.0,
                   max_new_tokens=max_new, seed=seed)  # fmt: skip
    out = {f"strict_pass@{k}": res.overall[f"strict_pass@{k}"] for k in KS}
    out["per_op"] = {op: {f"strict_pass@{k}": m[f"strict_pass@{k}"] for k in KS}
                     for op, m in res.per_op.items()}  # fmt: skip
    out["eval_s"] = round(time.monotonic() - t0, 1)
    return out


def summarize(out: Path) -> str:
    data = json.loads((out / "repexp_results.json").read_text())
    lines = ["| arm | seeds | " + " | ".join(f"strict pass@{k}" for k in KS) + " | train s |",
             "|---|---|" + "---|" * (len(KS) + 1)]  # fmt: skip
    for arm, runs in data["arms"].items():
        seeds = sorted(runs, key=int)
        cells = []
        for k in KS:
            vals = [runs[s][f"strict_pass@{k}"] for s in seeds]
            cells.append(f"{sum(vals) / len(vals):.3f} (" + ", ".join(f"{v:.3f}" for v in vals)
                         + ")")  # fmt: skip
        secs = [runs[s].get("train_s", 0) for s in seeds]
        lines.append(f"| {arm} | {len(seeds)} | " + " | ".join(cells)
                     + f" | {sum(secs) / len(secs):.0f} |")  # fmt: skip
    return "\n".join(lines)


def plot(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads((out / "repexp_results.json").read_text())
    fig, ax = plt.subplots(figsize=(5, 3))
    for arm, runs in data["arms"].items():
        seeds = sorted(runs, key=int)
        means = [sum(runs[s][f"strict_pass@{k}"] for s in seeds) / len(seeds) for k in KS]
        ax.plot(KS, means, "o-", label=arm)
    ax.set_xscale("log", base=2)
    ax.set_xticks(KS, [str(k) for k in KS])
    ax.set_xlabel("k")
    ax.set_ylabel("strict pass@k (T = 1)")
    ax.set_title("RepExp vs GRPO, synthetic ops 1-5")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "repexp.png", dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--coef", type=float, default=0.05, help="RepExp beta of the bonus arm")
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--problems-per-op", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "runs/repexp_bench")
    p.add_argument("--summarize", type=Path, default=None)
    args = p.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "repexp_results.json"
    data = json.loads(path.read_text()) if path.is_file() else {"arms": {}}
    if "base" not in data["arms"]:
        data["arms"]["base"] = {"0": passk(args, "builtin:synth-micro", 0)}
        path.write_text(json.dumps(data, indent=2))
    for seed in args.seeds:
        for coef in (0.0, args.coef):
            arm = "grpo" if coef == 0 else f"repexp coef={coef:g}"
            ckpt, secs = train(args, seed, coef)
            row = passk(args, str(ckpt), seed)
            row["train_s"] = round(secs)
            data["arms"].setdefault(arm, {})[str(seed)] = row
            print(f"seed {seed} {arm}: " + ", ".join(f"pass@{k} {row[f'strict_pass@{k}']:.3f}"
                                                     for k in KS), flush=True)  # fmt: skip
            path.write_text(json.dumps(data, indent=2))
    data["settings"] = {k: str(v) for k, v in vars(args).items()}
    path.write_text(json.dumps(data, indent=2))
    table = summarize(args.out)
    (args.out / "repexp.md").write_text(table + "\n")
    plot(args.out)
    print(table)


if __name__ == "__main__":
    main()
