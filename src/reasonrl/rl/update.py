"""One optimizer step on a rollout batch: micro-batched loss with a global normaliser.

The normaliser is computed once from the whole batch, so accumulating gradients over micro-batches
gives exactly the gradient of the full batch (see `reasonrl.algos.aggregate`).
"""

from __future__ import annotations

import torch

from reasonrl.algos.aggregate import aggregate, global_normalizer
from reasonrl.algos.objective import policy_objective
from reasonrl.algos.policy_loss import loss_kwargs
from reasonrl.config import AlgoConfig, RLConfig
from reasonrl.rl.batching import trim
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.runtime.precision import autocast
from reasonrl.types import Batch


def active_rows(batch: Batch, algo: AlgoConfig) -> torch.Tensor:
    """Rows that can contribute gradient.

    With no KL or entropy term, a sequence whose advantages are all zero has exactly zero loss for
    every loss except Kimi OMD (whose squared term does not vanish), so its forward and backward can
    be skipped while it still counts in the normaliser. On this task about half of all groups have
    zero reward spread (rollout/zero_std_frac in the quickstart runs, benchmarks/README.md), so this
    halves the update time without changing the maths.
    """
    every = torch.arange(batch.input_ids.shape[0])
    if algo.kl_coef > 0 or algo.entropy_coef > 0 or algo.loss == "kimi_omd":
        return every
    return every[(batch.advantages != 0).any(dim=1)]


def _micro_batches(batch: Batch, rows: torch.Tensor, size: int) -> list[torch.Tensor]:
    # Sort by length so each micro-batch pads only to its own longest sequence.
    lengths = batch.attention_mask[rows].sum(dim=1)
    ordered = rows[torch.argsort(lengths, stable=True)]
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _loss_matrix(
    mb: Batch, logp: torch.Tensor, entropy: torch.Tensor | None, algo: AlgoConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if mb.old_logprobs is not None:
        old = mb.old_logprobs
    elif algo.old_logprobs == "rollout":
        old = mb.rollout_logprobs
    else:  # one epoch, weights unchanged since the rollout: recomputing == detaching
        old = logp.detach()
    return policy_objective(
        logp, old, mb.advantages, mb.response_mask,
        loss=algo.loss, loss_kwargs=loss_kwargs(algo.loss, dict(algo)),
        rollout_logprobs=mb.rollout_logprobs, ref_logprobs=mb.ref_logprobs, entropy=entropy,
        kl_coef=algo.kl_coef, kl_estimator=algo.kl_estimator, entropy_coef=algo.entropy_coef,
        is_level=algo.is_level, is_mode=algo.is_mode, is_high=algo.is_high,
    )  # fmt: skip


def policy_update(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, cfg: RLConfig
) -> dict[str, float]:
    """Accumulate the loss over micro-batches, clip the gradient and take one optimizer step."""
    algo = cfg.algo
    const = algo.agg_const  # set by the config for seq_mean_token_sum_norm, unused otherwise
    norm = global_normalizer(batch.response_mask, algo.agg, const=const)
    rows = active_rows(batch, algo)
    out: dict[str, float] = {"actor/active_frac": len(rows) / batch.input_ids.shape[0]}
    if len(rows) == 0:  # nothing to learn from: an Adam step on zero gradient would still move
        out["actor/skipped_step"] = 1.0
        return out
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    chunks = _micro_batches(batch, rows, algo.micro_batch_size)
    entropy_mode = "loss" if algo.entropy_coef > 0 else "metric"
    for idx in chunks:
        mb = trim(batch.select(idx))
        with autocast(cfg.model.dtype):
            logp, entropy = response_logprobs(
                model, mb, temperature=cfg.rollout.temperature, entropy=entropy_mode
            )
        loss_mat, metrics = _loss_matrix(mb, logp, entropy, algo)
        loss = aggregate(loss_mat, mb.response_mask, algo.agg, normalizer=norm, const=const)
        loss.backward()
        metrics["actor/loss"] = loss.detach()
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
    max_norm = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimizer.step()
    out |= {k: v / len(chunks) for k, v in sums.items()}
    out["actor/loss"] = sums["actor/loss"]  # micro-batch losses add up to the batch loss
    out["actor/grad_norm"] = float(grad_norm)
    return out
