"""Reduce a per-token loss matrix to a scalar, exactly across micro-batches and ranks.

Every mode is `numerator / normalizer`, where the numerator is a sum over this micro-batch's
sequences and the normalizer is a count. Computing the normalizer once from the *whole*
optimizer-step batch (`global_normalizer`) and passing it to every micro-batch makes the summed
micro-batch gradients equal the one-big-batch gradient, whatever the split (the bug where
per-micro-batch token-means over-weight short micro-batches). Under data parallelism each rank
passes the global normaliser of all ranks and the gradients must then be SUMMED across ranks
(or averaged and multiplied by the world size).

Modes (l = loss, m = mask, n_i = sum_t m_{i,t}, S = sequences with n_i > 0):
    token_mean               sum_{i,t} l m / sum_{i,t} m                 (DAPO, verl default)
    token_sum                sum_{i,t} l m                               (normaliser 1)
    seq_mean_token_mean      sum_i [sum_t l m / n_i] / |S|               (GRPO paper, GSPO)
    seq_mean_token_sum       sum_i [sum_t l m] / |S|
    seq_mean_token_sum_norm  sum_i [sum_t l m] / (|S| * const)           (Dr.GRPO; const = T)

Shapes: N sequences, T response tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import Tensor

AggMode = Literal[
    "token_mean",
    "token_sum",
    "seq_mean_token_mean",
    "seq_mean_token_sum",
    "seq_mean_token_sum_norm",
]
AGG_MODES: tuple[str, ...] = get_args(AggMode)


def _check_mode(mode: str) -> None:
    if mode not in AGG_MODES:
        raise ValueError(f"unknown aggregation mode {mode!r}; choose from {AGG_MODES}")


def global_normalizer(
    mask_full: Tensor,
    mode: AggMode,
    const: float | None = None,
    *,
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """The normaliser of `aggregate` for the whole optimizer-step batch.

    token_mean: total valid tokens; token_sum: 1; seq_* modes: number of sequences with at least
    one valid token (seq_mean_token_sum_norm also multiplies by const, default T).

    Args:
        mask_full: (N, T) loss mask of every sequence in the optimizer step (all micro-batches,
            all ranks).
        mode: aggregation mode.
        const: Dr.GRPO constant for seq_mean_token_sum_norm (e.g. max_new_tokens).
        reduce: data parallel: `mask_full` is this rank's shard and `reduce` sums a count over
            ranks, so the result is the count of the whole batch (token_sum's 1 is not a count
            and is not reduced; seq_mean_token_sum_norm then needs `const`, since the default
            T, the padded width, differs between shards).

    Returns:
        0-dim float tensor.
    """
    _check_mode(mode)
    m = mask_full.to(torch.float32)
    if mode == "token_mean":
        return m.sum() if reduce is None else reduce(m.sum())
    if mode == "token_sum":
        return m.new_ones(())
    n_seq = (m.sum(dim=-1) > 0).to(torch.float32).sum()
    if reduce is not None:
        if mode == "seq_mean_token_sum_norm" and const is None:
            raise ValueError("seq_mean_token_sum_norm across ranks needs const (e.g. max tokens)")
        n_seq = reduce(n_seq)
    if mode == "seq_mean_token_sum_norm":
        return n_seq * (float(m.shape[-1]) if const is None else float(const))
    return n_seq


def aggregate(
    loss_mat: Tensor,
    mask: Tensor,
    mode: AggMode,
    *,
    normalizer: float | Tensor | None = None,
    const: float | None = None,
) -> Tensor:
    """Aggregate an (N, T) loss matrix into a scalar (see the module docstring for each mode).

    Reference: DAPO 2503.14476 (token_mean); Dr.GRPO 2503.20783 (constant normaliser);
    Tricks or Traps 2508.08221 Sec. 4.3 (token vs sequence aggregation).

    Args:
        loss_mat: (N, T) per-token loss.
        mask: (N, T) loss mask (0/1 or bool).
        mode: one of AGG_MODES.
        normalizer: divide by this instead of the count from this batch; pass
            `global_normalizer(mask_of_whole_step, mode, const)` for exact gradient accumulation.
            For seq_mean_token_sum_norm it is the full denominator (sequences * const).
        const: Dr.GRPO constant, used only when normalizer is None (default T).

    Returns:
        0-dim loss tensor. An empty mask gives 0, not NaN.
    """
    _check_mode(mode)
    if loss_mat.shape != mask.shape:
        raise ValueError(f"loss_mat {tuple(loss_mat.shape)} and mask {tuple(mask.shape)} differ")
    m = mask.to(loss_mat.dtype)
    # where() instead of l*m: a NaN/inf on a padded position must not leak into the sum.
    masked = torch.where(m > 0, loss_mat, torch.zeros_like(loss_mat)) * m
    if mode == "seq_mean_token_mean":
        numerator = (masked.sum(dim=-1) / m.sum(dim=-1).clamp(min=1)).sum()
    else:
        numerator = masked.sum()
    if normalizer is None:
        normalizer = global_normalizer(mask, mode, const)
    if isinstance(normalizer, Tensor):
        normalizer = normalizer.to(numerator.dtype)
        return numerator / normalizer.clamp(min=1e-12)
    return numerator / max(float(normalizer), 1e-12)


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x over entries where mask is nonzero (0 when the mask is empty). For metrics."""
    m = mask.to(x.dtype)
    return (torch.where(m > 0, x, torch.zeros_like(x)) * m).sum() / m.sum().clamp(min=1)


def masked_row_mean(x: Tensor, mask: Tensor) -> Tensor:
    """(N,) mean of each row of x (N, T) over its masked-in entries; NaN for an empty row."""
    m = mask.to(x.dtype)
    total = (torch.where(m > 0, x, torch.zeros_like(x)) * m).sum(dim=-1)
    count = m.sum(dim=-1)
    return torch.where(count > 0, total / count.clamp(min=1e-12), torch.full_like(total, torch.nan))
