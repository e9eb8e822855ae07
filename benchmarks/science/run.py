"""Run one finding of the science suite end to end (issue 22): train its arms, print its table.

    python benchmarks/science/run.py dr_grpo --seeds 0 1 2          # finding 3
    python benchmarks/science/run.py lite_ppo --seeds 0 1 2         # finding 4 (ablation)
    python benchmarks/science/run.py dynamic_sampling --seeds 0 1 2 --steps 400 --budget-s 240
                                                        # finding 6, equal wall-clock
    python benchmarks/science/run.py algorithms --seeds 0 1 2       # docs/choosing-an-algorithm
    python benchmarks/science/run.py process_vs_outcome --seeds 0 1 2  # finding 2
    python benchmarks/science/run.py mismatch --seeds 0 1 2         # finding 5
    python benchmarks/science/run.py clip_delta --seeds 0 1 2       # issue 21: Clip / Delta
    python benchmarks/science/run.py interplay --seeds 0 1 2        # finding 1 (pass@32, ops 2-6)
    python benchmarks/science/run.py transfer --seeds 0 1 2         # finding 1 (new context)
    python benchmarks/science/run.py all --seeds 0 1 2 --jobs 2     # every finding, step budget

Each finding trains the arms it needs (benchmarks/science/common.py: the quickstart recipe with
its algo section replaced, a step budget, cached per (arm, budget, seed), so findings sharing an
arm train it once), evaluates strict pass@1 on the held-out split, prints a markdown table and
writes docs/science/<finding>.png and docs/science/<finding>.json (the numbers of the table, the
budget, the machine and the run directories).
"""

from __future__ import annotations

import dataclasses
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


# ---- finding 2: process-verified vs outcome reward (Interplay, arXiv 2512.07783) ----------


def _overall(d: Path, key: str) -> float:
    return float(c.heldout(d)["overall"][key])


def _shortcut(d: Path, first: bool = False) -> float:
    """Share of rollouts whose answer is right while the trace is not (reward/outcome minus
    reward/verified_correct: verified implies outcome), over the first/last quarter."""
    return c.window_mean(d, "reward/outcome", first) - c.window_mean(
        d, "reward/verified_correct", first
    )


