"""Token-level advantage estimators: discounted returns (REINFORCE++) and GAE.

Re-exported from `reasonrl.algos.advantages`. Masks are loss masks: 1 on tokens the policy
generated, 0 on padding and on tokens an environment inserted (tool output). Masked tokens are
skipped, not treated as episode ends: the return/advantage flows through them unchanged, with no
discount step, so a tool call's credit reaches the tokens that made it.

Shapes: N sequences, T response tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor


def weighted_whiten(
    x: Tensor, weights: Tensor, *, unbiased: bool = True, eps: float = 1e-8, shift_mean: bool = True
) -> Tensor:
    """Whiten x with a weighted mean and variance: (x - mean_w) / sqrt(var_w + eps).

    With 0/1 weights this is masked whitening over the selected entries. The variance is
    Bessel-corrected by S/(S-1) with S = sum(weights) when `unbiased` (verl's masked_whiten).
    eps sits inside the square root (verl 1e-8). If shift_mean is False the mean is added back.

    Reference: REINFORCE++, arXiv 2501.03262 (batch-level advantage normalisation).

    Args:
        x: any shape.
        weights: same shape as x, non-negative (mask or token counts).
        unbiased: Bessel correction.
        eps: numerical floor inside the sqrt.
        shift_mean: subtract the mean (True) or keep it (False).

    Returns:
        Tensor of x's shape; entries with weight 0 are whitened too but carry no meaning.
    """
    w = weights.to(x.dtype)
    total = w.sum()
    mean = (x * w).sum() / total.clamp(min=1e-12)
    var = ((x - mean) ** 2 * w).sum() / total.clamp(min=1e-12)
    if unbiased:
        var = var * total / (total - 1).clamp(min=1e-12)
    out = (x - mean) * torch.rsqrt(var + eps)
    return out if shift_mean else out + mean


def _check_same(*pairs: tuple[str, Tensor]) -> None:
    shape = pairs[0][1].shape
    if len(shape) != 2:
        raise ValueError(f"{pairs[0][0]} must have shape (N, T), got {tuple(shape)}")
    for name, t in pairs[1:]:
        if t.shape != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")


def outcome_token_rewards(scores: Tensor, mask: Tensor) -> Tensor:
    """Sequence rewards as token rewards: r_t = score on the last valid token, 0 elsewhere.

    The outcome-reward convention of PPO-RLHF and REINFORCE++ (arXiv 2203.02155, 2501.03262;
    verl puts the score on the last response token too). A row with no valid token gets nothing.

    Args:
        scores: (N,) sequence rewards.
        mask: (N, T) loss mask.

    Returns:
        (N, T) float32 token rewards.
    """
    if scores.dim() != 1 or mask.dim() != 2 or scores.shape[0] != mask.shape[0]:
        raise ValueError(f"scores (N,) and mask (N, T) expected, got {tuple(scores.shape)}, "
                         f"{tuple(mask.shape)}")  # fmt: skip
    m = mask.to(torch.float32)
    cols = torch.arange(m.shape[1]).expand_as(m)
    last = torch.where(m > 0, cols, torch.full_like(cols, -1)).max(dim=1).values  # (N,)
    out = torch.zeros_like(m)
    has = last >= 0
    out[has, last[has]] = scores.to(torch.float32)[has]
    return out


@torch.no_grad()
def reinforce_pp_returns(token_rewards: Tensor, mask: Tensor, *, gamma: float = 1.0) -> Tensor:
    """Discounted reward-to-go over generated tokens: G_t = r_t + gamma * G_{t'}.

    t' is the next token with mask 1 (masked tokens are skipped: their rewards are ignored and
    they do not count as a discount step). Returns 0 on masked tokens.

    Reference: REINFORCE++, arXiv 2501.03262.

    Args:
        token_rewards: (N, T) per-token rewards (outcome reward on the last token, KL folded in).
        mask: (N, T) loss mask.
        gamma: discount factor (1.0 in LLM practice).

    Returns:
        (N, T) returns.
    """
    _check_same(("token_rewards", token_rewards), ("mask", mask))
    m = mask.to(torch.float32)
    r = token_rewards.to(torch.float32) * m
    returns = torch.zeros_like(r)
    running = torch.zeros_like(r[:, 0])
    for t in reversed(range(r.shape[1])):
        stepped = r[:, t] + gamma * running
        running = m[:, t] * stepped + (1 - m[:, t]) * running
        returns[:, t] = stepped * m[:, t]
    return returns


@torch.no_grad()
def reinforce_pp_advantages(
    token_rewards: Tensor,
    mask: Tensor,
    *,
    gamma: float = 1.0,
    std_unbiased: bool = True,
    eps: float = 1e-8,
) -> tuple[Tensor, Tensor]:
    """REINFORCE++ advantages: returns whitened over every valid token in the batch.

    A_t = (G_t - mean_batch(G)) / sqrt(var_batch(G) + eps), mean/var over tokens with mask 1.

    Reference: REINFORCE++, arXiv 2501.03262.

    Args:
        token_rewards: (N, T) per-token rewards.
        mask: (N, T) loss mask.
        gamma: discount factor.
        std_unbiased: Bessel-corrected variance (verl).
        eps: inside the sqrt (verl 1e-8).

    Returns:
        (advantages (N, T), returns (N, T)); advantages are 0 on masked tokens.
    """
    returns = reinforce_pp_returns(token_rewards, mask, gamma=gamma)
    m = mask.to(torch.float32)
    adv = weighted_whiten(returns, m, unbiased=std_unbiased, eps=eps) * m
    return adv, returns


@torch.no_grad()
def gae_advantages(
    token_rewards: Tensor,
    values: Tensor,
    mask: Tensor,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    whiten: bool = True,
    eps: float = 1e-8,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over generated tokens.

    delta_t = r_t + gamma V_{t'} - V_t;  A_t = delta_t + gamma lam A_{t'};  R_t = A_t + V_t,
    where t' is the next token with mask 1 (tool-output and padding tokens are skipped: no TD
    error, no discount step; V after the last valid token is 0). `whiten` standardises A over
    valid tokens (verl, TRL PPO); returns use the raw A.

    Reference: High-Dimensional Continuous Control Using GAE, arXiv 1506.02438.

    Args:
        token_rewards: (N, T) per-token rewards.
        values: (N, T) critic values V(s_t).
        mask: (N, T) loss mask.
        gamma: discount (LLM practice 1.0).
        lam: GAE lambda (0.95 common).
        whiten: standardise advantages over valid tokens.
        eps: inside the sqrt for whitening.

    Returns:
        (advantages (N, T), returns (N, T)), both 0 on masked tokens.
    """
    _check_same(("token_rewards", token_rewards), ("values", values), ("mask", mask))
    m = mask.to(torch.float32)
    r = token_rewards.to(torch.float32)
    v = values.to(torch.float32)
    adv = torch.zeros_like(r)
    next_value = torch.zeros_like(r[:, 0])
    next_adv = torch.zeros_like(r[:, 0])
    for t in reversed(range(r.shape[1])):
        delta = r[:, t] + gamma * next_value - v[:, t]
        a_t = delta + gamma * lam * next_adv
        keep = m[:, t]
        next_adv = keep * a_t + (1 - keep) * next_adv
        next_value = keep * v[:, t] + (1 - keep) * next_value
        adv[:, t] = a_t * keep
    returns = (adv + v) * m
    if whiten:
        adv = weighted_whiten(adv, m, eps=eps) * m
    return adv, returns
