"""Tool use on the large-number task (issue 18): a tool-using policy vs a no-tool policy.

    python benchmarks/agent_tools.py --out runs/agent --seeds 0 --steps 12      # one seed
    python benchmarks/agent_tools.py --out runs/agent --seeds 0 1 2 --steps 30  # the issue's run
    python benchmarks/agent_tools.py --data-only --out runs/agent               # the SFT files

Arms, both from the shipped `builtin:synth-micro` with the same SFT budget and the same RL
budget (steps x 64 episodes, GRPO-TCR), on `data.magnitude: large`, ops 3-4:
- tool: Behavior Priming (`reasonrl sft recipes/agent_prime.yaml` on behaviour-rich tool traces,
  tool outputs masked) then `reasonrl train recipes/agent_grpo.yaml` (env.kind tool, calculator);
- notool: `reasonrl sft recipes/agent_notool_sft.yaml` on the plain gold traces of the SAME
  problems, then `reasonrl train recipes/agent_notool_grpo.yaml` (single-turn).

Held-out: the RL runs' own evaluation (`trainer.eval_every`: 50 held-out problems per op,
EVAL_SEED, greedy), the tool arm through the tool env (rl/evaluation.run_env_eval), both scored
by the strict (process-verified) reward. Step 0 of each RL run is the SFT-only policy. Seeds vary
the RL run (trainer.seed); the SFT models are shared by the seeds (one SFT per arm).

Writes --out/agent_tools.json (per arm and seed: strict pass@1 at each evaluated step, tool
calls per episode and tool error rate at each training step and evaluation) and the plot
--plot (default docs/img/agent_tools.png): held-out strict pass@1, tool calls per episode and
tool error rate over training. Every stage is cached in --out (delete a run directory to redo).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "reasonrl.cli"]
ARMS = {  # arm -> (SFT recipe, its final model, RL recipe)
    "tool": ("recipes/agent_prime.yaml", "prime/final", "recipes/agent_grpo.yaml"),
    "notool": ("recipes/agent_notool_sft.yaml", "plain/final", "recipes/agent_notool_grpo.yaml"),
}


def sh(cmd: list[str]) -> None:
    print("$", " ".join(cmd[2:] if cmd[:2] == CLI[:2] else cmd), flush=True)
    subprocess.run(["nice", *cmd], check=True, cwd=REPO)


def make_data(out: Path, per_op: int) -> None:
    """tool_train.jsonl (behaviour-rich tool traces) and plain_train.jsonl (the same rows, each
    completion the plain gold trace: `tooltrace.tool_completion` of its `trace`)."""
    from reasonrl.tasks.synth.tooltrace import tool_completion

    tool, plain = out / "tool_train.jsonl", out / "plain_train.jsonl"
    if not tool.exists():
        sh([*CLI, "data", "synth", "--ops", "3-4", "--per-op", str(per_op), "--magnitude",
            "large", "--tool-traces", "--behaviour-rich", "--split", "train", "--seed", "0",
            "--out", str(tool), "--no-progress"])  # fmt: skip
    if not plain.exists():
        with tool.open() as src, plain.open("w") as dst:
            for line in src:
                row = json.loads(line)
                row["completion"] = tool_completion(row["trace"], row["answer"])
                row.pop("behaviours", None)
                dst.write(json.dumps(row) + "\n")


def run_arm(arm: str, seed: int, out: Path, steps: int, sft_minutes: float | None) -> Path:
    sft_recipe, final, rl_recipe = ARMS[arm]
    sft_dir = (out / final).parent
    if not (out / final / "config.json").exists():
        extra = [f"train.out_dir={sft_dir}"]
        if sft_minutes:
            extra.append(f"train.time_budget_min={sft_minutes}")
        sh([*CLI, "sft", sft_recipe, *extra])
    run_name = f"grpo_{arm}_s{seed}"
    run_dir = out / run_name
    done = run_dir / f"eval_step{steps}.json"
    if not done.exists():
        shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished run: start it again
        sh([*CLI, "train", rl_recipe, f"model.path={out / final}", f"trainer.seed={seed}",
            f"trainer.steps={steps}", f"trainer.eval_every={max(1, steps // 2)}",
            f"trainer.save_every={steps}", f"trainer.out_dir={out}",
            f"trainer.run_name={run_name}"])  # fmt: skip
    return run_dir


def read_run(run_dir: Path) -> dict:
    """Evaluated steps (strict pass@1, tool stats) and the per-step training tool stats."""
    evals = {}
    for path in sorted(run_dir.glob("eval_step*.json"), key=lambda p: int(p.stem[9:])):
        data = json.loads(path.read_text())
        env = data.get("env", {})
        evals[data["step"]] = {
            "strict_pass@1": data["overall"]["strict_pass@1"],
            "pass@1": data["overall"]["pass@1"],
            "tool_calls": env.get("tool_calls", 0.0),
            "tool_error_rate": env.get("tool_error_rate", 0.0),
        }
    train = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "env/tool_calls" in row or "reward/mean" in row:
            train.append({"step": row.get("step"), "tool_calls": row.get("env/tool_calls", 0.0),
                          "tool_error_rate": row.get("env/tool_error_rate", 0.0),
                          "strict": row.get("reward/strict", row.get("reward/mean"))})  # fmt: skip
    return {"eval": evals, "train": train}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    colors = {"tool": "tab:blue", "notool": "tab:orange"}
    for arm, seeds in results.items():
        for seed, run in seeds.items():
            ev = sorted((int(s), v) for s, v in run["eval"].items())
            label = f"{arm} s{seed}"
            axes[0].plot([s for s, _ in ev], [v["strict_pass@1"] for _, v in ev], "o-",
                         color=colors[arm], label=label)  # fmt: skip
            tr = [r for r in run["train"] if r["step"] is not None]
            axes[1].plot([r["step"] for r in tr], [r["tool_calls"] for r in tr],
                         color=colors[arm], label=label)  # fmt: skip
            axes[2].plot([r["step"] for r in tr], [r["tool_error_rate"] for r in tr],
                         color=colors[arm], label=label)  # fmt: skip
    titles = ("held-out strict pass@1 (greedy)", "tool calls per episode (rollouts)",
              "tool error rate (rollouts)")  # fmt: skip
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title)
        ax.set_xlabel("RL step")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def table(results: dict) -> str:
    lines = [
        "| arm | seed | strict pass@1, step 0 (SFT) | strict pass@1, final | tool calls / "
        "episode (final eval) | tool error rate (final eval) |",
        "|---|---|---|---|---|---|",
    ]
    finals: dict[str, list[float]] = {}
    for arm, seeds in results.items():
        for seed, run in seeds.items():
            ev = sorted((int(s), v) for s, v in run["eval"].items())
            first, last = ev[0][1], ev[-1][1]
            finals.setdefault(arm, []).append(last["strict_pass@1"])
            lines.append(f"| {arm} | {seed} | {first['strict_pass@1']:.3f} | "
                         f"{last['strict_pass@1']:.3f} | {last['tool_calls']:.2f} | "
                         f"{last['tool_error_rate']:.3f} |")  # fmt: skip
    for arm, vals in finals.items():
        lines.append(f"| {arm} | mean of {len(vals)} | | {statistics.mean(vals):.3f} | | |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/agent")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--steps", type=int, default=30, help="RL steps per run")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--per-op", type=int, default=2500, help="SFT problems generated per op")
    p.add_argument("--sft-minutes", type=float, default=None,
                   help="override the SFT recipes' time budget")  # fmt: skip
    p.add_argument("--plot", default="docs/img/agent_tools.png")
    p.add_argument("--data-only", action="store_true")
    args = p.parse_args()
    out = (REPO / args.out).resolve() if not Path(args.out).is_absolute() else Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    make_data(out, args.per_op)
    if args.data_only:
        return
    results: dict = {}
    for seed in args.seeds:
        for arm in args.arms:
            run_dir = run_arm(arm, seed, out, args.steps, args.sft_minutes)
            results.setdefault(arm, {})[seed] = read_run(run_dir)
    (out / "agent_tools.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    plot(results, REPO / args.plot)


if __name__ == "__main__":
    main()