def process_vs_outcome(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    b = base["overall"]
    lines = [
        "| arm (reward) | train shortcut rate first → last quarter | train verified rate first → "
        f"last | held-out outcome pass@1 (base {b['pass@1']:.3f}) | held-out strict pass@1 (base "
        f"{b['strict_pass@1']:.3f}) | held-out shortcut rate (outcome − strict; base "
        f"{b['pass@1'] - b['strict_pass@1']:.3f}) |",
        "|---|---|---|---|---|---|",
    ]
    payload: dict[str, Any] = {}
    reward = {"gstd_tok": "strict (synth_strict)", "outcome": "outcome (synth_outcome)"}
    for arm in runs:
        v = {
            "shortcut_first": _seeds(runs, arm, lambda d: _shortcut(d, True)),
            "shortcut_last": _seeds(runs, arm, _shortcut),
            "verified_first": _seeds(
                runs, arm, lambda d: c.window_mean(d, "reward/verified_correct", True)
            ),
            "verified_last": _seeds(
                runs, arm, lambda d: c.window_mean(d, "reward/verified_correct")
            ),
            "pass@1": _seeds(runs, arm, lambda d: _overall(d, "pass@1")),
            "strict_pass@1": _seeds(runs, arm, lambda d: _overall(d, "strict_pass@1")),
        }
        v["heldout_shortcut"] = [
            o - s for o, s in zip(v["pass@1"], v["strict_pass@1"], strict=True)
        ]
        payload[arm] = v
        m = c.mean_sd
        lines.append(
            f"| {arm} ({reward.get(arm, arm)}) | {m(v['shortcut_first'])} → "
            f"{m(v['shortcut_last'])} | {m(v['verified_first'])} → {m(v['verified_last'])} | "
            f"{m(v['pass@1'])} | {m(v['strict_pass@1'])} | {m(v['heldout_shortcut'])} |"
        )
    fig, axes = c.figure(3, "Strict vs outcome reward (mean over seeds)")
    c.plot_key(axes[0], runs, "reward/outcome", " answer right")
    c.plot_key(axes[0], runs, "reward/verified_correct", " verified", style="--")
    axes[0].set_ylabel("share of rollouts")
    axes[0].legend(fontsize=7)
    for i, (arm, dirs) in enumerate(runs.items()):  # the shortcut rate per step, seed-mean
        per_seed = []
        for d in dirs:
            steps, out = c.curve(d, "reward/outcome")
            _, ver = c.curve(d, "reward/verified_correct")
            per_seed.append(dict(zip(steps, [o - w for o, w in zip(out, ver)], strict=False)))
        common_steps = sorted(set.intersection(*(set(x) for x in per_seed)))
        ys = [statistics.mean(x[st] for x in per_seed) for st in common_steps]
        axes[1].plot(common_steps, ys, color=f"C{i}", label=arm, lw=1.4)
    axes[1].set_xlabel("RL step")
    axes[1].set_ylabel("shortcut rate (answer right, trace wrong)")
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    names = ["base", *runs]
    outc = [b["pass@1"], *(statistics.mean(payload[a]["pass@1"]) for a in runs)]
    stri = [b["strict_pass@1"], *(statistics.mean(payload[a]["strict_pass@1"]) for a in runs)]
    ys = list(range(len(names)))
    axes[2].barh([y + 0.2 for y in ys], outc, height=0.4, label="outcome pass@1")
    axes[2].barh([y - 0.2 for y in ys], stri, height=0.4, label="strict pass@1")
    axes[2].set_yticks(ys, names)
    axes[2].set_xlabel("held-out, ops 1-4")
    axes[2].legend(fontsize=7)
    c.save(fig, "process_vs_outcome", docs)
    note = (
        "Shortcut rate = reward/outcome − reward/verified_correct (every rollout is scored by "
        "both, whatever the training reward). first/last = first/last quarter of the steps."
    )
    return "\n".join(lines) + "\n\n" + note, payload


# ---- finding 5: rollout-trainer mismatch (arXiv 2512.01374) ---------------------------------


def mismatch(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    lines = [
        "| arm | staleness mean (versions) | mismatch k3 first → last quarter | max mismatch "
        "k3 | train reward/mean first → last | held-out strict pass@1 (base "
        f"{c.strict1(base):.3f}) |",
        "|---|---|---|---|---|---|",
    ]
    payload: dict[str, Any] = {}

    def peak(d: Path, key: str) -> float:
        values = c.curve(d, key)[1]
        return max(values) if values else float("nan")

    for arm in runs:
        v = {
            "staleness": _seeds(
                runs, arm, lambda d: c.window_mean(d, "rollout/staleness_mean", frac=1.0)
            ),
            "k3_first": _seeds(runs, arm, lambda d: c.window_mean(d, "is/mismatch_k3", True)),
            "k3_last": _seeds(runs, arm, lambda d: c.window_mean(d, "is/mismatch_k3")),
            "k3_max": _seeds(runs, arm, lambda d: peak(d, "is/mismatch_k3")),
            "reward_first": _seeds(runs, arm, lambda d: c.window_mean(d, "reward/mean", True)),
            "reward_last": _seeds(runs, arm, lambda d: c.window_mean(d, "reward/mean")),
            "strict_pass@1": _seeds(runs, arm, lambda d: c.strict1(c.heldout(d))),
        }
        payload[arm] = v
        m = c.mean_sd
        lines.append(
            f"| {arm} | {m(v['staleness'])} | {m(v['k3_first'])} → {m(v['k3_last'])} | "
            f"{m(v['k3_max'])} | {m(v['reward_first'])} → {m(v['reward_last'])} | "
            f"{m(v['strict_pass@1'])} |"
        )
    fig, axes = c.figure(3, "Stale sampler, with and without truncated IS (mean over seeds)")
    c.plot_key(axes[0], runs, "is/mismatch_k3")
    axes[0].set_ylabel("mismatch KL (k3) sampler vs trainer")
    axes[0].set_yscale("symlog", linthresh=1e-4)
    axes[0].legend(fontsize=7)
    c.plot_key(axes[1], runs, "reward/mean")
    axes[1].set_ylabel("reward/mean (strict)")
    c.plot_key(axes[2], runs, "actor/entropy")
    axes[2].set_ylabel("actor/entropy")
    c.save(fig, "mismatch", docs)
    note = (
        "gstd_tok = the quickstart's synchronous loop (sampler = trainer weights, so its mismatch "
        "is numerics only); stale4 = rollout.max_staleness 4 with no correction; stale4_tis = "
        "the same with token-level truncated IS (algo.is_level token, is_high 2). Mismatch k3 = "
        "mean_t (r - 1 - log r), r = pi_old / mu_old, logged as is/mismatch_k3."
    )
    return "\n".join(lines) + "\n\n" + note, payload


# ---- issue 21: Clip / Delta dense step rewards (arXiv 2410.15115) ---------------------------


def clip_delta(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    b = base["overall"]
    lines = [
        "| arm | step rewards | steps per completion first → last quarter | tokens first → "
        "last | train answer-right rate last | held-out strict pass@1 (base "
        f"{b['strict_pass@1']:.3f}) | held-out outcome pass@1 (base {b['pass@1']:.3f}) | "
        "held-out mean tokens |",
        "|---|---|---|---|---|---|---|---|",
    ]
    payload: dict[str, Any] = {}
    for arm in runs:
        kind = c.SECTIONS.get(arm, {}).get("reward", {}).get("dense", "none")
        v = {
            # every completion's parsed steps, whatever the reward: rollout/len_* and, with
            # dense rewards on, reward/dense_steps (none: the count is not computed)
            "steps_first": _seeds(
                runs, arm, lambda d: c.window_mean(d, "reward/dense_steps", True)
            ),
            "steps_last": _seeds(runs, arm, lambda d: c.window_mean(d, "reward/dense_steps")),
            "len_first": _seeds(runs, arm, lambda d: c.window_mean(d, "rollout/len_mean", True)),
            "len_last": _seeds(runs, arm, lambda d: c.window_mean(d, "rollout/len_mean")),
            "outcome_last": _seeds(runs, arm, lambda d: c.window_mean(d, "reward/outcome")),
            "strict_pass@1": _seeds(runs, arm, lambda d: _overall(d, "strict_pass@1")),
            "pass@1": _seeds(runs, arm, lambda d: _overall(d, "pass@1")),
            "mean_tokens": _seeds(runs, arm, lambda d: _overall(d, "mean_tokens")),
        }
        payload[arm] = {"dense": kind, **v}
        m = c.mean_sd
        steps = (
            "— (not computed)"
            if kind == "none"
            else f"{m(v['steps_first'])} → {m(v['steps_last'])}"
        )
        lines.append(
            f"| {arm} | {kind} | {steps} | {m(v['len_first'])} → {m(v['len_last'])} | "
            f"{m(v['outcome_last'])} | {m(v['strict_pass@1'])} | {m(v['pass@1'])} | "
            f"{m(v['mean_tokens'])} |"
        )
    fig, axes = c.figure(3, "Dense step rewards: raw vs Clip vs Delta (mean over seeds)")
    c.plot_key(axes[0], {a: d for a, d in runs.items() if a != "rpp_outcome"}, "reward/dense_steps")
    axes[0].set_ylabel("steps per completion (reward/dense_steps)")
    axes[0].legend(fontsize=7)
    c.plot_key(axes[1], runs, "rollout/len_mean")
    axes[1].set_ylabel("completion tokens (rollout/len_mean)")
    axes[1].legend(fontsize=7)
    c.plot_key(axes[2], runs, "reward/verified_correct")
    axes[2].set_ylabel("train verified-correct rate")
    c.save(fig, "clip_delta", docs)
    note = (
        "Every arm: REINFORCE++ advantages (token-level, batch-whitened), final reward = outcome "
        "(synth_outcome); the step rewards (reward.dense_coef 0.1 per step, on the step's last "
        "token) are each Define step's correctness (rule-based, a PRM stand-in): raw = +0.1 per "
        "correct step (a repeated correct step scores again: farmable), Clip = min(r - 1, 0) "
        "(only wrong steps cost), Delta = r_k - r_{k+1} (returns telescope)."
    )
    return "\n".join(lines) + "\n\n" + note, payload


# ---- finding 1: Interplay, edge-of-competence RL and pass@k (arXiv 2512.07783) ------------

INTERPLAY_OPS = (2, 3, 4, 5, 6)  # op 2: solved in part; 3-4: the edge; 5-6: harder (base ~0)
INTERPLAY_K = 32


def _passk(result: Mapping[str, Any], op: int, k: int) -> float:
    return float(result["per_op"][str(op)][f"strict_pass@{k}"])


def interplay(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    ks = [k for k in (1, 2, 4, 8, 16, 32) if f"strict_pass@{k}" in base["per_op"]["2"]]
    top = ks[-1]
    cols = " | ".join(f"op {op} @1 / @{top}" for op in INTERPLAY_OPS)
    lines = [
        f"| arm (RL ops) | {cols} |",
        "|---|" + "---|" * len(INTERPLAY_OPS),
        "| base | "
        + " | ".join(
            f"{_passk(base, op, 1):.3f} / {_passk(base, op, top):.3f}" for op in INTERPLAY_OPS
        )
        + " |",
    ]
    payload: dict[str, Any] = {
        "base": {str(op): {k: _passk(base, op, k) for k in ks} for op in INTERPLAY_OPS}
    }
    for arm in runs:
        ops = c.SECTIONS[arm]["data"]["ops"]
        v = {
            str(op): {
                k: _seeds(runs, arm, lambda d, o=op, kk=k: _passk(c.heldout(d), o, kk)) for k in ks
            }
            for op in INTERPLAY_OPS
        }
        payload[arm] = {"rl_ops": ops, "strict_pass@k": v}
        cells = " | ".join(
            f"{c.mean_sd(v[str(op)][1])} / {c.mean_sd(v[str(op)][top])}" for op in INTERPLAY_OPS
        )
        lines.append(f"| {arm} ({', '.join(map(str, ops))}) | {cells} |")
    fig, axes = c.figure(len(INTERPLAY_OPS), "Strict pass@k by op after RL on op 2 vs ops 3-4")
    for ax, op in zip(axes, INTERPLAY_OPS, strict=True):
        ax.plot(ks, [payload["base"][str(op)][k] for k in ks], "k--", label="base", lw=1.2)
        for i, arm in enumerate(runs):
            per_k = payload[arm]["strict_pass@k"][str(op)]
            ax.plot(ks, [statistics.mean(per_k[k]) for k in ks], color=f"C{i}", label=arm)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("k")
        ax.set_title(f"op {op}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out strict pass@k")
    axes[0].legend(fontsize=7)
    c.save(fig, "interplay", docs)
    note = (
        f"Strict (process-verified) pass@k, unbiased estimator over {top} samples per problem at "
        "T = 1; mean ± sd over seeds. rl_id = RL on op 2 only; rl_edge = RL on ops 3-4; both the "
        "quickstart's algorithm (gstd_tok) for the same steps."
    )
    return "\n".join(lines) + "\n\n" + note, payload


def transfer(runs: Runs, base: dict, docs: Path) -> tuple[str, dict[str, Any]]:
    """Finding 1, contextual transfer: each arm's own base (mid-trained with p % new-context
    rows) before and after RL on the new context, strict pass@1 and @k on that context."""
    k = max(int(key.rsplit("@", 1)[1]) for key in base["overall"] if key.startswith("strict_pass@"))
    keys = {"strict_pass@1": "strict@1", f"strict_pass@{k}": f"strict@{k}", "pass@1": "outcome@1"}
    lines = [
        f"| arm (% {c.NEW_CONTEXT} rows in mid-training) | "
        + " | ".join(f"{short} before → after RL" for short in keys.values())
        + " |",
        "|---|" + "---|" * len(keys),
    ]
    payload: dict[str, Any] = {"context": c.NEW_CONTEXT}
    for arm in runs:
        v: dict[str, Any] = {"percent": c.TRANSFER[arm]}
        for key in keys:
            v[f"{key}_before"] = _seeds(runs, arm, lambda d, kk=key: c.before(d)["overall"][kk])
            v[f"{key}_after"] = _seeds(runs, arm, lambda d, kk=key: c.heldout(d)["overall"][kk])
        payload[arm] = v
        cells = " | ".join(
            f"{c.mean_sd(v[f'{key}_before'])} → {c.mean_sd(v[f'{key}_after'])}" for key in keys
        )
        lines.append(f"| {arm} ({c.TRANSFER[arm]} %) | {cells} |")
    fig, axes = c.figure(2, f"RL on a new context ({c.NEW_CONTEXT}) by its share in mid-training")
    names = [f"{c.TRANSFER[a]} %" for a in runs]
    xs = list(range(len(names)))
    for ax, key in zip(axes, ["strict_pass@1", f"strict_pass@{k}"], strict=True):
        for j, when in enumerate(("before", "after")):
            vals = [statistics.mean(payload[a][f"{key}_{when}"]) for a in runs]
            ax.bar([x + 0.4 * j - 0.2 for x in xs], vals, width=0.4, label=f"{when} RL")
        ax.set_xticks(xs, names)
        ax.set_xlabel(f"share of {c.NEW_CONTEXT} rows in mid-training")
        ax.set_ylabel(f"held-out {key} ({c.NEW_CONTEXT})")
        ax.legend(fontsize=7)
    c.save(fig, "transfer", docs)
    note = (
        f"Every arm: the shipped base (pre-trained on zoo only) mid-trained by `reasonrl sft` on "
        f"ops 2-6 with the given share of {c.NEW_CONTEXT} rows, then the quickstart's RL on "
        f"{c.NEW_CONTEXT} problems only; before/after = that arm's base / its RL policy on "
        f"held-out {c.NEW_CONTEXT} problems. Mean ± sd over seeds (the base is one per share)."
    )
    return "\n".join(lines) + "\n\n" + note, payload


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
    "process_vs_outcome": (("gstd_tok", "outcome"), process_vs_outcome),
    "mismatch": (("gstd_tok", "stale4", "stale4_tis"), mismatch),
    "clip_delta": (("rpp_outcome", "rpp_raw", "rpp_clip", "rpp_delta"), clip_delta),
    "interplay": (("rl_id", "rl_edge"), interplay),
    "transfer": (tuple(c.TRANSFER), transfer),
}
# Findings whose evaluation differs from the default (Budget's fields, set over the CLI's).
EVAL_OF: dict[str, dict[str, Any]] = {
    "interplay": {"eval_ops": INTERPLAY_OPS, "eval_samples": INTERPLAY_K},
}


def run_finding(name: str, args: Any, budget: c.Budget, arms: Sequence[str] | None = None) -> str:
    wanted, report = FINDINGS[name]
    budget = dataclasses.replace(budget, **EVAL_OF.get(name, {}))
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
