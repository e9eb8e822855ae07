"""Dense per-step rewards and their Clip / Delta refinements (arXiv 2410.15115).

A process reward gives each reasoning step k of a response a score r_k in [0, 1]. Added to the
return as is, it can be farmed: repeating correct-but-useless steps raises the return without
bound (the paper's "reward hacking" of PRM rewards, Sec. 3). The two refinements bound it:

    Clip:        r_k^clip  = min(r_k - eta, 0)          every step reward <= 0
    Delta:       r_k^delta = r_k - r_{k+1} (k < K),  r_K^delta = r_K
                 => the return from step t telescopes to r_t: bounded, length-independent
    Clip-Delta:  Delta applied to the clipped values

Each step's reward is placed on the token where the step ends, then a token-level estimator
(REINFORCE++, GAE) turns the (N, T) token rewards into advantages.

Shapes: N sequences, K steps (padded: `valid` marks real steps, a prefix of each row),
T response tokens.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

DenseKind = Literal["raw", "clip", "delta", "clip_delta"]


def _check(scores: Tensor, valid: Tensor) -> None:
    if scores.dim() != 2 or scores.shape != valid.shape:
        raise ValueError(
            f"scores and valid must both be (N, K), got {tuple(scores.shape)}, {tuple(valid.shape)}"
        )


def clip_step_rewards(scores: Tensor, valid: Tensor, *, eta: float) -> Tensor:
    """Clip: r_k = min(r_k - eta, 0) on valid steps, 0 on padding.

    Reference: arXiv 2410.15115, Sec. 4 (Clip mechanism).

    Args:
        scores: (N, K) step scores r_k.
        valid: (N, K) bool, True on real steps.
        eta: the threshold; a step scoring >= eta gets 0, one below it a penalty.

    Returns:
        (N, K) float32 clipped step rewards (<= 0).
    """
    _check(scores, valid)
    out = (scores.to(torch.float32) - eta).clamp(max=0.0)
    return torch.where(valid.bool(), out, torch.zeros_like(out))


def delta_step_rewards(scores: Tensor, valid: Tensor) -> Tensor:
    """Delta: r_k - r_{k+1} for every step but the last, r_K on the last; 0 on padding.

    The return from step t, sum_{k >= t} r_k^delta, is r_t (telescoping), whatever the number
    of steps. Reference: arXiv 2410.15115, Sec. 4 (Delta mechanism).

    Args:
        scores: (N, K) step scores.
        valid: (N, K) bool, a prefix of each row (steps are padded at the end).

    Returns:
        (N, K) float32 delta step rewards.
    """
    _check(scores, valid)
    v = valid.bool()
    r = torch.where(v, scores.to(torch.float32), torch.zeros_like(scores, dtype=torch.float32))
    nxt = torch.zeros_like(r)
    nxt[:, :-1] = r[:, 1:]
    nxt_valid = torch.zeros_like(v)
    nxt_valid[:, :-1] = v[:, 1:]
    return torch.where(v, r - torch.where(nxt_valid, nxt, torch.zeros_like(nxt)), 0.0)


def refine_step_rewards(
    scores: Tensor, valid: Tensor, *, kind: DenseKind, eta: float = 1.0
) -> Tensor:
    """`kind` raw (unchanged), clip, delta or clip_delta (Clip, then Delta) of step scores."""
    if kind == "raw":
        return torch.where(valid.bool(), scores.to(torch.float32), 0.0)
    if kind == "clip":
        return clip_step_rewards(scores, valid, eta=eta)
    if kind == "delta":
        return delta_step_rewards(scores, valid)
    if kind == "clip_delta":
        return delta_step_rewards(clip_step_rewards(scores, valid, eta=eta), valid)
    raise ValueError(f"unknown dense reward kind {kind!r} (raw, clip, delta, clip_delta)")


def step_token_rewards(
    step_rewards: Tensor, step_ends: Tensor, valid: Tensor, mask: Tensor
) -> Tensor:
    """Put each step's reward on the token where the step ends: (N, K) -> (N, T).

    Steps ending on the same token add up. A step end past the last valid token of its row
    (a truncated text) moves to that last valid token; a row with no valid token gets nothing.

    Args:
        step_rewards: (N, K) refined step rewards.
        step_ends: (N, K) long, response-token index of each step's last token.
        valid: (N, K) bool.
        mask: (N, T) loss mask.

    Returns:
        (N, T) float32 token rewards (0 off the step ends).
    """
    _check(step_rewards, valid)
    if step_ends.shape != step_rewards.shape or mask.dim() != 2 or len(mask) != len(valid):
        raise ValueError("step_ends must be (N, K) and mask (N, T) with the same N")
    m = mask.to(torch.float32)
    cols = torch.arange(m.shape[1]).expand_as(m)
    last = torch.where(m > 0, cols, torch.full_like(cols, -1)).max(dim=1).values  # (N,)
    ends = torch.minimum(step_ends.long(), last[:, None]).clamp(min=0)
    keep = valid.bool() & (last[:, None] >= 0)
    out = torch.zeros_like(m)
    out.scatter_add_(1, ends, torch.where(keep, step_rewards.to(torch.float32), 0.0))
    return out
