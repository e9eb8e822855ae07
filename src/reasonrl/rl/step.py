"""The RL training loop. `train_step` is the whole algorithm on one screen:

    rollout (+ dynamic sampling) -> shaping -> old / ref log-probs, values -> advantages
    -> critic update -> policy update (ppo_epochs) -> KL controller -> weight sync

Every formula lives in `reasonrl.algos` (one hop away, or two through `rl.advantage`);
everything here is orchestration. Metrics of a multi-epoch update: `actor/*` is the mean over
epochs and `actor/epoch{k}/*` (k = 1..ppo_epochs) each epoch's own values.
"""

from __future__ import annotations

import math

import torch

from reasonrl.algos.aggregate import masked_row_mean
from reasonrl.algos.kl import kl_penalty
from reasonrl.algos.shaping import overlong_filter_mask
from reasonrl.dist.fsdp import gather_into
from reasonrl.models.lora import engine_weights
from reasonrl.rl.advantage import compute_advantages, shaped_scores
from reasonrl.rl.batching import collate
from reasonrl.rl.dense import step_dense_rewards
from reasonrl.rl.drirl import drirl_alpha
from reasonrl.rl.logprobs import batch_logprobs
from reasonrl.rl.repexp import repexp_scores
from reasonrl.rl.rollouts import Groups, greedy_baseline, sample_groups
from reasonrl.rl.shared_prefix import use_shared_prefix
from reasonrl.rl.state import TrainState, sampling_params
from reasonrl.rl.update import policy_update
from reasonrl.rl.versions import loss_mask
from reasonrl.runtime.metrics import reduce_metrics
from reasonrl.runtime.schedule import advance
from reasonrl.runtime.timing import Timer
from reasonrl.types import Batch


def train_step(state: TrainState) -> tuple[dict[str, float], Groups]:
    """One RL step; returns its metrics and the scored groups it trained on."""
    cfg, algo, timer = state.cfg, state.cfg.algo, Timer()
    params = sampling_params(cfg, state.step)
    with timer("rollout"):  # B prompts x G; with dynamic sampling only informative groups
        if state.rollouts is None:  # synchronous: sampled here, with the current weights
            groups = sample_groups(state, params, timer)
        else:  # rollout.max_staleness / partial_token_budget (rl/async_rollouts.py)
            groups = state.rollouts.next(state, params, timer)
        if algo.advantage == "remax":  # ReMax: a greedy completion's reward is the baseline
            groups.greedy_scores = greedy_baseline(state, groups, params)
    _call_optional(state.engine, "sleep")  # vLLM: free its GPU memory for the update
    scores = shaped_scores(groups, cfg, step=state.step)  # (B, G): overlong / length shaping
    zeros = torch.zeros(scores.numel())  # advantages are filled in below
    batch = collate(groups.flat_prompt_ids(), groups.flat_completions(), zeros,
                    pad_id=state.tokenizer.pad_token_id,
                    loss_mask=groups.flat_loss_masks())  # fmt: skip  # 0 on env observations
    keep = groups.applicable().reshape(-1).float()  # a not-applicable reward teaches nothing
    if algo.overlong_filter:  # DAPO: truncated samples carry no loss
        keep = keep * overlong_filter_mask(groups.truncated())
    keep = keep[:, None] * loss_mask(groups, batch.response_mask.shape[1])  # partial: old segments
    batch = batch.with_fields(response_mask=batch.response_mask * keep)
    scores, repexp_metrics = repexp_scores(state, groups, batch, scores, timer)  # RepExp bonus
    lp = {"micro_batch_size": algo.micro_batch_size, "temperature": cfg.rollout.temperature,
          "dtype": cfg.model.dtype}  # fmt: skip
    with timer("logprobs"):  # before any weight changes: the PPO ratio's denominator and pi_ref
        if state.ref_model is not None:
            shared = use_shared_prefix(algo.shared_prefix, state.ref_model,
                                       group_size=cfg.rollout.n)  # fmt: skip
            ref_lp = batch_logprobs(state.ref_model, batch, **lp, shared_prefix=shared)
            batch = batch.with_fields(ref_logprobs=ref_lp)
        if algo.ppo_epochs > 1 or algo.kl_in == "reward":
            shared = use_shared_prefix(algo.shared_prefix, state.model, group_size=cfg.rollout.n)
            old_lp = batch_logprobs(state.model, batch, **lp, shared_prefix=shared)
            batch = batch.with_fields(old_logprobs=old_lp)
        values = state.critic.values(batch) if state.critic is not None else None
    kl = None
    if algo.kl_in == "reward" and batch.ref_logprobs is not None:
        kl = kl_penalty(batch.old_logprobs, batch.ref_logprobs, kind=algo.kl_estimator)
    dense, dense_metrics = step_dense_rewards(groups, cfg, state.tokenizer, batch.response_mask)
    every, greedy, rows = scores, groups.greedy_scores, None
    alpha, drirl_metrics = drirl_alpha(groups, scores, cfg) if algo.drirl else (None, {})
    if state.dp is not None:  # data parallel: the advantage sees every rank's groups
        every, rows = state.dp.gather_rows(scores)
        greedy = None if greedy is None else state.dp.gather_rows(greedy)[0]
        alpha = None if alpha is None else state.dp.gather_rows(alpha)[0]  # per-rank buckets
    advantages, returns = compute_advantages(
        cfg, every, batch.response_mask, values=values, kl=kl, kl_coef=state.kl_ctl.value,
        greedy_scores=greedy, dense=dense, rows=rows, scale=alpha,
    )  # fmt: skip
    batch = batch.with_fields(advantages=advantages)
    groups.advantages = masked_row_mean(advantages, batch.response_mask)  # for samples.jsonl
    metrics: dict[str, float] = dict(dense_metrics) | repexp_metrics  # reward/dense_*, repexp
    metrics |= drirl_metrics  # drirl/alpha_* (algo.drirl)
    with timer("update"):
        if state.critic is not None:
            assert returns is not None and values is not None
            metrics |= state.critic.update(batch, returns, values, epochs=algo.ppo_epochs,
                                           mini_batches=cfg.critic.mini_batches)  # fmt: skip
        if state.step >= cfg.critic.warmup_steps or state.critic is None:
            kl_coef = state.kl_ctl.value
            epochs = [policy_update(state.trained, state.optimizer, batch, cfg, kl_coef=kl_coef,
                                    dp=state.dp)
                      for _ in range(algo.ppo_epochs)]  # fmt: skip
            metrics |= _epoch_metrics(epochs)
        advance(state.scheduler)  # steps count RL steps, skipped updates included
    step_kl = _kl_metric(kl, batch, metrics)
    if kl is not None and step_kl is not None:  # kl_in=reward: no actor/kl_ref to show it
        metrics["rollout/kl_ref"] = step_kl
    if step_kl is not None:
        state.kl_ctl.update(step_kl, n_steps=batch.input_ids.shape[0])
        metrics["actor/kl_coef"] = state.kl_ctl.value
    with timer("sync"):
        if state.shard is not None:  # FSDP2: the full copy gets the updated shards
            gather_into(state.shard, state.model)
        _call_optional(state.engine, "wake_up")  # vLLM: weights back on the GPU, then synced
        sync_weights(state)
    state.step += 1
    metrics |= groups.metrics() | timer.metrics()
    source_metrics = getattr(state.source, "metrics", None)  # data/op{k}_frac, reward/op{k}
    metrics |= source_metrics() if callable(source_metrics) else {}
    metrics["reward/shaped"] = float(scores.mean())
    valid = batch.response_mask > 0
    metrics["adv/mean"] = float(advantages[valid].mean()) if valid.any() else 0.0
    metrics["adv/abs_mean"] = float(advantages[valid].abs().mean()) if valid.any() else 0.0
    metrics["actor/lr"] = state.scheduler.get_last_lr()[0]
    metrics["perf/gen_tokens_per_s"] = groups.gen_tokens / max(timer.seconds("generate"), 1e-9)
    metrics["perf/step_s"] = timer.total()
    if state.dp is not None:  # one row for the step: the mean over ranks (dist.parallel)
        metrics = state.dp.mean_metrics(metrics)
    return metrics, groups


