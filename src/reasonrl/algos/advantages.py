"""Advantage estimators: outcome-level (scores per sequence) and token-level (returns, GAE).

Outcome-level functions take `scores (B, G)` (B prompts, G completions each) and return `(B, G)`
advantages; `broadcast_to_tokens` spreads them over response tokens. Token-level functions take
`(N, T)` token rewards and a loss mask (N = B*G, T response tokens). Every convention on which
implementations disagree (std estimator, eps, normalisation scope, what a group of one gets) is a
keyword argument; docs/conventions.md tabulates our defaults against verl and TRL.

Shapes: B prompts, G group size, N = B*G sequences, T response tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from reasonrl.algos.token_advantages import (
    gae_advantages,
    reinforce_pp_advantages,
    reinforce_pp_returns,
    weighted_whiten,
)

__all__ = [
    "ADVANTAGES",
    "ADVANTAGE_KWARGS",
    "advantage_kwargs",
    "broadcast_to_tokens",
    "dr_grpo_advantages",
    "gae_advantages",
    "grpo_advantages",
    "kimi_advantages",
    "lite_ppo_advantages",
    "passk_advantages",
    "reinforce_pp_advantages",
    "reinforce_pp_baseline_advantages",
    "reinforce_pp_returns",
    "remax_advantages",
    "rloo_advantages",
    "weighted_whiten",
]

StdScope = Literal["group", "batch", "none"]
Singleton = Literal["zero", "raw"]


def _check_scores(scores: Tensor, name: str = "scores") -> None:
    if scores.dim() != 2:
        raise ValueError(f"{name} must have shape (B, G), got {tuple(scores.shape)}")


def _std(x: Tensor, dim: int | None, unbiased: bool) -> Tensor:
    # torch.std over one element with Bessel's correction is NaN; callers handle G == 1 first.
    if dim is None:
        return x.std(correction=1 if unbiased else 0)
    return x.std(dim=dim, keepdim=True, correction=1 if unbiased else 0)


def _singleton(scores: Tensor, singleton: Singleton) -> Tensor:
    """Advantage of a group of one: no baseline exists.

    "zero": no learning signal (our default). "raw": the score itself, i.e. baseline 0 (verl's
    rule: mean 0, std 1 for a singleton group).
    """
    if singleton == "zero":
        return torch.zeros_like(scores)
    if singleton == "raw":
        return scores.clone()
    raise ValueError(f"singleton must be 'zero' or 'raw', got {singleton!r}")


def grpo_advantages(
    scores: Tensor,
    *,
    std_scope: StdScope = "group",
    std_unbiased: bool = True,
    eps: float = 1e-6,
    singleton: Singleton = "zero",
) -> Tensor:
    """GRPO group-relative advantage.

    A_i = (R_i - mean_group(R)) / (std(R) + eps), std taken over the group ("group", GRPO),
    over all B*G scores ("batch", Lite PPO's mixed normalisation) or not at all ("none", Dr.GRPO).
    For G == 1 the group has no baseline; `singleton` decides ("zero" -> 0, "raw" -> verl's
    (R - 0) / (1 + eps), or R when std_scope="none").

    Reference: DeepSeekMath, arXiv 2402.03300 (GRPO); Dr.GRPO 2503.20783; Lite PPO 2508.08221.

    Args:
        scores: (B, G) per-sequence rewards.
        std_scope: where the std comes from: "group" | "batch" | "none".
        std_unbiased: Bessel-corrected std (torch.std default; verl, TRL) vs population std.
        eps: added to the std (verl 1e-6; TRL 1e-4).
        singleton: rule for G == 1 (see above).

    Returns:
        (B, G) advantages.
    """
    _check_scores(scores)
    if std_scope not in ("group", "batch", "none"):
        raise ValueError(f"std_scope must be 'group', 'batch' or 'none', got {std_scope!r}")
    scores = scores.float()
    if scores.shape[1] == 1:
        raw = _singleton(scores, singleton)
        return raw / (1.0 + eps) if (singleton == "raw" and std_scope != "none") else raw
    centred = scores - scores.mean(dim=1, keepdim=True)
    if std_scope == "none":
        return centred
    if std_scope == "group":
        std = _std(scores, 1, std_unbiased)
    else:
        std = _std(scores, None, std_unbiased) if scores.numel() > 1 else scores.new_ones(())
    denom = (std + eps).expand_as(centred)
    # all-equal scores with eps=0: centred is 0 too; return 0 rather than 0/0 = NaN
    return torch.where(denom > 0, centred / denom.clamp(min=1e-30), torch.zeros_like(centred))


def dr_grpo_advantages(scores: Tensor, *, singleton: Singleton = "zero") -> Tensor:
    """Dr.GRPO advantage: group mean baseline, no std division. A_i = R_i - mean_group(R).

    Reference: Understanding R1-Zero-Like Training (Dr.GRPO), arXiv 2503.20783.

    Args:
        scores: (B, G) rewards.
        singleton: rule for G == 1 ("zero" | "raw").

    Returns:
        (B, G) advantages.
    """
    return grpo_advantages(scores, std_scope="none", singleton=singleton)


def lite_ppo_advantages(
    scores: Tensor, *, std_unbiased: bool = True, eps: float = 1e-6, singleton: Singleton = "zero"
) -> Tensor:
    """Lite PPO mixed normalisation: A_i = (R_i - mean_group(R)) / (std_batch(R) + eps).

    std_batch is the std of all B*G raw scores (as TRL's scale_rewards="batch").

    Reference: Tricks or Traps? A Deep Dive into RL for LLM Reasoning, arXiv 2508.08221.

    Args:
        scores: (B, G) rewards.
        std_unbiased: Bessel-corrected batch std.
        eps: added to the std.
        singleton: rule for G == 1.

    Returns:
        (B, G) advantages.
    """
    return grpo_advantages(
        scores, std_scope="batch", std_unbiased=std_unbiased, eps=eps, singleton=singleton
    )


def kimi_advantages(scores: Tensor, *, singleton: Singleton = "zero") -> Tensor:
    """Kimi k1.5 mean baseline: A_j = r_j - mean_k(r) (the rbar that approximates tau*log Z).

    Numerically equal to Dr.GRPO's advantage; kept as its own name because the paper pairs it with
    the OMD squared loss (`policy_loss.kimi_omd`).

    Reference: Kimi k1.5, arXiv 2501.12599, Sec. 2.3.2.

    Args:
        scores: (B, G) rewards.
        singleton: rule for G == 1.

    Returns:
        (B, G) advantages.
    """
    return grpo_advantages(scores, std_scope="none", singleton=singleton)


def rloo_advantages(scores: Tensor, *, singleton: Singleton = "zero") -> Tensor:
    """RLOO leave-one-out baseline: A_i = R_i - (1/(G-1)) sum_{j != i} R_j = G/(G-1) (R_i - mean).

    Reference: Back to Basics: REINFORCE-style optimisation for RLHF (RLOO), arXiv 2402.14740.

    Args:
        scores: (B, G) rewards.
        singleton: rule for G == 1 (no other sample to form a baseline).

    Returns:
        (B, G) advantages.
    """
    _check_scores(scores)
    scores = scores.float()
    g = scores.shape[1]
    if g == 1:
        return _singleton(scores, singleton)
    others_mean = (scores.sum(dim=1, keepdim=True) - scores) / (g - 1)
    return scores - others_mean


def reinforce_pp_baseline_advantages(
    scores: Tensor,
    *,
    token_counts: Tensor | None = None,
    std_unbiased: bool = True,
    eps: float = 1e-8,
    singleton: Singleton = "raw",
) -> Tensor:
    """REINFORCE++-baseline: subtract the group mean, then whiten over the whole batch.

    A_i = whiten_batch(R_i - mean_group(R)). With `token_counts` (B, G) the batch mean/variance are
    weighted by response length, which equals whitening the per-token broadcast advantage over all
    valid tokens (verl's definition). Without it each sequence counts once.

    Reference: REINFORCE++, arXiv 2501.03262.

    Args:
        scores: (B, G) rewards.
        token_counts: optional (B, G) number of valid response tokens per sequence.
        std_unbiased: Bessel-corrected variance.
        eps: inside the sqrt.
        singleton: rule for G == 1 before whitening ("raw": baseline 0, as verl).

    Returns:
        (B, G) advantages.
    """
    _check_scores(scores)
    scores = scores.float()
    if scores.shape[1] == 1:
        centred = _singleton(scores, singleton)
    else:
        centred = scores - scores.mean(dim=1, keepdim=True)
    weights = torch.ones_like(centred) if token_counts is None else token_counts.float()
    return weighted_whiten(centred, weights, unbiased=std_unbiased, eps=eps)


def _comb_ratio(top: Tensor, bottom: Tensor, k: int) -> Tensor:
    """C(top, k) / C(bottom, k) = prod_{i<k} (top - i)/(bottom - i), 0 when top < k."""
    i = torch.arange(k, dtype=top.dtype, device=top.device)
    num = (top.unsqueeze(-1) - i).clamp(min=0)
    den = bottom.unsqueeze(-1) - i
    return (num / den).prod(dim=-1)


def passk_advantages(scores: Tensor, *, k: int, threshold: float = 0.5) -> Tensor:
    """Analytical pass@k advantage for binary rewards (Pass@k Training).

    Group of G samples, c correct (score > threshold), G_neg = G - c. The group reward of a random
    k-subset is its max; its mean and std are
        Rbar = 1 - C(G_neg, k) / C(G, k),   sigma = sqrt(Rbar (1 - Rbar)),
    and each sample's advantage averages the standardised k-subset reward over subsets holding it:
        A_pos = (1 - Rbar) / sigma
        A_neg = (1 - Rbar - C(G_neg - 1, k - 1) / C(G - 1, k - 1)) / sigma.
    sigma = 0 (all right or all wrong) gives 0. At k = 1 this is GRPO with the population std.
    (verl's "grpo_passk" is a different estimator: only the best sample gets r_max - r_2nd.)

    Reference: Pass@k Training for Adaptively Balancing Exploration and Exploitation, arXiv
    2508.10751.

    Args:
        scores: (B, G) rewards, read as correct when > threshold.
        k: subset size, 1 <= k <= G.
        threshold: correctness threshold on the score.

    Returns:
        (B, G) advantages.
    """
    _check_scores(scores)
    g = scores.shape[1]
    if not 1 <= k <= g:
        raise ValueError(f"passk_advantages needs 1 <= k <= G, got k={k}, G={g}")
    correct = scores > threshold
    n = torch.full((scores.shape[0],), float(g), dtype=torch.float64, device=scores.device)
    n_neg = (~correct).sum(dim=1).to(torch.float64)
    r_bar = 1.0 - _comb_ratio(n_neg, n, k)  # (B,)
    sigma = (r_bar * (1.0 - r_bar)).clamp(min=0).sqrt()
    p_all_neg = _comb_ratio(n_neg - 1, n - 1, k - 1) if k > 1 else torch.ones_like(n)
    a_pos = 1.0 - r_bar
    a_neg = 1.0 - r_bar - p_all_neg
    adv = torch.where(correct, a_pos.unsqueeze(1), a_neg.unsqueeze(1))
    safe = sigma > 0
    adv = torch.where(safe.unsqueeze(1), adv / sigma.clamp(min=1e-300).unsqueeze(1), 0.0)
    return adv.to(torch.float32)


def remax_advantages(scores: Tensor, greedy_scores: Tensor) -> Tensor:
    """ReMax: the reward of the greedy completion is the baseline. A_i = R_i - R_greedy(prompt).

    Reference: ReMax, arXiv 2310.10505.

    Args:
        scores: (B, G) rewards of sampled completions.
        greedy_scores: (B,) reward of each prompt's greedy completion.

    Returns:
        (B, G) advantages.
    """
    _check_scores(scores)
    if greedy_scores.shape != scores.shape[:1]:
        raise ValueError(
            f"greedy_scores must have shape ({scores.shape[0]},), got {tuple(greedy_scores.shape)}"
        )
    return scores.float() - greedy_scores.float().unsqueeze(1)


def broadcast_to_tokens(adv: Tensor, mask: Tensor) -> Tensor:
    """Spread (B, G) sequence advantages over the (N, T) response tokens; 0 where mask is 0.

    Args:
        adv: (B, G) advantages; row-major flattening gives sequence n = b*G + g.
        mask: (N, T) loss mask.

    Returns:
        (N, T) token advantages.
    """
    flat = adv.reshape(-1)
    if flat.shape[0] != mask.shape[0]:
        raise ValueError(f"adv has {flat.shape[0]} sequences but mask has {mask.shape[0]} rows")
    return flat.unsqueeze(1) * mask.to(flat.dtype)


ADVANTAGES: dict[str, Callable[..., Tensor]] = {
    "grpo": grpo_advantages,
    "dr_grpo": dr_grpo_advantages,
    "lite_ppo": lite_ppo_advantages,
    "rloo": rloo_advantages,
    "kimi": kimi_advantages,
    "reinforce_pp_baseline": reinforce_pp_baseline_advantages,
    "passk": passk_advantages,
}

# Keyword argument of each registered function -> the config field that supplies it.
ADVANTAGE_KWARGS: dict[str, dict[str, str]] = {
    "grpo": {"std_scope": "std_scope", "std_unbiased": "std_unbiased", "eps": "adv_eps"},
    "dr_grpo": {},
    "lite_ppo": {"std_unbiased": "std_unbiased", "eps": "adv_eps"},
    "rloo": {},
    "kimi": {},
    "reinforce_pp_baseline": {"std_unbiased": "std_unbiased"},
    "passk": {"k": "passk_k"},
}


def advantage_kwargs(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Pick the keyword arguments of ADVANTAGES[name] out of a flat settings mapping.

    Args:
        name: registry key.
        settings: e.g. the algorithm config as a dict; missing fields keep the function default.

    Returns:
        kwargs for ADVANTAGES[name].
    """
    if name not in ADVANTAGE_KWARGS:
        raise KeyError(f"unknown advantage {name!r}; choose from {sorted(ADVANTAGES)}")
    return {kw: settings[f] for kw, f in ADVANTAGE_KWARGS[name].items() if f in settings}
