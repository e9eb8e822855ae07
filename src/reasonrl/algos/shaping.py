"""Reward shaping: length penalties and overlong handling.

All functions return additive reward terms or masks; the caller decides the weights.

Shapes: B prompts, G group size, N = B*G sequences.
"""

from __future__ import annotations

import torch
from torch import Tensor


def kimi_length_penalty(lengths: Tensor, correct: Tensor) -> Tensor:
    """Kimi k1.5 group length reward.

    lambda_i = 0.5 - (len_i - min_len) / (max_len - min_len) over the group;
    reward_i = lambda_i if correct else min(0, lambda_i). All lengths equal -> 0 (open-r1's rule;
    the paper does not say). Shortest gets +0.5, longest -0.5; wrong answers are only penalised.

    Reference: Kimi k1.5, arXiv 2501.12599, Sec. 2.3.3.

    Args:
        lengths: (B, G) response lengths (tokens).
        correct: (B, G) bool (or 0/1) correctness.

    Returns:
        (B, G) float32 length rewards (add with a weight).
    """
    if lengths.dim() != 2 or lengths.shape != correct.shape:
        raise ValueError(f"lengths {tuple(lengths.shape)} and correct must both be (B, G)")
    lens = lengths.to(torch.float32)
    lo = lens.min(dim=1, keepdim=True).values
    hi = lens.max(dim=1, keepdim=True).values
    span = hi - lo
    lam = 0.5 - (lens - lo) / span.clamp(min=1e-12)
    lam = torch.where(span > 0, lam, torch.zeros_like(lam))
    return torch.where(correct.bool(), lam, lam.clamp(max=0.0))


def overlong_penalty(lengths: Tensor, *, max_len: int, buffer: int, factor: float = 1.0) -> Tensor:
    """DAPO soft overlong punishment.

    R_len = 0 if |y| <= L_max - L_cache; ((L_max - L_cache) - |y|) / L_cache * factor inside the
    buffer; -factor beyond L_max (the linear ramp, clamped to [-factor, 0]).

    Reference: DAPO, arXiv 2503.14476, Eq. 13; GRPO-TCR arXiv 2510.11701 (buffer 4096, factor 1).

    Args:
        lengths: any shape, response lengths in tokens.
        max_len: L_max (the generation limit).
        buffer: L_cache, the soft-penalty band (> 0).
        factor: penalty scale.

    Returns:
        float32 penalty of lengths' shape (<= 0).
    """
    if buffer <= 0 or buffer > max_len:
        raise ValueError(f"need 0 < buffer <= max_len, got buffer={buffer}, max_len={max_len}")
    expected = max_len - buffer
    exceed = lengths.to(torch.float32) - expected
    return torch.clamp(-exceed / buffer * factor, min=-abs(factor), max=0.0)


def overlong_filter_mask(truncated: Tensor) -> Tensor:
    """DAPO overlong filtering: per-sequence loss mask that drops truncated responses.

    Multiply into the (N, T) loss mask as `mask * keep[:, None]`.

    Reference: DAPO, arXiv 2503.14476, Sec. 3.4; Tricks or Traps 2508.08221 Sec. 4.4.

    Args:
        truncated: (N,) bool, True where generation hit the length limit.

    Returns:
        (N,) float32: 0 for truncated, 1 otherwise.
    """
    return (~truncated.bool()).to(torch.float32)
