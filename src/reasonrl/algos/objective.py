"""The per-token training objective of one micro-batch: policy loss + KL penalty - entropy bonus,
with optional rollout/trainer importance weights. Pure: tensors and settings in, tensors out.

    loss[i, t] = policy_loss(logp, old, A, mask, is_weights)[i, t]
                 + kl_coef * KL_est(logp, ref)[i, t] - entropy_coef * H[i, t]

The caller reduces the (N, T) matrix with `aggregate.aggregate` and a global normaliser.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from reasonrl.algos.aggregate import masked_mean
from reasonrl.algos.correction import mismatch_metrics, rollout_is_weights
from reasonrl.algos.kl import kl_penalty
from reasonrl.algos.policy_loss import POLICY_LOSSES


def policy_objective(
    logp: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    loss: str,
    loss_kwargs: Mapping[str, Any],
    rollout_logprobs: Tensor | None = None,
    ref_logprobs: Tensor | None = None,
    entropy: Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    entropy_coef: float = 0.0,
    is_level: str = "none",
    is_mode: str = "truncate",
    is_high: float = 2.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """(N, T) loss matrix and metric tensors (prefixed `actor/` and `is/`).

    Args:
        logp: (N, T) log-probs of the response tokens under the current policy (with grad).
        old_logprobs: (N, T) the PPO ratio's denominator (behaviour policy as the trainer sees it).
        advantages: (N, T) per-token advantages; mask: (N, T) 1 on tokens that carry loss.
        loss, loss_kwargs: a `POLICY_LOSSES` key and its settings (`policy_loss.loss_kwargs`).
        rollout_logprobs: (N, T) the sampler's own log-probs, needed when `is_level != "none"`
            (rollout/trainer importance correction, `correction.rollout_is_weights`).
        ref_logprobs: (N, T) reference-model log-probs, needed when `kl_coef > 0`.
        entropy: (N, T) token entropy or None; logged, and subtracted when `entropy_coef > 0`.
        kl_coef, kl_estimator: KL-in-loss weight and estimator (`kl.kl_penalty`).
        is_level, is_mode, is_high: importance-correction settings ("none" = off).
    """
    metrics: dict[str, Tensor] = {}
    is_weights = None
    if is_level != "none":
        if rollout_logprobs is None:
            raise ValueError("importance correction needs rollout_logprobs")
        is_weights, is_metrics = rollout_is_weights(
            old_logprobs, rollout_logprobs, mask, level=is_level, mode=is_mode, high=is_high
        )
        metrics |= {f"is/{k}": v for k, v in is_metrics.items()}
    elif rollout_logprobs is not None:  # no correction: still show how far sampler and trainer are
        mismatch = mismatch_metrics(old_logprobs, rollout_logprobs, mask)
        metrics |= {f"is/{k}": v for k, v in mismatch.items()}
    loss_mat, loss_metrics = POLICY_LOSSES[loss](
        logp, old_logprobs, advantages, mask, is_weights=is_weights, **loss_kwargs
    )
    metrics |= {f"actor/{k}": v for k, v in loss_metrics.items()}
    if kl_coef > 0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs")
        kl = kl_penalty(logp, ref_logprobs, kind=kl_estimator)
        loss_mat = loss_mat + kl_coef * kl
        metrics["actor/kl_ref"] = masked_mean(kl, mask)
    if entropy is not None:
        metrics["actor/entropy"] = masked_mean(entropy, mask)
        if entropy_coef > 0:
            loss_mat = loss_mat - entropy_coef * entropy
    return loss_mat, metrics


__all__ = ["policy_objective"]
