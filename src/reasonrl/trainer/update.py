"""One optimizer step on a rollout batch: micro-batched loss with a global normaliser.

The normaliser is computed once from the whole batch, so accumulating gradients over micro-batches
gives exactly the gradient of the full batch (see `reasonrl.algos.aggregate`).
"""

from __future__ import annotations

import torch

from reasonrl.algos.aggregate import aggregate, global_normalizer
from reasonrl.algos.correction import rollout_is_weights
from reasonrl.algos.kl import kl_penalty
from reasonrl.algos.policy_loss import POLICY_LOSSES, loss_kwargs
from reasonrl.config import AlgoConfig, RLConfig
from reasonrl.trainer.batching import trim
from reasonrl.trainer.policy import autocast, response_logprobs
from reasonrl.types import Batch


def active_rows(batch: Batch, algo: AlgoConfig) -> torch.Tensor:
    """Rows that can contribute gradient.

    With no KL or entropy term, a sequence whose advantages are all zero has exactly zero loss for
    every loss except Kimi OMD (whose squared term does not vanish), so its forward and backward can
    be skipped while it still counts in the normaliser. On this task about half of all groups have
    zero reward spread (feasibility.md), so this halves the update time without changing the maths.
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


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def _loss_matrix(
    mb: Batch, logp: torch.Tensor, entropy: torch.Tensor | None, algo: AlgoConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if mb.old_logprobs is not None:
        old = mb.old_logprobs
    elif algo.old_logprobs == "rollout":
        old = mb.rollout_logprobs
    else:  # one epoch, weights unchanged since the rollout: recomputing == detaching
        old = logp.detach()
    metrics: dict[str, torch.Tensor] = {}
    is_weights = None
    if algo.is_level != "none":
        is_weights, is_metrics = rollout_is_weights(
            old, mb.rollout_logprobs, mb.response_mask,
            level=algo.is_level, mode=algo.is_mode, high=algo.is_high,
        )  # fmt: skip
        metrics |= {f"is/{k}": v for k, v in is_metrics.items()}
    kwargs = loss_kwargs(algo.loss, dict(algo))
    loss_fn = POLICY_LOSSES[algo.loss]
    loss_mat, loss_metrics = loss_fn(
        logp, old, mb.advantages, mb.response_mask, is_weights=is_weights, **kwargs
    )
    metrics |= {f"actor/{k}": v for k, v in loss_metrics.items()}
    if algo.kl_coef > 0:
        kl = kl_penalty(logp, mb.ref_logprobs, kind=algo.kl_estimator)
        loss_mat = loss_mat + algo.kl_coef * kl
        metrics["actor/kl_ref"] = _masked_mean(kl, mb.response_mask)
    if entropy is not None:
        metrics["actor/entropy"] = _masked_mean(entropy, mb.response_mask)
        if algo.entropy_coef > 0:
            loss_mat = loss_mat - algo.entropy_coef * entropy
    return loss_mat, metrics


def policy_update(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: Batch, cfg: RLConfig
) -> dict[str, float]:
    """Accumulate the loss over micro-batches, clip the gradient and take one optimizer step."""
    algo = cfg.algo
    const = algo.agg_const or float(cfg.rollout.max_new_tokens)
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
