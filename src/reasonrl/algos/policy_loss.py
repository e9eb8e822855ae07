"""Policy-gradient losses: per-token loss matrices plus metric tensors.

Every loss has the signature
    fn(logprobs, old_logprobs, advantages, mask, *, <its own kwargs>, is_weights=None)
        -> (loss (N, T), metrics: dict[str, Tensor])
and is *minimised*. Reduce the matrix with `aggregate.aggregate`. `is_weights` (N, T) are
rollout/trainer importance weights (`correction.rollout_is_weights`), applied as a constant
multiplier. Every loss reports the same metric keys (0 where a quantity does not apply):
clipfrac_low, clipfrac_high, clipfrac_dual, clipfrac (low + high), ppo_kl (mean of
log pi_old - log pi, verl's "ppo_kl"), approx_kl (k3 estimate of KL(pi_old || pi), cleanRL's),
ratio_mean, ratio_max (over valid tokens). Metrics carry no gradient.

Shapes: N sequences, T response tokens. logprobs: log pi_theta(y_t); old_logprobs: log pi_old(y_t)
(the trainer's own log-probs at rollout time); advantages: per token (broadcast sequence ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from reasonrl.algos.aggregate import masked_mean

LossOut = tuple[Tensor, dict[str, Tensor]]


def _check(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor) -> None:
    shape = logprobs.shape
    for name, t in (("old_logprobs", old_logprobs), ("advantages", advantages), ("mask", mask)):
        if t.shape != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, logprobs has {tuple(shape)}")


def _weighted(loss: Tensor, is_weights: Tensor | None) -> Tensor:
    return loss if is_weights is None else loss * is_weights.detach()


@torch.no_grad()
def _metrics(
    log_ratio: Tensor,
    mask: Tensor,
    low: Tensor | None = None,
    high: Tensor | None = None,
    dual: Tensor | None = None,
) -> dict[str, Tensor]:
    log_ratio = log_ratio.detach()
    ratio = torch.exp(log_ratio)
    valid = mask > 0
    zero = log_ratio.new_zeros(())

    def frac(flags: Tensor | None) -> Tensor:
        return zero if flags is None else masked_mean(flags.to(log_ratio.dtype), mask)

    clip_low, clip_high = frac(low), frac(high)
    return {
        "clipfrac_low": clip_low,
        "clipfrac_high": clip_high,
        "clipfrac_dual": frac(dual),
        "clipfrac": clip_low + clip_high,
        "ppo_kl": masked_mean(-log_ratio, mask),
        "approx_kl": masked_mean(torch.expm1(log_ratio) - log_ratio, mask),
        "ratio_mean": masked_mean(ratio, mask),
        "ratio_max": torch.where(valid, ratio, torch.zeros_like(ratio)).max(),
    }


def ppo_clip(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    log_ratio_clamp: float = 20.0,
    is_weights: Tensor | None = None,
) -> LossOut:
    """PPO clipped surrogate with decoupled (asymmetric) clipping and optional dual clip.

    r = exp(clamp(log pi - log pi_old, -log_ratio_clamp, log_ratio_clamp))
    l = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))
    dual clip c (A < 0 only): l = min(l, -A c), so a huge ratio cannot give an unbounded loss.
    Value -A at r = 1; gradient -A grad log pi there.

    Reference: PPO arXiv 1707.06347; clip-higher DAPO 2503.14476; dual clip arXiv 1912.09729.

    Args:
        logprobs, old_logprobs, advantages, mask: (N, T).
        clip_low: epsilon below 1 (0.2).
        clip_high: epsilon above 1 (0.2; DAPO 0.28).
        dual_clip: c > 1 or None (verl default 3.0; GRPO-TCR 10).
        log_ratio_clamp: overflow guard on the log-ratio (verl 20).
        is_weights: optional (N, T) rollout importance weights.

    Returns:
        (loss (N, T), metrics).
    """
    _check(logprobs, old_logprobs, advantages, mask)
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
    log_ratio = torch.clamp(logprobs - old_logprobs, -log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual = None
    if dual_clip is not None:
        bound = -advantages * dual_clip
        dual = (advantages < 0) & (loss > bound)
        loss = torch.where(advantages < 0, torch.minimum(loss, bound), loss)
    r = ratio.detach()
    low = (advantages < 0) & (r < 1.0 - clip_low)
    high = (advantages > 0) & (r > 1.0 + clip_high)
    return _weighted(loss, is_weights), _metrics(log_ratio, mask, low, high, dual)


def gspo(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 3e-4,
    clip_high: float = 4e-4,
    log_ratio_clamp: float = 10.0,
    is_weights: Tensor | None = None,
) -> LossOut:
    """GSPO: PPO clipping on the length-normalised sequence ratio (GSPO-token form).

    s_i = exp((1/|y_i|) sum_t (log pi - log pi_old));  s_{i,t} = sg[s_i] pi(y_t) / sg[pi(y_t)]
    l_{i,t} = max(-A s_{i,t}, -A clip(s_{i,t}, 1 - clip_low, 1 + clip_high)); log s clamped at
    log_ratio_clamp from above (verl 10). Aggregate with seq_mean_token_mean (paper).

    Reference: Group Sequence Policy Optimization, arXiv 2507.18071.

    Args:
        logprobs, old_logprobs, advantages, mask: (N, T).
        clip_low, clip_high: epsilons (paper Sec. 5.1: 3e-4, 4e-4).
        log_ratio_clamp: upper bound on log s_{i,t}.
        is_weights: optional (N, T) rollout importance weights.

    Returns:
        (loss (N, T), metrics); clip fractions are over tokens of clipped sequences.
    """
    _check(logprobs, old_logprobs, advantages, mask)
    m = mask.to(logprobs.dtype)
    token_lr = logprobs - old_logprobs
    seq_lr = (token_lr * m).sum(dim=-1) / m.sum(dim=-1).clamp(min=1)  # (N,)
    log_s = logprobs - logprobs.detach() + seq_lr.detach().unsqueeze(-1)
    s = torch.exp(torch.clamp(log_s, max=log_ratio_clamp))
    loss = torch.maximum(
        -advantages * s, -advantages * torch.clamp(s, 1.0 - clip_low, 1.0 + clip_high)
    )
    sd = s.detach()
    low = (advantages < 0) & (sd < 1.0 - clip_low)
    high = (advantages > 0) & (sd > 1.0 + clip_high)
    return _weighted(loss, is_weights), _metrics(token_lr, mask, low, high)


def cispo(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    log_ratio_clamp: float = 20.0,
    is_weights: Tensor | None = None,
) -> LossOut:
    """CISPO: REINFORCE weighted by a clipped, stop-gradient importance ratio.

    l = -sg[clip(r, 1 - clip_low, 1 + clip_high)] A log pi. Unlike PPO no token loses its
    gradient; the clip only bounds the weight. MiniMax-M1 sets no effective lower bound (a large
    clip_low); defaults here follow verl's shared clip_ratio (0.2/0.2).

    Reference: MiniMax-M1, arXiv 2506.13585, Eq. 4-5.

    Args:
        logprobs, old_logprobs, advantages, mask: (N, T).
        clip_low, clip_high: bounds of the IS weight.
        log_ratio_clamp: overflow guard on the log-ratio (verl 20).
        is_weights: optional (N, T) rollout importance weights.

    Returns:
        (loss (N, T), metrics); clipfrac_* count tokens whose weight was clipped.
    """
    _check(logprobs, old_logprobs, advantages, mask)
    log_ratio = torch.clamp(logprobs - old_logprobs, -log_ratio_clamp, log_ratio_clamp)
    r = torch.exp(log_ratio).detach()
    weight = torch.clamp(r, 1.0 - clip_low, 1.0 + clip_high)
    loss = -weight * advantages * logprobs
    return _weighted(loss, is_weights), _metrics(
        log_ratio, mask, r < 1.0 - clip_low, r > 1.0 + clip_high
    )


def kimi_omd(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    tau: float = 0.1,
    is_weights: Tensor | None = None,
) -> LossOut:
    """Kimi k1.5 online-mirror-descent surrogate (gradient form of the squared loss).

    Per sequence j, with x_j = sum_t (log pi - log pi_old) over valid tokens:
        l_j = -A_j x_j + (tau / 2) x_j^2,
    whose gradient is Eq. 3 of the paper. The matrix puts -A_t (log pi_t - log pi_old_t) on each
    token and spreads (tau/2) x_j^2 evenly over the sequence's n_j valid tokens, so a per-sequence
    token sum (token_sum / seq_mean_token_sum aggregation) recovers l_j exactly. Pair with
    `advantages.kimi_advantages` (A = r - mean r). tau is not disclosed; 0.1 is our choice.

    Reference: Kimi k1.5, arXiv 2501.12599, Sec. 2.3.2.

    Args:
        logprobs, old_logprobs, advantages, mask: (N, T).
        tau: KL-regularisation strength towards pi_old.
        is_weights: optional (N, T) rollout importance weights.

    Returns:
        (loss (N, T), metrics) with clip fractions 0.
    """
    _check(logprobs, old_logprobs, advantages, mask)
    m = mask.to(logprobs.dtype)
    token_lr = logprobs - old_logprobs
    seq_lr = (token_lr * m).sum(dim=-1, keepdim=True)
    n = m.sum(dim=-1, keepdim=True).clamp(min=1)
    loss = -advantages * token_lr + 0.5 * tau * seq_lr.square() / n
    return _weighted(loss, is_weights), _metrics(token_lr, mask)


def _reinforce(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_low: float | None,
    clip_high: float | None,
    log_ratio_clamp: float,
    is_weights: Tensor | None,
) -> LossOut:
    _check(logprobs, old_logprobs, advantages, mask)
    log_ratio = torch.clamp(logprobs - old_logprobs, -log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(log_ratio)
    r = ratio.detach()
    low = (advantages < 0) & (r < 1.0 - clip_low) if clip_low is not None else None
    high = (advantages > 0) & (r > 1.0 + clip_high) if clip_high is not None else None
    loss = -advantages * ratio
    for flags in (low, high):
        if flags is not None:
            loss = torch.where(flags, torch.zeros_like(loss), loss)
    return _weighted(loss, is_weights), _metrics(log_ratio, mask, low, high)


def reinforce(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    log_ratio_clamp: float = 20.0,
    is_weights: Tensor | None = None,
) -> LossOut:
    """Plain token-level REINFORCE surrogate: no clipping, no masking.

    l = -sg[w] r A with r = pi/pi_old (value -A, gradient -A grad log pi at r = 1) and w the
    optional rollout IS weight (`is_weights`). Every valid token keeps its gradient whatever the
    ratio; for MiniRL's trust-region masking use `minirl`.

    Reference: REINFORCE (Williams 1992); the ratio form is the on-policy surrogate whose gradient
    at pi = pi_old is the score-function gradient.

    Args:
        logprobs, old_logprobs, advantages, mask: (N, T).
        log_ratio_clamp: overflow guard on the log-ratio (verl 20); only a token with
            |log r| beyond it loses its gradient (the clamp is flat there).
        is_weights: optional (N, T) rollout importance weights.

    Returns:
        (loss (N, T), metrics) with clip fractions 0.
    """
    return _reinforce(
        logprobs, old_logprobs, advantages, mask, None, None, log_ratio_clamp, is_weights
    )


def minirl(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    log_ratio_clamp: float = 20.0,
    is_weights: Tensor | None = None,
) -> LossOut:
    """MiniRL: token-level REINFORCE with decoupled trust-region masking.

    l = -sg[w] r A as `reinforce`, but a token's loss (and gradient) is zeroed when A > 0 and
    r > 1 + clip_high, or A < 0 and r < 1 - clip_low (PPO's clip condition, applied as a mask:
    the token is dropped rather than clipped). w is the rollout IS weight pi_old/mu_old, which
    MiniRL uses (`is_weights`; the `minirl` preset turns it on).

    Reference: Stabilizing RL with LLMs (MiniRL), arXiv 2512.01374, Sec. 4.1; the paper's eps
    values are UNVERIFIED (defaults follow verl's shared clip_ratio 0.2/0.2).

    Args:
        logprobs, old_logprobs, advantages, mask: (N, T).
        clip_low, clip_high: staleness trust region (ratio band [1 - clip_low, 1 + clip_high]).
        log_ratio_clamp: overflow guard on the log-ratio (verl 20).
        is_weights: optional (N, T) rollout importance weights.

    Returns:
        (loss (N, T), metrics); clipfrac_low/high count the masked tokens.
    """
    return _reinforce(
        logprobs, old_logprobs, advantages, mask, clip_low, clip_high, log_ratio_clamp, is_weights
    )


POLICY_LOSSES: dict[str, Callable[..., LossOut]] = {
    "ppo_clip": ppo_clip,
    "gspo": gspo,
    "cispo": cispo,
    "kimi_omd": kimi_omd,
    "reinforce": reinforce,
    "minirl": minirl,
}

# Config fields each loss reads; the kwarg names equal the config field names.
LOSS_KWARGS: dict[str, tuple[str, ...]] = {
    "ppo_clip": ("clip_low", "clip_high", "dual_clip"),
    "gspo": ("clip_low", "clip_high"),
    "cispo": ("clip_low", "clip_high"),
    "kimi_omd": ("tau",),
    "reinforce": (),
    "minirl": ("clip_low", "clip_high"),
}


def loss_kwargs(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Pick LOSS_KWARGS[name] out of a flat settings mapping (missing fields keep defaults)."""
    if name not in LOSS_KWARGS:
        raise KeyError(f"unknown policy loss {name!r}; choose from {sorted(POLICY_LOSSES)}")
    return {f: settings[f] for f in LOSS_KWARGS[name] if f in settings}
