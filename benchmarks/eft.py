"""EFT up-scaling on the synthetic task (issue 21): does a small model's RL delta, applied at
decode time to a LARGER base pre-trained on the same task, raise that base's strict pass@1?

    python benchmarks/eft.py --seeds 0                     # the short version (~15 min, 2 cores)
    python benchmarks/eft.py --seeds 0 1 2 --sft-minutes 20 --rl-seconds 600
    python benchmarks/eft.py --summarize runs/eft_bench    # re-read eft_results.json

Per seed:
1. small base = `builtin:synth-micro` (nano, 1.15M params, pre-trained by
   recipes/pretrain_synth_micro.yaml on ops 2-6);
2. large base = a bigger model pre-trained by `reasonrl sft` on the same recipe's data:
   `--large grow` (default) doubles the small base's depth (8 layers, 2.1M params: every layer
   is followed by a copy whose output projections start at zero, so it starts as the same
   function, as in function-preserving growth, Chen et al. arXiv 1511.05641) and continues SFT
   for --sft-minutes; `--large tiny|micro|...` trains a fresh model of that size from scratch
   (needs far more than 15 minutes on 2 cores to be useful: ~45 min gave nano its 0.33 loss);
3. small ft = the small base after `reasonrl train recipes/quickstart.yaml` (GRPO, strict
   reward, ops 1-4) for --rl-seconds;
4. strict pass@1 (greedy) on held-out problems of ops 1-5 for: small base, small ft, large
   base and EFT(large base, small ft, small base) at each --beta (`rollout.eft.EFTEngine`).

Writes OUT/eft_results.json, OUT/eft.md and OUT/eft.png. Steps whose outputs exist are reused
(same command, same seed), so a rerun only evaluates.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL_BASE = "builtin:synth-micro"


def grow_depth(src: str, out: Path) -> Path:
    """An HF dir with twice the layers of `src`: layer i -> layers 2i, 2i+1, where 2i+1 is a copy
    whose o_proj and down_proj are zero (a residual no-op: same function as `src`)."""
    import copy

    import torch

    from reasonrl.models.io import load_policy, save_model_metadata

    model, tok = load_policy(src, dtype="fp32")
    cfg = copy.deepcopy(model.config)
    n = cfg.num_hidden_layers
    cfg.num_hidden_layers = 2 * n
    if getattr(cfg, "layer_types", None):
        cfg.layer_types = [t for t in cfg.layer_types for _ in range(2)]
    big = type(model)(cfg)
    state = model.state_dict()
    new = {}
    for name, t in state.items():
        if ".layers." not in name:
            new[name] = t.clone()
            continue
        head, rest = name.split(".layers.")
        i, tail = rest.split(".", 1)
        new[f"{head}.layers.{2 * int(i)}.{tail}"] = t.clone()
        copy_t = t.clone()
        if tail.startswith(("self_attn.o_proj", "mlp.down_proj")):
            copy_t.zero_()
        new[f"{head}.layers.{2 * int(i) + 1}.{tail}"] = copy_t
    missing, unexpected = big.load_state_dict(new, strict=False)
    assert not unexpected and all("lm_head" in m for m in missing), (missing, unexpected)
    big.tie_weights()
    big.generation_config = model.generation_config
    out.mkdir(parents=True, exist_ok=True)
    big.save_pretrained(str(out))
    save_model_metadata(big, tok, out)
    with torch.no_grad():  # the grown model is the same function
        ids = torch.tensor([[5, 9, 13, 21]])
        diff = (big(ids).logits - model(ids).logits).abs().max().item()
    assert diff < 1e-4, diff
    return out


def run(cmd: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "reasonrl.cli", *cmd], check=True, cwd=ROOT)
    return time.monotonic() - t0


def large_base(args: argparse.Namespace, seed: int, out: Path) -> tuple[Path, float]:
    final = out / f"large_{args.large}_s{seed}" / "final"
    if (final / "config.json").is_file():
        return final, 0.0
    init = args.large
    overrides = [f"train.time_budget_min={args.sft_minutes}", "train.max_steps=1000000",
                 "data.synth_per_op=2000", "train.save_every=0", "train.eval_every=1000000",
                 f"train.seed={seed}", f"train.out_dir={final.parent}"]  # fmt: skip
    if args.large == "grow":
        init = str(grow_depth(SMALL_BASE, out / f"grown_init_s{seed}"))
        # continued pre-training: a lower peak LR than from scratch (2e-3), short warm-up
        overrides += ["optim.lr=5e-4", "optim.warmup_steps=20", "model.tokenizer=null"]
    else:
        overrides += ["optim.warmup_steps=100"]
    secs = run(["sft", "recipes/pretrain_synth_micro.yaml", f"model.init={init}", *overrides])
    return final, secs


def small_ft(args: argparse.Namespace, seed: int, out: Path) -> tuple[Path, float]:
    run_dir = out / f"small_ft_s{seed}"
    secs = 0.0
    if not (run_dir / "checkpoints").is_dir():
        secs = run(["train", "recipes/quickstart.yaml", f"trainer.time_budget_s={args.rl_seconds}",
                    f"trainer.out_dir={out}", f"trainer.run_name=small_ft_s{seed}",
                    f"trainer.seed={seed}", "trainer.save_every=100000"])  # fmt: skip
    ckpts = sorted((run_dir / "checkpoints").glob("step_*"))
    return ckpts[-1], secs


def evaluate_all(args: argparse.Namespace, seed: int, large: Path, ft: Path) -> dict:
    import torch

    from reasonrl.config import load_config
    from reasonrl.eval.evaluate import evaluate
    from reasonrl.models.io import load_policy
    from reasonrl.rl.evaluation import heldout_samples
    from reasonrl.rollout.eft import EFTEngine
    from reasonrl.rollout.transformers_engine import TransformersEngine

    torch.set_num_threads(args.threads)
    cfg = load_config(ROOT / "recipes/quickstart.yaml",
                      [f"eval.problems_per_op={args.problems_per_op}"])  # fmt: skip
    samples = heldout_samples(cfg)
    m_large, tok = load_policy(str(large))
    m_ft, _ = load_policy(str(ft))
    m_base, _ = load_policy(SMALL_BASE)
    kw = {"greedy": True, "max_new_tokens": args.max_new_tokens, "seed": seed}
    engines = {
        "small_base": TransformersEngine(m_base, tok, dtype="fp32"),
        "small_ft": TransformersEngine(m_ft, tok, dtype="fp32"),
        "large_base": TransformersEngine(m_large, tok, dtype="fp32"),
    }
    for beta in args.beta:
        engines[f"eft_beta{beta:g}"] = EFTEngine(m_large, m_ft, m_base, tok, beta=beta,
                                                 dtype="fp32")  # fmt: skip
    rows = {}
    for name, engine in engines.items():
        t0 = time.monotonic()
        res = evaluate(m_large, tok, samples, engine=engine, **kw)
        rows[name] = {
            "strict_pass@1": res.overall["strict_pass@1"],
            "pass@1": res.overall["pass@1"],
            "per_op": {op: m["strict_pass@1"] for op, m in res.per_op.items()},
            "eval_s": round(time.monotonic() - t0, 1),
        }
        print(f"seed {seed} {name}: strict pass@1 {rows[name]['strict_pass@1']:.3f} "
              f"({rows[name]['eval_s']} s)", flush=True)  # fmt: skip
    return rows


def summarize(out: Path) -> str:
    data = json.loads((out / "eft_results.json").read_text())
    seeds = sorted(data["seeds"], key=int)
    names = list(data["seeds"][seeds[0]]["eval"])
    ops = list(data["seeds"][seeds[0]]["eval"][names[0]]["per_op"])
    head = "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | " + " | ".join(
        f"op {o}" for o in ops) + " |"  # fmt: skip
    lines = [head, "|" + "---|" * (len(seeds) + 2 + len(ops))]
    for name in names:
        vals = [data["seeds"][s]["eval"][name]["strict_pass@1"] for s in seeds]
        per_op = [sum(data["seeds"][s]["eval"][name]["per_op"][o] for s in seeds) / len(seeds)
                  for o in ops]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals)
                     + f" | {sum(vals) / len(vals):.3f} | "
                     + " | ".join(f"{v:.3f}" for v in per_op) + " |")  # fmt: skip
    return "\n".join(lines)


def plot(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads((out / "eft_results.json").read_text())
    seeds = sorted(data["seeds"], key=int)
    names = list(data["seeds"][seeds[0]]["eval"])
    means = [sum(data["seeds"][s]["eval"][n]["strict_pass@1"] for s in seeds) / len(seeds)
             for n in names]  # fmt: skip
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(names, means, color=["#999", "#69c", "#c96", *["#c33"] * (len(names) - 3)])
    for s in seeds:
        ax.plot(names, [data["seeds"][s]["eval"][n]["strict_pass@1"] for n in names], "k.")
    ax.set_ylabel("strict pass@1 (greedy)")
    ax.set_title(f"EFT up-scaling, synthetic ops 1-5, {len(seeds)} seed(s)")
    plt.xticks(rotation=20, fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "eft.png", dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--large", default="grow", help="grow (2x depth of the small base) or a size")
    p.add_argument("--sft-minutes", type=float, default=5.0)
    p.add_argument("--rl-seconds", type=float, default=180.0)
    p.add_argument("--beta", type=float, nargs="+", default=[1.0])
    p.add_argument("--problems-per-op", type=int, default=40)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "runs/eft_bench")
    p.add_argument("--summarize", type=Path, default=None)
    args = p.parse_args()
    if args.summarize:
        print(summarize(args.summarize))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "eft_results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {"seeds": {}}
    for seed in args.seeds:
        t0 = time.monotonic()
        large, sft_s = large_base(args, seed, args.out)
        ft, rl_s = small_ft(args, seed, args.out)
        rows = evaluate_all(args, seed, large, ft)
        results["seeds"][str(seed)] = {
            "large": str(large), "small_ft": str(ft), "eval": rows,
            "seconds": {"sft": round(sft_s), "rl": round(rl_s),
                        "total": round(time.monotonic() - t0)},
            "settings": {k: str(v) for k, v in vars(args).items()},
        }  # fmt: skip
        results_path.write_text(json.dumps(results, indent=2))
    table = summarize(args.out)
    (args.out / "eft.md").write_text(table + "\n")
    plot(args.out)
    print(table)


if __name__ == "__main__":
    main()
