"""RepExp's elliptical bonus and greedy selection (arXiv 2510.11686) on hand-worked 2-D sets."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.repexp import (
    diverse_subset,
    elliptical_bonus,
    group_elliptical_bonus,
    sparse_projection,
)


def test_uncentred_hand_example_outlier_scores_higher():
    # Sigma = I + e1 e1^T + 2 e2 e2^T = diag(2, 3): b = (1/2, 1/3, 1/3)
    phi = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    b = elliptical_bonus(phi, lam=1.0, center=False)
    assert b.tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 3])
    assert elliptical_bonus(phi, lam=1.0, center=False, sqrt=True).tolist() == pytest.approx(
        [math.sqrt(1 / 2), math.sqrt(1 / 3), math.sqrt(1 / 3)]
    )
    # leave-one-out: Sigma_{-1} = diag(1, 3) -> 1; Sigma_{-2} = diag(2, 2) -> 1/2
    loo = elliptical_bonus(phi, lam=1.0, center=False, leave_one_out=True)
    assert loo.tolist() == pytest.approx([1.0, 0.5, 0.5])


def test_centred_hand_example():
    # mean (1, 0); centred (-1,0) x3 and (3,0): Sigma = diag(12 + 1, 1) -> 1/13 and 9/13
    phi = torch.tensor([[0.0, 0.0]] * 3 + [[4.0, 0.0]])
    b = elliptical_bonus(phi, lam=1.0)
    assert b.tolist() == pytest.approx([1 / 13] * 3 + [9 / 13])
    assert b.argmax() == 3 and ((b >= 0) & (b < 1)).all()


def test_reference_buffer_and_explicit_inverse():
    ref = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # Sigma = diag(3, 1)
    b = elliptical_bonus(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), ref, lam=1.0, center=False)
    assert b.tolist() == pytest.approx([1 / 3, 1.0])  # the unexplored direction scores 1
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(6, 3, generator=g, dtype=torch.float64)
    h = phi - phi.mean(0)
    inv = torch.linalg.inv(0.1 * torch.eye(3, dtype=torch.float64) + h.T @ h)
    want = torch.einsum("kd,de,ke->k", h, inv, h)
    assert torch.allclose(elliptical_bonus(phi, lam=0.1), want)
    with pytest.raises(ValueError):
        elliptical_bonus(phi, ref.double(), leave_one_out=True)


def test_group_bonus_is_gated_on_a_correct_rollout():
    phi = torch.tensor([[[0.0, 0.0]] * 3 + [[4.0, 0.0]]] * 2)  # (2, 4, 2)
    correct = torch.tensor([[False, False, False, False], [False, True, False, False]])
    b = group_elliptical_bonus(phi, correct, lam=1.0)
    assert b[0].tolist() == [0.0] * 4
    assert b[1].tolist() == pytest.approx([1 / 13] * 3 + [9 / 13])
    assert torch.equal(group_elliptical_bonus(phi, None, lam=1.0)[0], b[1])


def test_diverse_subset_picks_the_spread_out_points():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    # 8 points in cluster 0, 1 each in the others: the spread-out ones are 8 and 9
    pts = torch.cat([centres[0] + 0.1 * torch.randn(8, 2, generator=g), centres[1:]])
    chosen = diverse_subset(pts, 3, lam=0.01, first=0)
    assert chosen[0] == 0 and sorted(chosen[1:]) == [8, 9]
    assert len(set(diverse_subset(pts, 10, first=3))) == 10
    with pytest.raises(ValueError):
        diverse_subset(pts, 0)


def test_sherman_morrison_scores_match_the_explicit_inverse():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(12, 4, generator=g, dtype=torch.float64)
    chosen = diverse_subset(pts, 5, lam=0.5, first=2)
    for t in range(1, 5):  # each pick maximises h^T (lam I + sum_{chosen} h h^T)^{-1} h
        s = pts[chosen[:t]]
        inv = torch.linalg.inv(0.5 * torch.eye(4, dtype=torch.float64) + s.T @ s)
        scores = torch.einsum("nd,de,ne->n", pts, inv, pts)
        scores[chosen[:t]] = -1
        assert int(scores.argmax()) == chosen[t]


def test_sparse_projection_preserves_norms_in_expectation():
    g = torch.Generator().manual_seed(0)
    p = sparse_projection(256, 64, generator=g)
    assert p.shape == (256, 64) and (p == 0).float().mean() > 0.8
    x = torch.randn(200, 256, generator=g, dtype=torch.float64)
    ratio = ((x @ p).norm(dim=1) ** 2 / x.norm(dim=1) ** 2).mean()
    assert 0.8 < float(ratio) < 1.2
