"""KL estimators: hand values, clamps, properties, reward folding."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.kl import fold_kl_into_rewards, kl_penalty

T = torch.tensor


def test_estimators_hand_values():
    # x = log pi - log pi_ref = 0.5.
    # k1 = 0.5; k2 = 0.125; abs = 0.5; k3 = exp(-0.5) - 1 + 0.5 = 0.10653.
    lp, ref = T([[0.0]]), T([[-0.5]])
    assert kl_penalty(lp, ref, "k1").item() == pytest.approx(0.5)
    assert kl_penalty(lp, ref, "k2").item() == pytest.approx(0.125)
    assert kl_penalty(lp, ref, "abs").item() == pytest.approx(0.5)
    assert kl_penalty(lp, ref, "k3").item() == pytest.approx(math.exp(-0.5) - 0.5, rel=1e-6)
    # negative x: k1 negative, k3 still >= 0: x = -1 -> e^1 - 1 - 1 = 0.71828
    assert kl_penalty(T([[-1.0]]), T([[0.0]]), "k1").item() == pytest.approx(-1.0)
    assert kl_penalty(T([[-1.0]]), T([[0.0]]), "k3").item() == pytest.approx(math.e - 2, rel=1e-6)


def test_clamps():
    # x = -30: k3 exponent clamped to 20 -> e^20 - 20 - 1, then output clamp 10.
    lp, ref = T([[-30.0]]), T([[0.0]])
    assert kl_penalty(lp, ref, "k3").item() == 10.0
    assert kl_penalty(lp, ref, "k3", clamp=None).item() == pytest.approx(
        math.exp(20) - 21, rel=1e-5
    )
    assert kl_penalty(lp, ref, "k1").item() == -10.0
    assert kl_penalty(lp, ref, "k1", clamp=None).item() == -30.0


def test_zero_when_equal_and_k3_nonnegative_and_gradients():
    lp = torch.randn(4, 7)
    for kind in ("k1", "k2", "k3", "abs"):
        assert torch.equal(kl_penalty(lp, lp.clone(), kind), torch.zeros(4, 7))
    ref = torch.randn(4, 7)
    assert (kl_penalty(lp, ref, "k3", clamp=None) >= 0).all()
    # k2 gradient wrt log pi is x (the reverse-KL score-function term)
    x = lp.clone().requires_grad_(True)
    kl_penalty(x, ref, "k2", clamp=None).sum().backward()
    torch.testing.assert_close(x.grad, lp - ref)


def test_k3_unbiased_monte_carlo():
    # p = softmax([0, 1]), q = softmax([1, 0]); E_p[k3] equals the exact KL(p || q).
    gen = torch.Generator().manual_seed(0)
    lp_all = torch.log_softmax(T([0.0, 1.0]), 0)
    lq_all = torch.log_softmax(T([1.0, 0.0]), 0)
    exact = (lp_all.exp() * (lp_all - lq_all)).sum().item()
    idx = torch.multinomial(lp_all.exp(), 200_000, replacement=True, generator=gen)
    est = kl_penalty(lp_all[idx], lq_all[idx], "k3", clamp=None).mean().item()
    assert est == pytest.approx(exact, rel=0.02)


def test_fold_and_errors():
    r = T([[0.0, 1.0, 0.0]])
    kl = T([[0.5, 0.5, 9.0]])
    out = fold_kl_into_rewards(r, kl, T([[1, 1, 0]]), coef=0.1)
    torch.testing.assert_close(out, T([[-0.05, 0.95, 0.0]]))
    with pytest.raises(ValueError, match="unknown KL"):
        kl_penalty(r, r, "k4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ref"):
        kl_penalty(r, torch.zeros(1, 2))
