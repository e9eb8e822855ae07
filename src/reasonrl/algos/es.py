"""Evolution strategies with low-rank perturbations: EGGROLL (arXiv 2511.16652).

For a weight matrix W (m x n) and population member i, EGGROLL perturbs with a rank-r matrix

    E_i = s_i * (sigma / sqrt(r)) * A_i B_i^T,   A_i (m x r), B_i (n x r) ~ N(0, I)

so a perturbed linear layer is x (W + E_i)^T = x W^T + (x B_i)(s_i sigma / sqrt(r) A_i)^T and no
m x n matrix per member is ever needed. Antithetic pairs: members 2p and 2p + 1 share (A, B) with
signs s = +1, -1 (the reference code's `thread // 2`). Full-rank ES (Salimans et al., arXiv
1703.03864) is the same with E_i = s_i * sigma * eps_i, eps_i (m x n) ~ N(0, I); it is kept here
as the baseline the memory comparison needs.

Fitness shaping turns the raw scores s (N,) into f (N,):
- "zscore" (EGGROLL's code, the default): f = (s - mean(s)) / sqrt(var(s) + 1e-5), population
  variance (ddof 0);
- "centered_rank" (arXiv 1703.03864, `compute_centered_ranks`): rank(s) / (N - 1) - 0.5 in
  [-0.5, 0.5]; tied scores share their average rank (greedy rewards tie often; the reference
  breaks ties by argsort order, which would rank identical members differently).

Update (the reference code, github ESHyperscale/HyperscaleES `noiser/eggroll.py` at b77f7d6, as
/work/shared/design/techniques.md section 18 records it):

    g = (1/N) sum_i f_i E_i,        W <- W + lr * sqrt(N) * g

The textbook ES estimate lr / (N sigma) sum_i f_i eps_i differs from it only by a constant factor
(sigma^2 / sqrt(N) with eps_i = E_i / sigma), absorbed in lr; we implement the code's form.

Noise is never stored: every member's factors are regenerated from an integer seed
(`noise_seed`) and the weight's index, so the update regenerates exactly what the rollouts used
and a checkpoint needs no noise at all. Tensors in, tensors out; no modules, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

Shaping = Literal["zscore", "centered_rank"]
Noise = Literal["low_rank", "full"]

ZSCORE_EPS = 1e-5  # the reference code's variance floor
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """One splitmix64 round: nearby inputs give unrelated 64-bit outputs."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def noise_seed(*parts: int) -> int:
    """A seed for torch.Generator from integers (run seed, generation, pair, weight index)."""
    h = 0
    for p in parts:
        h = _splitmix64(h ^ (int(p) & _MASK64))
    return h & ((1 << 63) - 1)  # manual_seed takes a non-negative int64


def antithetic(member: int) -> tuple[int, float]:
    """(pair index, sign) of a member: 2p -> (p, +1), 2p + 1 -> (p, -1)."""
    return member // 2, 1.0 if member % 2 == 0 else -1.0


def low_rank_factors(
    m: int, n: int, rank: int, seed: int, *, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """A (m, rank), B (n, rank) ~ N(0, 1), float32, drawn from `seed` alone (same on resume)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    a = torch.randn(m, rank, generator=gen)
    b = torch.randn(n, rank, generator=gen)
    return a.to(device), b.to(device)


def full_noise(m: int, n: int, seed: int, *, device: torch.device | str = "cpu") -> Tensor:
    """eps (m, n) ~ N(0, 1) for full-rank ES, from `seed` alone."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(m, n, generator=gen).to(device)


def low_rank_scale(sigma: float, rank: int, sign: float) -> float:
    """The scalar c of E = c A B^T: sign * sigma / sqrt(rank)."""
    return sign * sigma / math.sqrt(rank)


def low_rank_perturbation(a: Tensor, b: Tensor, *, sigma: float, sign: float = 1.0) -> Tensor:
    """E = sign * sigma / sqrt(r) * A B^T (m, n): the dense matrix, for in-place use and tests."""
    return low_rank_scale(sigma, a.shape[1], sign) * (a @ b.T)


def low_rank_forward_delta(x: Tensor, a: Tensor, b: Tensor, *, scale: float) -> Tensor:
    """x E^T without E: (x B)(scale A)^T, x (..., n) -> (..., m)."""
    return (x @ b.to(x.dtype)) @ (scale * a.to(x.dtype)).T


def shape_fitness(scores: Tensor, method: Shaping = "zscore") -> Tensor:
    """Shaped fitness f (N,) of raw scores (N,); see the module docstring for both methods."""
    s = scores.float()
    if s.dim() != 1 or s.numel() < 2:
        raise ValueError(f"scores must be (N,) with N >= 2, got {tuple(s.shape)}")
    if method == "zscore":
        return (s - s.mean()) / torch.sqrt(s.var(unbiased=False) + ZSCORE_EPS)
    if method == "centered_rank":
        n = s.numel()
        # average rank of ties: (#smaller) + (#equal - 1) / 2, 0-based
        smaller = (s[None, :] < s[:, None]).sum(dim=1).float()
        equal = (s[None, :] == s[:, None]).sum(dim=1).float()
        return (smaller + (equal - 1) / 2) / (n - 1) - 0.5
    raise ValueError(f"unknown fitness shaping {method!r} (zscore, centered_rank)")


def low_rank_gradient(
    fitness: Tensor, a: Tensor, b: Tensor, signs: Tensor, *, sigma: float
) -> Tensor:
    """g = (1/N) sum_i f_i E_i for one weight, as one einsum over the factors.

    fitness, signs (N,); a (N, m, r); b (N, n, r) (antithetic members repeat their pair's
    factors); returns g (m, n).
    """
    n_pop, rank = fitness.numel(), a.shape[-1]
    coef = fitness.float() * signs.float() * (sigma / math.sqrt(rank)) / n_pop
    return torch.einsum("i,imr,inr->mn", coef, a.float(), b.float())


def full_gradient(fitness: Tensor, eps: Tensor, signs: Tensor, *, sigma: float) -> Tensor:
    """g = (1/N) sum_i f_i s_i sigma eps_i for full-rank ES; eps (N, m, n) -> g (m, n)."""
    coef = fitness.float() * signs.float() * sigma / fitness.numel()
    return torch.einsum("i,imn->mn", coef, eps.float())


def es_step_delta(grad: Tensor, *, lr: float, population: int) -> Tensor:
    """The change of W: lr * sqrt(N) * g (EGGROLL's code; module docstring)."""
    return lr * math.sqrt(population) * grad


def perturbation_bytes(shapes: Sequence[tuple[int, int]], *, rank: int, noise: Noise) -> int:
    """Bytes of one member's float32 noise over weights of `shapes`: (m + n) r for low rank,
    m n for full rank (the arithmetic; the trainer measures the tensors it actually holds)."""
    per = [(m + n) * rank if noise == "low_rank" else m * n for m, n in shapes]
    return 4 * sum(per)
