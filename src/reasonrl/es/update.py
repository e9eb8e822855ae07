"""The ES update of every target weight from the population's shaped fitness (EGGROLL,
arXiv 2511.16652): g = (1/N) sum_i f_i E_i, W <- W + lr sqrt(N) g (`reasonrl.algos.es`).

The noise is regenerated here from the same seeds the rollouts used (`perturb.NoiseSpec`), one
weight at a time, so at most one weight's population noise is alive at once: N (m + n) r floats
for low rank; for full-rank ES one m x n draw at a time, accumulated pair by pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from reasonrl.algos.es import (
    antithetic,
    es_step_delta,
    full_gradient,
    full_noise,
    low_rank_factors,
    low_rank_gradient,
    noise_seed,
)
from reasonrl.es.perturb import NoiseSpec, Target


def es_deltas(
    targets: Sequence[Target], spec: NoiseSpec, fitness: Tensor, *, lr: float
) -> tuple[list[Tensor], int]:
    """The change of each target's weight, and the most noise bytes held at once."""
    n_pop = fitness.numel()
    if n_pop % 2:
        raise ValueError(f"the population must be even (antithetic pairs), got {n_pop}")
    signs = torch.tensor([antithetic(i)[1] for i in range(n_pop)])
    fitness = fitness.float()
    deltas, peak = [], 0
    for t in targets:
        m, n = t.shape
        seeds = [noise_seed(spec.seed, spec.generation, p, t.index) for p in range(n_pop // 2)]
        if spec.noise == "low_rank":
            pairs = [low_rank_factors(m, n, spec.rank, s) for s in seeds]
            a = torch.stack([f[0] for f in pairs]).repeat_interleave(2, dim=0)  # (N, m, r)
            b = torch.stack([f[1] for f in pairs]).repeat_interleave(2, dim=0)  # (N, n, r)
            peak = max(peak, a.nbytes + b.nbytes)
            grad = low_rank_gradient(fitness, a, b, signs, sigma=spec.sigma)
        else:
            grad = torch.zeros(m, n)
            for p, s in enumerate(seeds):
                eps = full_noise(m, n, s)
                peak = max(peak, eps.nbytes)
                two = slice(2 * p, 2 * p + 2)  # the pair's mean, weighted 2/N: the mean over N
                grad += full_gradient(fitness[two], eps.expand(2, m, n), signs[two],
                                      sigma=spec.sigma) * (2 / n_pop)  # fmt: skip
        deltas.append(es_step_delta(grad, lr=lr, population=n_pop).to(t.module.weight.device))
    return deltas, peak
