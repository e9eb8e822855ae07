"""What a run prints: the opening banner and the short stats of each step (docs/metrics.md
defines every label).

The banner comes in two parts: `banner_head` before anything loads (so the first line of output
names the run at once) and `banner_body` once the model is built (parameters, device, dtype).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reasonrl.config import RLConfig
from reasonrl.runtime.precision import dtype_name

if TYPE_CHECKING:
    from reasonrl.rl.state import TrainState

# (label, metric key, format) of a step's stats, in order; absent keys are left out.
STEP_STATS = (
    ("reward", "reward/mean", ".3f"),
    ("strict", "reward/verified_correct", ".3f"),
    ("pass", "reward/outcome", ".3f"),
    ("loss", "actor/loss", ".4f"),
    ("kl", "actor/kl_ref", ".4f"),
    ("entropy", "actor/entropy", ".3f"),
)


def step_stats(metrics: Mapping[str, float]) -> str:
    """`reward 0.412 | strict 0.100 | pass 0.300 | loss -0.031 | kl 0.0012 | entropy 2.31 |
    1,234 tok/s`, plus the held-out `eval pass@1` / `eval strict` when the step was evaluated."""
    parts = []
    for label, key, fmt in STEP_STATS:
        value = metrics.get(key)
        if value is None and key == "reward/mean":
            value = float("nan")  # reward is always shown
        if value is None and key == "actor/kl_ref":
            value = metrics.get("rollout/kl_ref")  # kl_in=reward: measured on the rollout
        if value is not None:
            parts.append(f"{label} {value:{fmt}}")
    parts.append(f"{metrics.get('perf/gen_tokens_per_s', 0.0):,.0f} tok/s")
    for label, key in (("eval pass@1", "eval/pass@1"), ("eval strict", "eval/strict_pass@1")):
        if isinstance(metrics.get(key), float) and math.isfinite(metrics[key]):
            parts.append(f"{label} {metrics[key]:.3f}")
    return " | ".join(parts)


def _algo(cfg: RLConfig) -> str:
    a = cfg.algo
    if a.kind == "es":  # EGGROLL (reasonrl.es): no advantage, loss or KL
        e = cfg.es
        return (f"es ({e.noise} rank {e.rank}, population {e.population}, sigma {e.sigma:g}, "
                f"{e.shaping} fitness)")  # fmt: skip
    name = a.preset or "custom"
    kl = f"kl_coef {a.kl_coef:g} in {a.kl_in}" if a.kl_coef > 0 else "no KL"
    return f"{name} (advantage {a.advantage}, loss {a.loss}, {kl})"


def _budget(cfg: RLConfig) -> str:
    t = cfg.trainer
    steps = f"{t.steps} steps"
    return steps if t.time_budget_s is None else f"{steps} or {t.time_budget_s:g} s"


def banner_head(cfg: RLConfig) -> str:
    """`reasonrl train: run runs/x | model PATH | algo grpo (...) | 100 steps`."""
    return (
        f"reasonrl train: run {cfg.run_dir} | model {cfg.model.path} | algo {_algo(cfg)} | "
        f"{_budget(cfg)}"
    )


def banner_body(
    state: TrainState, resumed: Path | None = None, *, custom_reward: bool = False
) -> list[str]:
    """The banner's lines once the model is built: parameters, engine, device, dtype, batch;
    `resumed from step N (checkpoint)` when `resumed` names the checkpoint. `custom_reward`:
    the reward is a Python function passed to `train` (named instead of `reward.kind`)."""
    cfg = state.cfg
    fn = state.reward_fn
    reward = getattr(fn, "__qualname__", type(fn).__name__) if custom_reward else cfg.reward.kind
    params = f"{sum(p.numel() for p in state.model.parameters()):,} parameters"
    arch = type(state.model).__name__
    if cfg.model.lora is not None:  # the model under the peft wrapper, and how much trains
        arch = type(getattr(state.model, "get_base_model", lambda: state.model)()).__name__
        trainable = sum(p.numel() for p in state.model.parameters() if p.requires_grad)
        params += f" ({trainable:,} trainable: LoRA r={cfg.model.lora.r})"
    compute = dtype_name(cfg.model.dtype, cfg.model.device)
    r = cfg.rollout
    engine = state.engine_name or r.engine
    per_prompt = r.n if cfg.algo.kind == "pg" else cfg.es.population * cfg.es.samples
    if r.engine == "auto" and state.engine_name:
        engine += " (auto)"  # what auto chose, so a log says which engine sampled
    lines = [
        f"model {arch}, {params} | engine {engine} | device {cfg.model.device}, "
        f"{compute} compute (fp32 master weights) | {r.prompts_per_step} prompts x {per_prompt} "
        f"samples per step, up to {r.max_new_tokens} new tokens | reward {reward}"
        + ("" if state.critic is None else " | critic on")
    ]
    if resumed is not None:
        lines.append(f"resumed from step {state.step} ({resumed})")
    return lines
