"""The RL training loop. `train_step` is the whole algorithm on one screen:

    prompts -> rollout -> rewards -> advantages -> (old / ref log-probs) -> update -> weight sync

Every formula lives in `reasonrl.algos` (one hop away); everything here is orchestration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from reasonrl.algos.advantages import ADVANTAGES, advantage_kwargs
from reasonrl.config import RLConfig
from reasonrl.rollout.base import RolloutEngine, SamplingParams
from reasonrl.trainer.batching import collate
from reasonrl.trainer.policy import autocast, response_logprobs
from reasonrl.trainer.rollouts import Groups, sample_groups
from reasonrl.trainer.timing import Timer
from reasonrl.trainer.update import policy_update


@dataclass
class TrainState:
    """Everything a step touches; `step` counts completed optimizer steps."""

    cfg: RLConfig
    model: torch.nn.Module
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    engine: RolloutEngine
    source: Any  # reasonrl.data.samplers.PromptSource
    reward_fn: Callable
    ref_model: torch.nn.Module | None = None
    step: int = 0
    history: dict[str, Any] = field(default_factory=dict)


def sampling_params(cfg: RLConfig, step: int) -> SamplingParams:
    """Sampling settings of step `step`; the seed depends only on (run seed, step), so a resumed
    run samples exactly what the uninterrupted run did."""
    r = cfg.rollout
    return SamplingParams(
        seed=cfg.trainer.seed * 1_000_003 + step,
        n=r.n,
        max_new_tokens=r.max_new_tokens,
        temperature=r.temperature,
        top_p=r.top_p,
        top_k=r.top_k,
    )


def train_step(state: TrainState) -> dict[str, float]:
    """One RL step: sample, score, compute advantages, update the policy, sync the engine."""
    cfg, algo, timer = state.cfg, state.cfg.algo, Timer()
    with timer("rollout"):
        groups: Groups = sample_groups(
            state, sampling_params(cfg, state.step), timer
        )  # B prompts x G
    adv_fn = ADVANTAGES[algo.advantage]
    advantages = adv_fn(groups.scores, **advantage_kwargs(algo.advantage, dict(algo)))  # (B, G)
    batch = collate(
        groups.flat_prompt_ids(),
        groups.flat_completions(),
        advantages.reshape(-1),
        pad_id=state.tokenizer.pad_token_id,
    )
    if algo.overlong_filter:  # DAPO: truncated samples carry no loss
        batch = batch.with_fields(
            response_mask=batch.response_mask * groups.not_truncated()[:, None]
        )
    with timer("ref_logprobs"), torch.no_grad(), autocast(cfg.model.dtype):
        if state.ref_model is not None:
            ref, _ = response_logprobs(state.ref_model, batch, temperature=cfg.rollout.temperature)
            batch = batch.with_fields(ref_logprobs=ref)
    with timer("update"):
        actor_metrics = [
            policy_update(state.model, state.optimizer, batch, cfg) for _ in range(algo.ppo_epochs)
        ]
        state.scheduler.step()  # steps count RL steps, skipped updates included
    with timer("sync"):
        state.engine.load_weights(state.model.named_parameters())
    state.step += 1
    state.history["last_groups"] = groups
    metrics = groups.metrics() | actor_metrics[-1] | timer.metrics()
    metrics["adv/mean"] = float(advantages.mean())
    metrics["adv/abs_mean"] = float(advantages.abs().mean())
    metrics["actor/lr"] = state.scheduler.get_last_lr()[0]
    metrics["perf/gen_tokens_per_s"] = groups.gen_tokens / max(timer.seconds("generate"), 1e-9)
    metrics["perf/step_s"] = timer.total()
    return metrics


def train_main(cfg: RLConfig, *, resume: bool = False) -> int:
    """`reasonrl train` entry point (the run orchestration lives in trainer/run.py)."""
    from reasonrl.trainer.run import train_main as run_main

    return run_main(cfg, resume=resume)
