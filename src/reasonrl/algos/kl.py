"""Per-token KL estimators between the policy and a reference, from sampled-token log-probs.

With x = log pi(y_t) - log pi_ref(y_t) for y_t ~ pi (Schulman, "Approximating KL divergence"):
    k1  = x                        unbiased, high variance, can be negative
    k2  = x^2 / 2                  biased, low variance; its gradient is the reverse-KL gradient
    k3  = exp(-x) - 1 + x          unbiased, non-negative, low variance ("low_var_kl")
    abs = |x|
Use the result either as a loss term (`aggregate(kl, mask, ...) * kl_coef`, GRPO) or folded
into token rewards (`fold_kl_into_rewards`, PPO-RLHF).

Shapes: N sequences, T response tokens.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

KLKind = Literal["k1", "k2", "k3", "abs"]
KL_KINDS: tuple[str, ...] = ("k1", "k2", "k3", "abs")

# exp(-x) overflows float32 near x = -88; verl clamps the exponent at +-20 for k3.
_K3_EXP_CLAMP = 20.0


def kl_penalty(
    logprobs: Tensor, ref_logprobs: Tensor, kind: KLKind = "k3", clamp: float | None = 10.0
) -> Tensor:
    """Per-token KL estimate of KL(pi || pi_ref) (formulas in the module docstring).

    k3 always clamps its exponent argument to [-20, 20] (overflow guard, as verl). `clamp` then
    bounds the returned value of every kind to [-clamp, clamp] (verl clamps only k3, at 10; pass
    clamp=None for k1/k2/abs to get verl's values).

    Reference: Schulman 2020, http://joschu.net/blog/kl-approx.html; GRPO (k3) arXiv 2402.03300.

    Args:
        logprobs: (N, T) log pi(y_t) of the sampled tokens (differentiable for a loss term).
        ref_logprobs: (N, T) log pi_ref(y_t).
        kind: "k1" | "k2" | "k3" | "abs".
        clamp: symmetric bound on the output, or None.

    Returns:
        (N, T) per-token estimate.
    """
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(f"logprobs {tuple(logprobs.shape)} vs ref {tuple(ref_logprobs.shape)}")
    x = logprobs - ref_logprobs
    if kind == "k1":
        kl = x
    elif kind == "k2":
        kl = 0.5 * x.square()
    elif kind == "k3":
        neg = torch.clamp(-x, min=-_K3_EXP_CLAMP, max=_K3_EXP_CLAMP)
        kl = torch.exp(neg) - neg - 1.0
    elif kind == "abs":
        kl = x.abs()
    else:
        raise ValueError(f"unknown KL estimator {kind!r}; choose from {KL_KINDS}")
    if clamp is not None:
        kl = torch.clamp(kl, min=-clamp, max=clamp)
    return kl


def fold_kl_into_rewards(token_rewards: Tensor, kl: Tensor, mask: Tensor, coef: float) -> Tensor:
    """Token rewards with a KL penalty: r'_t = r_t - coef * kl_t on valid tokens.

    Reference: InstructGPT-style RLHF, arXiv 2203.02155 (per-token KL in the reward).

    Args:
        token_rewards: (N, T) rewards (outcome on the last token).
        kl: (N, T) estimate from `kl_penalty` (computed without gradient).
        mask: (N, T) loss mask.
        coef: KL coefficient beta.

    Returns:
        (N, T) penalised rewards.
    """
    return token_rewards - coef * kl.detach() * mask.to(kl.dtype)
