"""DR-IRL / GRPO-S coefficients against hand-computed values (techniques.md section 12)."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.advantages import grpo_advantages
from reasonrl.algos.drirl import (
    grpo_s_advantages,
    hardness_coefficients,
    hardness_from_similarity,
    responsiveness_coefficients,
)


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_hardness_from_similarity_by_hand() -> None:
    sims = [torch.tensor([[1.0, 0.0], [0.5, 0.2]]), torch.zeros(0, 3), torch.ones(2, 1)]
    # rows' best matches 1 and 0.5 -> W = 0.75 -> delta 0.25; no sentences -> 1; exact -> 0
    assert hardness_from_similarity(sims).tolist() == pytest.approx([0.25, 1.0, 0.0])
    with pytest.raises(ValueError, match="K, L"):
        hardness_from_similarity([torch.ones(3)])


def test_hardness_coefficients_are_relative_to_the_category_mean() -> None:
    delta = torch.tensor([0.0, 1.0, 0.3])
    cats = torch.tensor([0, 0, 1])
    got = hardness_coefficients(delta, cats).tolist()
    assert got == pytest.approx([sig(0) / sig(0.5), sig(1) / sig(0.5), 1.0])


def test_responsiveness_drops_a_planted_outlier() -> None:
    gaps = torch.tensor([1.0, 1.0, 1.0, 9.0, 0.0, 0.0])
    cats = torch.tensor([0, 0, 0, 0, 1, 1])
    # category 0: mean 3, squared deviations 4, 4, 4, 36 -> tau 5 drops the 9: Rbar_0 = 1;
    # category 1: Rbar_1 = 0; pooled kept gaps (1, 1, 1, 0, 0) -> Rbar_P = 0.6
    got = responsiveness_coefficients(gaps, cats, tau=5.0).tolist()
    a0, a1 = sig(0.6) / sig(1.0), sig(0.6) / sig(0.0)
    assert got == pytest.approx([a0] * 4 + [a1] * 2)
    # without the filter (tau large) the outlier moves category 0's mean to 3
    wide = responsiveness_coefficients(gaps, cats, tau=1e9).tolist()
    assert wide[0] == pytest.approx(sig(2.0) / sig(3.0))
    with pytest.raises(ValueError, match="tau"):
        responsiveness_coefficients(gaps, cats, tau=-1.0)


def test_grpo_s_with_unit_alpha_is_grpo_and_scales_otherwise() -> None:
    scores = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.0, 1.0, 1.0]])
    base = grpo_advantages(scores)
    assert torch.equal(grpo_s_advantages(scores, torch.ones_like(scores)), base)
    alpha = torch.tensor([[0.5] * 4, [2.0] * 4])
    assert torch.allclose(grpo_s_advantages(scores, alpha), alpha * base)
    with pytest.raises(ValueError, match="must match"):
        grpo_s_advantages(scores, torch.ones(2))


def test_joint_coefficient_is_below_each_factor_when_both_are() -> None:
    a_d = hardness_coefficients(torch.tensor([0.0, 1.0]), torch.tensor([0, 0]))[0]
    a_m = responsiveness_coefficients(torch.tensor([2.0, 0.0]), torch.tensor([0, 1]), tau=9.0)[0]
    assert a_d < 1 and a_m < 1 and a_d * a_m < min(a_d, a_m)
