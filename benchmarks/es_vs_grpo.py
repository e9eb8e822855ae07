"""EGGROLL evolution strategies vs GRPO at equal wall-clock on the synthetic task (issue 21), and
the low-rank population's perturbation memory vs full-rank ES.

    python benchmarks/es_vs_grpo.py --budget 180 --seeds 0 --out runs/es_vs_grpo
    python benchmarks/es_vs_grpo.py --budget 270 --seeds 0 1 2 --out runs/es_vs_grpo3
    python benchmarks/es_vs_grpo.py --memory-only

Training: recipes/quickstart.yaml (GRPO) and recipes/es_synth.yaml (ES), each stopped by
`trainer.time_budget_s = --budget` (training time only; evaluation is outside it), same base
model (builtin:synth-micro), ops and strict reward. Held-out evaluation of the base and of each
final model: greedy strict pass@1 (eval.temperature=0) and sampled strict pass@1 (T = 1,
`--samples` per problem), on ops 1-5 (the RL ops 1-4 and op 5 above).

Memory: for every perturbed weight of synth-micro (its untied nn.Linear weights), the bytes of
noise one member holds (`MemberNoise.nbytes`, summed over the tensors actually created), the
population's if all N members were held at once (N members created together and summed), and
the most held at once while computing the update (`es_deltas`); plus the time of one forward
with the member applied by hook (no weight copy) vs plain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from reasonrl.config import load_config
from reasonrl.rl.evaluation import heldout_samples, run_eval

REPO = Path(__file__).resolve().parents[1]
RECIPES = {"grpo": REPO / "recipes" / "quickstart.yaml", "es": REPO / "recipes" / "es_synth.yaml"}


def evaluate(model: Any, tokenizer: Any, cfg: Any, samples: int) -> dict[str, float]:
    """Greedy and sampled strict pass@1 (overall and at op 5) of `model`."""
    out = {}
    settings = [("greedy", 0.0, 1)] + ([("sampled", 1.0, samples)] if samples else [])
    for name, temperature, n in settings:
        c = cfg.model_copy(
            update={"eval": cfg.eval.model_copy(update={"temperature": temperature, "samples": n})}
        )
        result = run_eval(model, tokenizer, heldout_samples(c), c)
        out[f"{name}/strict_pass@1"] = result["overall"]["strict_pass@1"]
        out[f"{name}/op5_strict_pass@1"] = result["per_op"]["5"]["strict_pass@1"]
    return out


def train_one(method: str, seed: int, budget: float, out: Path, eval_over: list[str]) -> dict:
    from reasonrl.es.run import train as es_train
    from reasonrl.rl.run import train as rl_train

    over = [f"trainer.seed={seed}", f"trainer.time_budget_s={budget}",
            f"trainer.out_dir={out}", f"trainer.run_name={method}-s{seed}", *eval_over]  # fmt: skip
    cfg = load_config(RECIPES[method], over)
    t0 = time.monotonic()
    state = (es_train if method == "es" else rl_train)(cfg, progress=False)
    wall = time.monotonic() - t0
    return {"method": method, "seed": seed, "steps": state.step, "wall_s": wall,
            "cfg": cfg, "state": state}  # fmt: skip


def memory_table(population: int = 16) -> str:
    from reasonrl.es.perturb import MemberNoise, NoiseSpec, es_targets, hooked
    from reasonrl.es.update import es_deltas
    from reasonrl.models.io import load_policy

    model, _ = load_policy("builtin:synth-micro", dtype="fp32")
    targets = es_targets(model)
    weights = sum(t.module.weight.numel() for t in targets)
    ids = torch.randint(3, 1000, (16, 64))
    with torch.inference_mode():
        t0 = time.perf_counter()
        for _ in range(3):
            model(ids)
        plain = (time.perf_counter() - t0) / 3
    lines = [
        f"synth-micro: {len(targets)} perturbed weights, {weights:,} floats "
        f"({4 * weights / 2**20:.2f} MiB); population N = {population}; forward of 16 x 64 tokens "
        f"{plain * 1e3:.1f} ms plain",
        "",
        "| noise | rank | one member (bytes) | N members held (bytes) | update peak (bytes) | "
        "vs full-rank member | hooked forward (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    full_member = None
    for noise, rank in (("full", 1), ("low_rank", 1), ("low_rank", 4), ("low_rank", 16)):
        spec = NoiseSpec(seed=0, generation=0, rank=rank, sigma=0.02, noise=noise)  # type: ignore[arg-type]
        members = [MemberNoise(targets, spec, i) for i in range(population)]
        one, held = members[0].nbytes, sum(m.nbytes for m in members)
        with torch.inference_mode(), hooked(targets, members[0]):
            t0 = time.perf_counter()
            for _ in range(3):
                model(ids)
            hooked_s = (time.perf_counter() - t0) / 3
        del members
        _, peak = es_deltas(targets, spec, torch.randn(population), lr=1.0)
        full_member = full_member or one
        label = "full-rank ES" if noise == "full" else "EGGROLL"
        lines.append(f"| {label} | {'-' if noise == 'full' else rank} | {one:,} | {held:,} | "
                     f"{peak:,} | {one / full_member:.4f} | {hooked_s * 1e3:.1f} |")  # fmt: skip
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for r in runs:
        text = (r["cfg"].run_dir / "metrics.jsonl").read_text()
        rows = [json.loads(x) for x in text.splitlines() if x]
        ax.plot(
            [x["time_s"] for x in rows],
            [x.get("reward/verified_correct", float("nan")) for x in rows],
            label=f"{r['method']} seed {r['seed']}",
        )
    ax.set_xlabel("training wall-clock (s)")
    ax.set_ylabel("train strict pass rate")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=180.0, help="training seconds per run")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--problems-per-op", type=int, default=40)
    ap.add_argument("--samples", type=int, default=4,
                    help="samples/problem for sampled pass@1 (0: greedy only)")  # fmt: skip
    ap.add_argument("--base", type=Path, default=None,
                    help="the base model's evaluation from an earlier run's base.json (the "
                    "evaluation seed is fixed, so it is the same)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "es_vs_grpo")
    ap.add_argument("--memory-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (both methods run with the same number)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(memory_table())
    if args.memory_only:
        return
    args.out.mkdir(parents=True, exist_ok=True)
    eval_over = [f"eval.problems_per_op={args.problems_per_op}", "trainer.save_every=1000"]
    from reasonrl.models.io import load_policy

    base_cfg = load_config(RECIPES["grpo"], eval_over)
    if args.base is not None:
        base = json.loads(args.base.read_text())
    else:
        model, tok = load_policy(base_cfg.model.path, dtype="fp32")
        base = evaluate(model, tok, base_cfg, args.samples)
        (args.out / "base.json").write_text(json.dumps(base))
    print("base", json.dumps(base))
    runs = []
    for seed in args.seeds:
        for method in ("grpo", "es"):
            r = train_one(method, seed, args.budget, args.out, eval_over)
            r["eval"] = evaluate(r["state"].model, r["state"].tokenizer, r["cfg"], args.samples)
            print(method, seed, r["steps"], f"{r['wall_s']:.0f}s", json.dumps(r["eval"]))
            runs.append(r)
    plot(runs, args.out / "es_vs_grpo.png")
    keys = list(runs[0]["eval"])
    lines = [
        "| method | seeds | steps | " + " | ".join(keys) + " |",
        "|---" * (len(keys) + 3) + "|",
        "| base | - | 0 | " + " | ".join(f"{base[k]:.3f}" for k in keys) + " |",
    ]
    for method in ("grpo", "es"):
        mine = [r for r in runs if r["method"] == method]
        cells = []
        for k in keys:
            vals = [r["eval"][k] for r in mine]
            sd = f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else ""
            cells.append(f"{statistics.mean(vals):.3f}{sd}")
        steps = [r["steps"] for r in mine]
        lines.append(f"| {method} | {len(mine)} | {steps} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    summary = {"base": base, "runs": [{k: v for k, v in r.items() if k not in ("cfg", "state")}
                                      for r in runs], "table": table}  # fmt: skip
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