def sync_weights(state: TrainState) -> None:
    """Give the engine the policy's current weights: the model's own parameters (a no-op for an
    engine sharing them), or with LoRA the base weights with the adapter merged."""
    state.engine.load_weights(engine_weights(state.model))


def _call_optional(engine: object, method: str) -> None:
    """Call `engine.method()` where the engine has it (sleep/wake_up are vLLM's, not the
    protocol's: the local engines have no memory to give back)."""
    fn = getattr(engine, method, None)
    if callable(fn):
        fn()


def _epoch_metrics(epochs: list[dict[str, float]]) -> dict[str, float]:
    """`actor/*` = mean over epochs; with several epochs also `actor/epoch{k}/*` (1-based)."""
    out = reduce_metrics(epochs)
    if len(epochs) > 1:
        for k, m in enumerate(epochs, start=1):
            out |= {
                f"actor/epoch{k}/{key.removeprefix('actor/')}": v
                for key, v in m.items()
                if key.startswith("actor/")  # is/* etc. stay the mean over epochs
            }
    return out


def _kl_metric(kl: torch.Tensor | None, batch: Batch, metrics: dict[str, float]) -> float | None:
    """The step's KL to the reference (token mean): what the adaptive controller tracks; None
    when there is none or it is not finite (a skipped non-finite step must not poison the
    controller's coefficient)."""
    if kl is not None:  # kl_in=reward: measured on the rollout, mean of sequence means (verl)
        rows = batch.response_mask.sum(dim=1) > 0
        per_seq = masked_row_mean(kl, batch.response_mask)[rows]
        value: float | None = float(per_seq.mean()) if rows.any() else 0.0
    else:  # kl_in=loss: the token-mean KL of the first epoch, i.e. of the policy that sampled
        value = metrics.get("actor/epoch1/kl_ref", metrics.get("actor/kl_ref"))
    return value if value is not None and math.isfinite(value) else None
