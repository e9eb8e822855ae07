"""Run one finding of the science suite end to end (issue 22): train its arms, print its table.

    python benchmarks/science/run.py dr_grpo --seeds 0 1 2          # finding 3
    python benchmarks/science/run.py lite_ppo --seeds 0 1 2         # finding 4 (ablation)
    python benchmarks/science/run.py dynamic_sampling --seeds 0 1 2 # finding 6
    python benchmarks/science/run.py algorithms --seeds 0 1 2       # docs/choosing-an-algorithm
    python benchmarks/science/run.py all --steps 40 --jobs 2        # every finding above

Each finding trains the arms it needs (benchmarks/science/common.py: the quickstart recipe with
its algo section replaced, a step budget, cached per (arm, budget, seed), so findings sharing an
arm train it once), evaluates strict pass@1 on the held-out split, prints a markdown table and
writes docs/science/<finding>.png and docs/science/<finding>.json (the numbers of the table, the
budget, the machine and the run directories).
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py beside this file
import common as c

Runs = Mapping[str, Sequence[Path]]


def _seeds(runs: Runs, arm: str, fn: Callable[[Path], float]) -> list[float]:
    return [fn(d) for d in runs[arm]]


# ---- finding 3: Dr. GRPO's length bias (arXiv 2503.20783) ----------------------------------


def dr_grpo(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    rows, payload = [], {}
    head = (
        "| arm | len correct first → last | len wrong first → last | wrong − correct "
        "first → last | len_mean last | held-out strict pass@1 (base "
        f"{c.strict1(base):.3f}) | held-out mean tokens |\n|---|---|---|---|---|---|---|"
    )
    for arm in runs:
        v: dict[str, list[float]] = {}
        for key in ("rollout/len_correct", "rollout/len_wrong", "rollout/len_mean"):
            short = key.split("/")[1]
            v[f"{short}_first"] = _seeds(runs, arm, lambda d, k=key: c.window_mean(d, k, True))
            v[f"{short}_last"] = _seeds(runs, arm, lambda d, k=key: c.window_mean(d, k))
        v["strict_pass@1"] = _seeds(runs, arm, lambda d: c.strict1(c.heldout(d)))
        v["eval_mean_tokens"] = _seeds(
            runs, arm, lambda d: float(c.heldout(d)["overall"]["mean_tokens"])
        )
        gap_f = [w - r for w, r in zip(v["len_wrong_first"], v["len_correct_first"], strict=True)]
        gap_l = [w - r for w, r in zip(v["len_wrong_last"], v["len_correct_last"], strict=True)]
        v["gap_first"], v["gap_last"] = gap_f, gap_l
        payload[arm] = v
        m = c.mean_sd
        rows.append(
            f"| {arm} | {m(v['len_correct_first'])} → {m(v['len_correct_last'])} | "
            f"{m(v['len_wrong_first'])} → {m(v['len_wrong_last'])} | {m(gap_f)} → {m(gap_l)} | "
            f"{m(v['len_mean_last'])} | {m(v['strict_pass@1'])} | {m(v['eval_mean_tokens'])} |"
        )
    fig, axes = c.figure(3, "Dr. GRPO vs GRPO: completion length by correctness (mean over seeds)")
    c.plot_key(axes[0], runs, "rollout/len_correct", " correct")
    c.plot_key(axes[0], runs, "rollout/len_wrong", " wrong", style="--")
    axes[0].set_ylabel("tokens")
    axes[0].legend(fontsize=7)
    c.plot_key(axes[1], runs, "rollout/len_mean")
    axes[1].set_ylabel("rollout/len_mean")
    c.plot_key(axes[2], runs, "reward/mean")
    axes[2].set_ylabel("reward/mean (strict)")
    axes[2].legend(fontsize=7)
    c.save(fig, "dr_grpo", docs)
    note = (
        "first/last = mean over the first/last quarter of the steps of the rollout "
        "metrics rollout/len_correct, rollout/len_wrong (tokens)."
    )
    return head + "\n" + "\n".join(rows) + "\n\n" + note, payload


# ---- finding 4: Tricks or Traps / Lite PPO (arXiv 2508.08221) -------------------------------

# (normalisation, aggregation) -> arm; the batch-std + token-mean cell is the lite_ppo preset.
ABLATION = {
    ("group mean", "sequence-mean"): "mean_seq",
    ("group mean", "token-mean"): "mean_tok",
    ("group mean + group std", "sequence-mean"): "gstd_seq",
    ("group mean + group std", "token-mean"): "gstd_tok",
    ("group mean + batch std", "sequence-mean"): "bstd_seq",
    ("group mean + batch std", "token-mean"): "lite_ppo",
}


def lite_ppo(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    def cell(arm: str) -> tuple[str, list[float]]:
        if arm not in runs:
            return "not run", []
        vals = _seeds(runs, arm, lambda d: c.strict1(c.heldout(d)))
        return c.mean_sd(vals), vals

    payload: dict[str, Any] = {"base_strict_pass@1": c.strict1(base), "cells": {}}
    lines = [
        f"Held-out strict pass@1 after RL (base {c.strict1(base):.3f}), ops 1-4:",
        "",
        "| advantage normalisation | sequence-mean | token-mean |",
        "|---|---|---|",
    ]
    for norm in ("group mean", "group mean + group std", "group mean + batch std"):
        shown = []
        for agg in ("sequence-mean", "token-mean"):
            arm = ABLATION[(norm, agg)]
            text, vals = cell(arm)
            payload["cells"][f"{norm} | {agg}"] = {"arm": arm, "strict_pass@1": vals}
            shown.append(f"{text} (`{arm}`)")
        lines.append(f"| {norm} | " + " | ".join(shown) + " |")
    lines += [
        "",
        "| preset | held-out strict pass@1 | train reward/mean, last quarter |",
        "|---|---|---|",
    ]
    for arm in ("grpo", "dapo", "lite_ppo"):
        text, vals = cell(arm)
        late = _seeds(runs, arm, lambda d: c.window_mean(d, "reward/mean")) if vals else []
        payload.setdefault("presets", {})[arm] = {"strict_pass@1": vals, "reward_last": late}
        lines.append(f"| {arm} | {text} | {c.mean_sd(late) if late else '—'} |")
    fig, axes = c.figure(2, "Tricks or Traps ablation: training reward (mean over seeds)")
    ran = {a: runs[a] for a in [*ABLATION.values(), "grpo", "dapo"] if a in runs}
    c.plot_key(axes[0], ran, "reward/mean")
    axes[0].set_ylabel("reward/mean (strict)")
    axes[0].legend(fontsize=7)
    names = list(ran)
    vals = [statistics.mean(c.strict1(c.heldout(d)) for d in ran[a]) for a in names]
    axes[1].barh(names, vals, color=[f"C{i}" for i in range(len(names))])
    axes[1].axvline(c.strict1(base), color="k", ls="--", lw=1, label="base")
    axes[1].set_xlabel("held-out strict pass@1 after RL")
    axes[1].legend(fontsize=7)
    c.save(fig, "lite_ppo", docs)
    return "\n".join(lines), payload


# ---- finding 6: dynamic sampling (DAPO arXiv 2503.14476; Kimi k1.5 arXiv 2501.12599) ---------


def dynamic_sampling(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    lines = [
        "| arm | learning-signal share 1 − zero_std_frac (first → last quarter) | groups "
        "generated / step | train wall s | s / step | held-out strict pass@1 (base "
        f"{c.strict1(base):.3f}) |",
        "|---|---|---|---|---|---|",
    ]
    payload: dict[str, Any] = {}
    for arm in runs:
        z_f = _seeds(runs, arm, lambda d: 1 - c.window_mean(d, "rollout/zero_std_frac", True))
        z_l = _seeds(runs, arm, lambda d: 1 - c.window_mean(d, "rollout/zero_std_frac"))
        gen = _seeds(
            runs, arm, lambda d: statistics.mean(c.curve(d, "rollout/groups_generated")[1])
        )
        wall = _seeds(runs, arm, lambda d: sum(c.curve(d, "perf/step_s")[1]))
        step_s = _seeds(runs, arm, lambda d: statistics.mean(c.curve(d, "perf/step_s")[1]))
        s1 = _seeds(runs, arm, lambda d: c.strict1(c.heldout(d)))
        payload[arm] = {
            "signal_first": z_f,
            "signal_last": z_l,
            "groups_per_step": gen,
            "train_s": wall,
            "step_s": step_s,
            "strict_pass@1": s1,
        }
        m = c.mean_sd
        lines.append(
            f"| {arm} | {m(z_f)} → {m(z_l)} | {m(gen)} | {m(wall)} | {m(step_s)} | {m(s1)} |"
        )
    fig, axes = c.figure(3, "Dynamic sampling: learning signal and cost (mean over seeds)")
    for arm, dirs in runs.items():  # share of the trained groups with a non-zero reward spread
        d = dirs[0]
        steps, z = c.curve(d, "rollout/zero_std_frac")
        axes[0].plot(steps, [1 - x for x in z], label=f"{arm} (seed {d.name.split('-')[0]})")
    axes[0].set_ylabel("1 − rollout/zero_std_frac")
    axes[0].set_xlabel("RL step")
    axes[0].legend(fontsize=7)
    for arm, dirs in runs.items():  # reward against generation spent (the wall-clock proxy)
        steps, gen = c.curve(dirs[0], "rollout/groups_generated")
        _, rew = c.curve(dirs[0], "reward/mean")
        cum = [sum(gen[: i + 1]) for i in range(len(gen))]
        axes[1].plot(cum[: len(rew)], rew, label=arm)
    axes[1].set_xlabel("groups generated (cumulative)")
    axes[1].set_ylabel("reward/mean (strict)")
    axes[1].legend(fontsize=7)
    c.plot_key(axes[2], runs, "reward/verified_correct")
    axes[2].set_ylabel("train strict rate (reward/verified_correct)")
    c.save(fig, "dynamic_sampling", docs)
    return "\n".join(lines), payload


# ---- docs/choosing-an-algorithm.md: the presets' learning curves ------------------------------


def algorithms(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    from reasonrl.algos.presets import PRESETS

    lines = [
        f"| arm | algo keys | train reward/mean first → last quarter | held-out strict "
        f"pass@1 (base {c.strict1(base):.3f}) | s / step |",
        "|---|---|---|---|---|",
    ]
    payload: dict[str, Any] = {}
    for arm in runs:
        keys = {**PRESETS.get(str(c.ARMS[arm].get("preset")), {}), **c.ARMS[arm]}
        keys.pop("preset", None)
        r_f = _seeds(runs, arm, lambda d: c.window_mean(d, "reward/mean", True))
        r_l = _seeds(runs, arm, lambda d: c.window_mean(d, "reward/mean"))
        s1 = _seeds(runs, arm, lambda d: c.strict1(c.heldout(d)))
        step_s = _seeds(runs, arm, lambda d: statistics.mean(c.curve(d, "perf/step_s")[1]))
        payload[arm] = {
            "algo": keys,
            "reward_first": r_f,
            "reward_last": r_l,
            "strict_pass@1": s1,
            "step_s": step_s,
        }
        shown = ", ".join(f"{k}={v}" for k, v in keys.items())
        m = c.mean_sd
        lines.append(f"| {arm} | {shown} | {m(r_f)} → {m(r_l)} | {m(s1)} | {m(step_s)} |")
    fig, axes = c.figure(3, "Presets on the quickstart task (mean over seeds)")
    c.plot_key(axes[0], runs, "reward/mean")
    axes[0].set_ylabel("reward/mean (strict reward)")
    axes[0].legend(fontsize=7)
    c.plot_key(axes[1], runs, "reward/verified_correct")
    axes[1].set_ylabel("train strict pass@1 (reward/verified_correct)")
    names = list(runs)
    vals = [statistics.mean(c.strict1(c.heldout(d)) for d in runs[a]) for a in names]
    axes[2].barh(names, vals, color=[f"C{i}" for i in range(len(names))])
    axes[2].axvline(c.strict1(base), color="k", ls="--", lw=1, label="base")
    axes[2].set_xlabel("held-out strict pass@1 after RL")
    axes[2].legend(fontsize=7)
    c.save(fig, "algorithms", docs)
    return "\n".join(lines), payload


Finding = Callable[[Runs, dict, Path], tuple[str, dict[str, Any]]]
FINDINGS: dict[str, tuple[Sequence[str], Finding]] = {
    "dr_grpo": (("grpo", "dr_grpo"), dr_grpo),
    "lite_ppo": ((*ABLATION.values(), "grpo", "dapo"), lite_ppo),
    "dynamic_sampling": (("gstd_tok", "gstd_tok_ds", "dapo"), dynamic_sampling),
    "algorithms": (("gstd_tok", "grpo", "dr_grpo", "dapo", "lite_ppo"), algorithms),
}


def run_finding(name: str, args: Any, budget: c.Budget, arms: Sequence[str] | None = None) -> str:
    wanted, report = FINDINGS[name]
    runs = c.run_arms(list(arms or wanted), args.seeds, budget)
    base = c.base_eval(budget)
    table, payload = report(runs, base, args.docs)
    c.write_results(
        name,
        {
            "finding": name,
            "budget": c.budget_dict(budget, args.seeds),
            "base": base["overall"],
            "table": table,
            "results": payload,
            "runs": c.copy_runs(runs),
        },
        args.docs,
    )
    return table


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*FINDINGS, "all"):
        sys.exit(
            f"usage: run.py {{{','.join([*FINDINGS, 'all'])}}} [options]; see --help\n"
            + (__doc__ or "")
        )
    name, rest = argv[0], argv[1:]
    doc = __doc__ or ""
    p_args, budget = c.parse_args(doc, rest)
    for finding in FINDINGS if name == "all" else [name]:
        print(f"## {finding}\n\n{run_finding(finding, p_args, budget, p_args.arms)}\n", flush=True)


if __name__ == "__main__":
    main()
