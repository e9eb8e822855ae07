"""Emulated fine-tuning (EFT) / logit up-scaling (Mitchell et al., arXiv 2310.12962).

EFT reads a fine-tuned model as "base model x implicit reward" and moves the fine-tuning
delta of a SMALL pair of models onto a LARGE base at decode time ("up-scaling", their Eq. 4
with the reward r = log pi_ft^S - log pi_base^S):

    log pi_EFT(v | x, y_<t) = log pi_base^L(v | .)
                              + beta * [log pi_ft^S(v | .) - log pi_base^S(v | .)] - log Z_t,

normalised over the vocabulary every step (Z_t sums the unnormalised numerator). beta = 1 is
plain up-scaling; beta = 0 is the large base alone; beta scales the emulated fine-tuning as the
paper's "behaviour interpolation" does for one delta.

Shapes: (..., V) next-token log-probs or raw logits, V the shared vocabulary. Each input is
log-softmaxed first, so raw logits and log-probs give the same result.
"""

from __future__ import annotations

import torch

# Plain up-scaling (the paper's EFT): the small pair's full fine-tuning delta.
DEFAULT_BETA = 1.0


def eft_logprobs(
    large_base: torch.Tensor,
    small_ft: torch.Tensor,
    small_base: torch.Tensor,
    *,
    beta: float = DEFAULT_BETA,
) -> torch.Tensor:
    """Normalised EFT log-probs: log_softmax(lp_L + beta * (lp_S^ft - lp_S^base)).

    Args:
        large_base: (..., V) logits or log-probs of the large base model.
        small_ft: (..., V) of the small fine-tuned model.
        small_base: (..., V) of the small base model.
        beta: weight of the fine-tuning delta (1 = up-scaling, 0 = the large base).

    Returns:
        (..., V) float32 log-probs summing to one over V. A token one of the three models gives
        probability 0 (-inf) gets -inf: the large base's zero is kept whatever the delta, and a
        -inf in both small models (their delta is undefined) counts as excluded too.
    """
    if not (large_base.shape == small_ft.shape == small_base.shape):
        raise ValueError(
            "eft_logprobs: shapes differ: "
            f"{tuple(large_base.shape)}, {tuple(small_ft.shape)}, {tuple(small_base.shape)}"
        )
    lp_l = torch.log_softmax(large_base.float(), dim=-1)
    if beta == 0:  # exactly the large base (no -inf - -inf = NaN from the small pair)
        return lp_l
    lp_ft = torch.log_softmax(small_ft.float(), dim=-1)
    lp_sb = torch.log_softmax(small_base.float(), dim=-1)
    delta = lp_ft - lp_sb
    # -inf - (-inf) is NaN: a token neither small model can emit is excluded, not poisoned
    delta = torch.where(torch.isnan(delta), float("-inf"), delta)
    return torch.log_softmax(lp_l + beta * delta, dim=-1)
