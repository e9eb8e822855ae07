"""The RL training loop. `train_step` is the whole algorithm on one screen:

    prompts -> rollout -> rewards -> advantages -> (old / ref log-probs) -> update -> weight sync

Every formula lives in `reasonrl.algos` (one hop away); everything here is orchestration.
"""

from __future__ import annotations

import torch

from reasonrl.algos.advantages import ADVANTAGES, advantage_kwargs
from reasonrl.algos.shaping import overlong_filter_mask
from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rl.rollouts import Groups, sample_groups
from reasonrl.rl.state import TrainState, sampling_params
from reasonrl.rl.update import policy_update
from reasonrl.runtime.precision import autocast
from reasonrl.runtime.timing import Timer


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
        keep = overlong_filter_mask(groups.truncated())
        batch = batch.with_fields(response_mask=batch.response_mask * keep[:, None])
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
