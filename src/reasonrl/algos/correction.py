"""Rollout/trainer importance correction: weights pi_old / mu_old and rejection masks.

The rollout engine (vLLM, another dtype, other kernels) samples from mu_old, while the trainer
scores the same tokens as pi_old. The true objective needs pi_theta / mu_old =
(pi_old / mu_old) x (pi_theta / pi_old); the policy losses handle the second factor, these
functions the first. Token level: w_t = pi_old(y_t) / mu_old(y_t). Sequence level: every token of
sequence i gets prod_t w_t = exp(sum_t log w_t). Weights are truncated (TIS) or out-of-range
tokens/sequences are masked. All outputs carry no gradient.

Reference: Stabilizing RL with LLMs, arXiv 2512.01374 (Eq. 8); truncated IS (TIS) as in verl.

Shapes: N sequences, T response tokens.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from reasonrl.algos.aggregate import masked_mean

# exp() overflow guard on (summed) log-ratios; exp(20) = 4.9e8 is far beyond any threshold used.
_LOG_CLAMP = 20.0


def _log_ratios(old_logprobs: Tensor, rollout_logprobs: Tensor, mask: Tensor) -> Tensor:
    if old_logprobs.shape != rollout_logprobs.shape or old_logprobs.shape != mask.shape:
        raise ValueError(
            "old_logprobs, rollout_logprobs and mask must share a shape, got "
            f"{tuple(old_logprobs.shape)}, {tuple(rollout_logprobs.shape)}, {tuple(mask.shape)}"
        )
    m = mask.to(torch.float32)
    diff = old_logprobs.detach().float() - rollout_logprobs.detach().float()
    return torch.where(m > 0, diff, torch.zeros_like(diff))


@torch.no_grad()
def mismatch_metrics(
    old_logprobs: Tensor, rollout_logprobs: Tensor, mask: Tensor
) -> dict[str, Tensor]:
    """How far the sampler's log-probs are from the trainer's, on the loss tokens.

    mismatch_k1 = mean_t (log mu_old - log pi_old), mismatch_k3 = mean_t (r - 1 - log r) with
    r = pi_old / mu_old: the rollout tokens come from mu_old, so both estimate KL(mu_old || pi_old)
    (Schulman's k1/k3, as in arXiv 2512.01374); mismatch_max_abs = max_t |log pi_old - log mu_old|.
    """
    m = mask.to(torch.float32)
    lr = _log_ratios(old_logprobs, rollout_logprobs, mask)
    return {
        "mismatch_k1": masked_mean(-lr, m),
        "mismatch_k3": masked_mean(torch.expm1(lr) - lr, m),
        "mismatch_max_abs": lr.abs().max() if lr.numel() else lr.new_zeros(()),
    }


@torch.no_grad()
def rollout_is_weights(
    old_logprobs: Tensor,
    rollout_logprobs: Tensor,
    mask: Tensor,
    *,
    level: Literal["token", "sequence"] = "token",
    mode: Literal["truncate", "mask"] = "truncate",
    low: float | None = None,
    high: float = 2.0,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Importance weights pi_old / mu_old, truncated to [low, high] or masked outside it.

    token:    w_{i,t} = exp(log pi_old(y_t) - log mu_old(y_t))
    sequence: w_{i,t} = exp(sum_s (log pi_old(y_s) - log mu_old(y_s)))   (same for all t)
    truncate: w <- clamp(w, low, high) (TIS: low=None, high=C);
    mask:     w <- w if low <= w <= high else 0.
    low=None means no lower bound in both modes. Weights are exactly 1 where the log-probs agree.

    Reference: arXiv 2512.01374; verl TIS (`tis_imp_ratio_cap`).

    Args:
        old_logprobs: (N, T) trainer log-probs of the sampled tokens (pi_old).
        rollout_logprobs: (N, T) sampler log-probs (mu_old).
        mask: (N, T) loss mask.
        level: "token" | "sequence".
        mode: "truncate" | "mask".
        low: lower threshold or None.
        high: upper threshold (2.0 common in recipes).

    Returns:
        (weights (N, T), 0 on masked tokens; metrics: is_mean / is_max / is_min of the raw
        weights, is_frac_clipped (tokens changed by truncation or masking), mismatch_k1 /
        mismatch_k3 (KL(mu_old || pi_old) estimates per token)).
    """
    if level not in ("token", "sequence"):
        raise ValueError(f"level must be 'token' or 'sequence', got {level!r}")
    if mode not in ("truncate", "mask"):
        raise ValueError(f"mode must be 'truncate' or 'mask', got {mode!r}")
    m = mask.to(torch.float32)
    log_w = _log_ratios(old_logprobs, rollout_logprobs, mask)
    if level == "sequence":
        log_w = (log_w * m).sum(dim=-1, keepdim=True).expand_as(log_w)
    raw = torch.exp(torch.clamp(log_w, -_LOG_CLAMP, _LOG_CLAMP))
    lo = 0.0 if low is None else low
    if mode == "truncate":
        weights = torch.clamp(raw, min=lo, max=high)
    else:
        weights = torch.where((raw >= lo) & (raw <= high), raw, torch.zeros_like(raw))
    weights = weights * m
    valid = m > 0
    metrics = {
        "is_mean": masked_mean(raw, m),
        "is_max": torch.where(valid, raw, torch.zeros_like(raw)).max(),
        "is_min": torch.where(valid, raw, torch.full_like(raw, 1e30)).amin(),
        "is_frac_clipped": masked_mean((weights != raw).float(), m),
    } | mismatch_metrics(old_logprobs, rollout_logprobs, mask)
    return weights, metrics


@torch.no_grad()
def rejection_mask(
    old_logprobs: Tensor,
    rollout_logprobs: Tensor,
    mask: Tensor,
    *,
    level: Literal["token", "sequence", "geometric"] = "geometric",
    low: float | None = None,
    high: float = 2.0,
    token_veto: float | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Reject tokens or whole sequences whose pi_old/mu_old statistic leaves [low, high].

    Statistic per level: token: w_t = exp(log-ratio_t) (drop the token); sequence:
    exp(sum_t log-ratio_t); geometric: exp(mean_t log-ratio_t) (drop the whole sequence).
    token_veto additionally drops a sequence if any of its token ratios is below token_veto.
    low=None means 1/high (a band symmetric in log space).

    Reference: arXiv 2512.01374 (mismatch diagnostics); verl rollout rejection sampling.

    Args:
        old_logprobs, rollout_logprobs, mask: (N, T).
        level: "token" | "sequence" | "geometric".
        low, high: acceptance band on the statistic.
        token_veto: per-token ratio floor that vetoes a sequence, or None.

    Returns:
        (keep (N, T) float 0/1, already multiplied by mask; metrics: frac_rejected_tokens,
        frac_rejected_seqs).
    """
    if level not in ("token", "sequence", "geometric"):
        raise ValueError(f"level must be 'token', 'sequence' or 'geometric', got {level!r}")
    m = mask.to(torch.float32)
    lr = _log_ratios(old_logprobs, rollout_logprobs, mask)
    lo = 1.0 / high if low is None else low
    if level == "token":
        stat = lr
    else:
        total = (lr * m).sum(dim=-1, keepdim=True)
        if level == "geometric":
            total = total / m.sum(dim=-1, keepdim=True).clamp(min=1)
        stat = total.expand_as(lr)
    ratio = torch.exp(torch.clamp(stat, -_LOG_CLAMP, _LOG_CLAMP))
    keep = (ratio >= lo) & (ratio <= high)
    if token_veto is not None:
        vetoed = ((torch.exp(lr) < token_veto) & (m > 0)).any(dim=-1, keepdim=True)
        keep = keep & ~vetoed
    keep_f = keep.float() * m
    has_tokens = m.sum(dim=-1) > 0
    seq_rejected = ((m - keep_f).sum(dim=-1) > 0) & has_tokens
    metrics = {
        "frac_rejected_tokens": masked_mean(m - keep_f, m),
        "frac_rejected_seqs": seq_rejected.float().sum() / has_tokens.float().sum().clamp(min=1),
    }
    return keep_f, metrics
