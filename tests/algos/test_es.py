"""EGGROLL maths (arXiv 2511.16652) against hand-derived values: noise shapes and seeds,
antithetic signs, the update on a 2x2 example, fitness shaping, descent on a quadratic."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.es import (
    ZSCORE_EPS,
    antithetic,
    es_step_delta,
    full_gradient,
    full_noise,
    low_rank_factors,
    low_rank_forward_delta,
    low_rank_gradient,
    low_rank_perturbation,
    low_rank_scale,
    noise_seed,
    perturbation_bytes,
    shape_fitness,
)


def test_factor_shapes_and_seed_determinism() -> None:
    a, b = low_rank_factors(5, 3, 2, seed=7)
    assert a.shape == (5, 2) and b.shape == (3, 2)
    a2, b2 = low_rank_factors(5, 3, 2, seed=7)
    assert torch.equal(a, a2) and torch.equal(b, b2)  # regenerated, never stored
    a3, _ = low_rank_factors(5, 3, 2, seed=8)
    assert not torch.equal(a, a3)
    assert full_noise(4, 6, seed=1).shape == (4, 6)
    assert low_rank_perturbation(a, b, sigma=0.1).shape == (5, 3)


def test_noise_seed_separates_nearby_inputs() -> None:
    seeds = {noise_seed(0, g, p, w) for g in range(3) for p in range(4) for w in range(5)}
    assert len(seeds) == 60
    assert noise_seed(1, 2, 3) == noise_seed(1, 2, 3)
    assert all(0 <= s < 2**63 for s in seeds)


def test_antithetic_pairs_share_noise_with_opposite_signs() -> None:
    assert [antithetic(i) for i in range(4)] == [(0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)]
    a, b = low_rank_factors(4, 4, 1, seed=3)
    plus = low_rank_perturbation(a, b, sigma=0.5, sign=1.0)
    minus = low_rank_perturbation(a, b, sigma=0.5, sign=-1.0)
    assert torch.equal(plus + minus, torch.zeros(4, 4))


def test_perturbation_by_hand_rank_two() -> None:
    # A = I, B = [[1, 2], [3, 4]]  ->  A B^T = [[1, 3], [2, 4]],  E = sigma / sqrt(2) * that
    a, b = torch.eye(2), torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    expected = 0.2 / math.sqrt(2) * torch.tensor([[1.0, 3.0], [2.0, 4.0]])
    assert torch.allclose(low_rank_perturbation(a, b, sigma=0.2), expected)
    assert low_rank_scale(0.2, 4, -1.0) == pytest.approx(-0.1)


def test_low_rank_forward_equals_dense_forward() -> None:
    a, b = low_rank_factors(6, 4, 3, seed=0)
    x = torch.randn(2, 5, 4)
    dense = x @ low_rank_perturbation(a, b, sigma=0.3, sign=-1.0).T
    got = low_rank_forward_delta(x, a, b, scale=low_rank_scale(0.3, 3, -1.0))
    assert torch.allclose(got, dense, atol=1e-6)


def test_update_on_a_2x2_example_by_hand() -> None:
    # one pair: a = [1, 2], b = [3, -1], sigma = 0.1, r = 1, fitness (+1, -1)
    # E_0 = 0.1 [[3, -1], [6, -2]], E_1 = -E_0
    # g = (1/2)(1 * E_0 + (-1) * (-E_0)) = E_0 ;  delta = lr sqrt(2) g
    a = torch.tensor([[1.0], [2.0]]).expand(2, 2, 1)
    b = torch.tensor([[3.0], [-1.0]]).expand(2, 2, 1)
    g = low_rank_gradient(torch.tensor([1.0, -1.0]), a, b, torch.tensor([1.0, -1.0]), sigma=0.1)
    e0 = torch.tensor([[0.3, -0.1], [0.6, -0.2]])
    assert torch.allclose(g, e0)
    delta = es_step_delta(g, lr=0.5, population=2)
    assert torch.allclose(delta, 0.5 * math.sqrt(2) * e0)
    # equal fitness in a pair cancels: no update
    zero = low_rank_gradient(torch.tensor([2.0, 2.0]), a, b, torch.tensor([1.0, -1.0]), sigma=0.1)
    assert torch.equal(zero, torch.zeros(2, 2))


def test_full_rank_gradient_by_hand() -> None:
    eps = torch.tensor([[1.0, 0.0], [0.0, -2.0]]).expand(2, 2, 2)
    g = full_gradient(torch.tensor([0.5, -0.5]), eps, torch.tensor([1.0, -1.0]), sigma=0.2)
    # (1/2)(0.5 * 0.2 eps + (-0.5)(-0.2 eps)) = 0.1 eps
    assert torch.allclose(g, 0.1 * eps[0])


def test_zscore_values() -> None:
    f = shape_fitness(torch.tensor([0.0, 1.0]), "zscore")
    # mean 0.5, population variance 0.25
    expected = torch.tensor([-0.5, 0.5]) / math.sqrt(0.25 + ZSCORE_EPS)
    assert torch.allclose(f, expected)
    assert torch.equal(shape_fitness(torch.ones(4)), torch.zeros(4))  # no spread: no update


def test_centered_rank_values_and_ties() -> None:
    f = shape_fitness(torch.tensor([3.0, 1.0, 2.0]), "centered_rank")
    assert torch.allclose(f, torch.tensor([0.5, -0.5, 0.0]))  # ranks 2, 0, 1 over (N - 1) = 2
    # ties share the mean of their ranks: [1, 1, 0, 2] -> ranks 1.5, 1.5, 0, 3 over 3
    f = shape_fitness(torch.tensor([1.0, 1.0, 0.0, 2.0]), "centered_rank")
    assert torch.allclose(f, torch.tensor([0.0, 0.0, -0.5, 0.5]))
    with pytest.raises(ValueError, match="unknown fitness shaping"):
        shape_fitness(torch.tensor([1.0, 2.0]), "rank")  # type: ignore[arg-type]


def test_perturbation_bytes_arithmetic() -> None:
    shapes = [(128, 512), (512, 128)]
    assert perturbation_bytes(shapes, rank=1, noise="low_rank") == 4 * 2 * 640
    assert perturbation_bytes(shapes, rank=1, noise="full") == 4 * 2 * 128 * 512


def _quadratic_es(shaping: str, generations: int = 200, n_pop: int = 256) -> tuple[float, float]:
    """ES on f(W) = -||W - W*||^2 for a 16 x 16 W (techniques.md section 18, test c):
    returns (initial loss, final loss); also checks E[g] points along the true gradient."""
    torch.manual_seed(0)
    target = torch.randn(16, 16)
    w = torch.zeros(16, 16)
    sigma, lr, rank = 0.05, 0.2, 1
    signs = torch.tensor([antithetic(i)[1] for i in range(n_pop)])
    first = float(((w - target) ** 2).sum())
    for gen in range(generations):
        pairs = [low_rank_factors(16, 16, rank, noise_seed(0, gen, p)) for p in range(n_pop // 2)]
        a = torch.stack([x[0] for x in pairs]).repeat_interleave(2, dim=0)
        b = torch.stack([x[1] for x in pairs]).repeat_interleave(2, dim=0)
        e = signs[:, None, None] * low_rank_scale(sigma, rank, 1.0) * a @ b.transpose(1, 2)
        scores = -((w + e - target) ** 2).sum(dim=(1, 2))
        g = low_rank_gradient(shape_fitness(scores, shaping), a, b, signs, sigma=sigma)  # type: ignore[arg-type]
        if gen == 0:
            true = -2 * (w - target)
            cos = float((g * true).sum() / (g.norm() * true.norm()))
            assert cos > 0.3, cos
        w = w + es_step_delta(g, lr=lr, population=n_pop)
    return first, float(((w - target) ** 2).sum())


@pytest.mark.parametrize("shaping", ["zscore", "centered_rank"])
def test_es_descends_a_quadratic(shaping: str) -> None:
    first, last = _quadratic_es(shaping)
    assert last < 0.5 * first, (first, last)
