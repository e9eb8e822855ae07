"""DR-IRL's dynamic reward scaling (GRPO-S), arXiv 2503.18991 (techniques.md section 12).

GRPO-S multiplies each sample's group-relative advantage by a difficulty coefficient:

    A_ji = alpha_ji * (R_ji - mean_i R_ji) / std_i R_ji,     alpha_ji = alpha^D_ji * alpha^M_j

- Data hardness (per sample): the response's sentences S^1..S^K against the demonstration's
  S~^1..S~^L, with a similarity s_kl in [0, 1] (the paper: cosine of a text encoder's, CLIP,
  embeddings). W = (1/K) sum_k max_l s_kl, delta = 1 - W, and
  alpha^D_ji = sigmoid(delta_ji) / sigmoid(mean_{i in j} delta_ji)   (mean over the category).
  A response far from the demonstration (hard for the model) is weighted up.
- Model responsiveness (per category j, e.g. the synthetic op count): reward gaps
  R_ji = r(demonstration) - r(response); gaps with (R_ji - Rbar_j)^2 > tau are dropped as
  outliers; Rbar_j = mean kept gap of category j, Rbar_P = mean kept gap over all categories, and
  alpha^M_j = sigmoid(Rbar_P) / sigmoid(Rbar_j).

Reading of the paper's notation (its Table 6 hyper-parameters are not recovered, techniques.md
marks the gap): Rbar_P is taken as the pooled ("population") mean of the kept gaps and Rbar_j as
the category's mean AFTER the outlier filter (the raw mean when the filter keeps nothing). With
alpha = 1 GRPO-S is exactly GRPO (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from reasonrl.algos.advantages import grpo_advantages


def hardness_from_similarity(similarities: Sequence[Tensor]) -> Tensor:
    """delta_i = 1 - (1/K) sum_k max_l s_kl for each sample's (K, L) similarity matrix.

    A response with no sentences (K = 0) or a demonstration with none (L = 0) shares nothing
    with it: delta = 1."""
    out = []
    for s in similarities:
        if s.ndim != 2:
            raise ValueError(f"each similarity matrix must be (K, L), got shape {tuple(s.shape)}")
        out.append(1.0 if s.numel() == 0 else 1.0 - float(s.max(dim=1).values.mean()))
    return torch.tensor(out, dtype=torch.float32)


def _category_mean(x: Tensor, categories: Tensor, keep: Tensor | None = None) -> Tensor:
    """Per-sample mean of `x` over the samples of the same category (where `keep`)."""
    keep = torch.ones_like(x, dtype=torch.bool) if keep is None else keep
    out = torch.empty_like(x)
    for c in categories.unique():
        members = categories == c
        kept = members & keep
        out[members] = x[kept].mean() if kept.any() else x[members].mean()
    return out


def hardness_coefficients(delta: Tensor, categories: Tensor) -> Tensor:
    """alpha^D_i = sigmoid(delta_i) / sigmoid(mean of delta over i's category); (N,) -> (N,)."""
    if delta.shape != categories.shape or delta.ndim != 1:
        raise ValueError("delta and categories must be (N,) tensors of the same shape")
    return torch.sigmoid(delta) / torch.sigmoid(_category_mean(delta, categories))


def responsiveness_coefficients(gaps: Tensor, categories: Tensor, *, tau: float) -> Tensor:
    """alpha^M of each sample's category: sigmoid(Rbar_P) / sigmoid(Rbar_j) (module doc).

    gaps: (N,) reward gaps r(demonstration) - r(response); categories: (N,) category ids;
    tau: the outlier threshold on the squared deviation from the category's mean gap."""
    if gaps.shape != categories.shape or gaps.ndim != 1:
        raise ValueError("gaps and categories must be (N,) tensors of the same shape")
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    keep = (gaps - _category_mean(gaps, categories)) ** 2 <= tau
    pooled = gaps[keep].mean() if keep.any() else gaps.mean()
    return torch.sigmoid(pooled) / torch.sigmoid(_category_mean(gaps, categories, keep))


def grpo_s_advantages(scores: Tensor, alpha: Tensor, **grpo_kwargs: object) -> Tensor:
    """GRPO-S: alpha (B, G) times the GRPO advantage of scores (B, G) (`grpo_advantages`'
    keyword arguments pass through)."""
    if alpha.shape != scores.shape:
        raise ValueError(f"alpha {tuple(alpha.shape)} must match scores {tuple(scores.shape)}")
    return alpha * grpo_advantages(scores, **grpo_kwargs)  # type: ignore[arg-type]
