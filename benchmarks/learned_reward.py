"""GRPO with the strict, the outcome and a learned reward at the quickstart's ops (issue 20).

Each run is recipes/quickstart.yaml (GRPO, ops 1-4) with a STEP budget (the time budget off, so
runs compare at equal steps on a shared machine) and `reward.kind` set; the learned run uses a
reward model trained by `reasonrl rm` (`--rm DIR`, its final/). Training on the learned reward
logs the synthetic task's strict reward of the SAME samples as `reward/strict` beside the RM's
raw score `reward/learned` (`rewards.learned`'s monitor), so a learned score that climbs while
the strict reward does not is reward hacking, made visible in OUT/learned_gap.png.

    nice .venv/bin/python benchmarks/learned_reward.py --rm runs/rm_ablation/s1/v0/final \
        --steps 30 --seeds 0 --out runs/bench_learned

Held-out strict pass@1 before/after (eval.problems_per_op problems per RL op, eval.samples at
T=1) per run in OUT/results.json, a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

KINDS = ("synth_strict", "synth_outcome", "learned")


def run_one(kind: str, seed: int, args: argparse.Namespace) -> dict:
    from reasonrl.cli.quickstart import run_quickstart
    from reasonrl.config import RLConfig, load_config

    over = [f"reward.kind={kind}", f"trainer.steps={args.steps}", "trainer.time_budget_s=null",
            f"trainer.out_dir={args.out}", f"trainer.run_name={kind}-s{seed}",
            f"data.seed={seed}", f"trainer.seed={seed}", "data.eval_ops=[1,2,3,4]",
            f"eval.problems_per_op={args.eval_problems}", f"eval.samples={args.eval_samples}",
            f"rollout.prompts_per_step={args.prompts}", "trainer.save_every=1000"]  # fmt: skip
    if kind == "learned":
        over += [f"reward.learned_model={args.rm}"]
    cfg = load_config("recipes/quickstart.yaml", over, schema=RLConfig)
    t0 = time.perf_counter()
    run_quickstart(cfg)
    ev = json.loads((cfg.run_dir / "eval.json").read_text())
    rows = [json.loads(x) for x in (cfg.run_dir / "metrics.jsonl").read_text().splitlines() if x]
    ops = sorted(ev["before"], key=int)

    def pooled(when: str) -> float:
        return statistics.mean(ev[when][op]["strict_pass@1"] for op in ops)

    curve = [
        {
            k: r.get(k)
            for k in (
                "step",
                "reward/mean",
                "reward/strict",
                "reward/learned",
                "reward/verified_correct",
            )
        }
        for r in rows
        if "step" in r
    ]
    return {"kind": kind, "seed": seed, "before": pooled("before"), "after": pooled("after"),
            "steps": ev["meta"]["steps"], "minutes": (time.perf_counter() - t0) / 60,
            "curve": curve}  # fmt: skip


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for r in results:
        steps = [c["step"] for c in r["curve"]]
        strict = [c["reward/strict"] if c["reward/strict"] is not None
                  else c["reward/verified_correct"] for c in r["curve"]]  # fmt: skip
        a.plot(steps, strict, label=f"{r['kind']} s{r['seed']}")
        if r["kind"] == "learned":
            raw = [c["reward/learned"] for c in r["curve"]]
            base = raw[0]
            b.plot(steps, [x - base for x in raw], label=f"RM score - step 1 (s{r['seed']})")
            b.plot(steps, [s - strict[0] for s in strict], "--",
                   label=f"strict reward - step 1 (s{r['seed']})")  # fmt: skip
    a.set(xlabel="RL step", ylabel="strict reward of the training samples",
          title="strict reward of each run's own samples")  # fmt: skip
    b.set(xlabel="RL step", ylabel="change since step 1",
          title="learned run: RM score vs strict reward (same samples)")  # fmt: skip
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rm", required=True, help="reward-model directory (reasonrl rm's final/)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--kinds", nargs="+", default=list(KINDS))
    p.add_argument("--prompts", type=int, default=16, help="rollout.prompts_per_step")
    p.add_argument("--eval-problems", type=int, default=20)
    p.add_argument("--eval-samples", type=int, default=4)
    p.add_argument("--out", type=Path, default=Path("runs/bench_learned"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"  # runs of other invocations (other kinds/seeds) are kept
    results = json.loads(path.read_text()) if path.exists() else []
    for s in args.seeds:
        for k in args.kinds:
            got = run_one(k, s, args)
            results = [r for r in results if (r["kind"], r["seed"]) != (k, s)] + [got]
            path.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, args.out / "learned_gap.png")
    print("| reward | seed | RL steps | strict pass@1 ops 1-4 before -> after | minutes |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['kind']} | {r['seed']} | {r['steps']} | {r['before']:.3f} -> "
              f"{r['after']:.3f} | {r['minutes']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
