"""KL estimators (incl. straight-through k1+/k3+), reward folding, KL-coefficient controllers."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.kl import (
    KL_KINDS,
    AdaptiveKLController,
    FixedKLController,
    fold_kl_into_rewards,
    kl_penalty,
)

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
    for kind in KL_KINDS:
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


def _value_and_grad(lp: float, ref: float, kind: str, clamp: float | None = 10.0):
    x = T([[lp]], requires_grad=True)
    out = kl_penalty(x, T([[ref]]), kind, clamp=clamp)  # type: ignore[arg-type]
    out.sum().backward()
    assert x.grad is not None
    return out.item(), x.grad.item()


def test_straight_through_hand_values():
    # x = log pi - log pi_ref = 0.5: values k1 = 0.5, k3 = e^-0.5 - 0.5 = 0.10653;
    # gradients k1: 1, k3: 1 - e^-x = 0.39347, k2 (and so k1+, k3+): x = 0.5.
    assert _value_and_grad(0.0, -0.5, "k1") == pytest.approx((0.5, 1.0))
    assert _value_and_grad(0.0, -0.5, "k3") == pytest.approx(
        (math.exp(-0.5) - 0.5, 1 - math.exp(-0.5)), rel=1e-6
    )
    assert _value_and_grad(0.0, -0.5, "k1+") == pytest.approx((0.5, 0.5))
    assert _value_and_grad(0.0, -0.5, "k3+") == pytest.approx((math.exp(-0.5) - 0.5, 0.5), rel=1e-6)
    # x = -1: k1+ value -1, k3+ value e - 2 = 0.71828, both gradient -1 (k3's would be 1 - e).
    assert _value_and_grad(-1.0, 0.0, "k1+") == pytest.approx((-1.0, -1.0))
    assert _value_and_grad(-1.0, 0.0, "k3+") == pytest.approx((math.e - 2, -1.0), rel=1e-6)


def test_straight_through_clamps_act_on_the_value_only():
    # x = -30: k3+ value clamped as k3 (exponent at 20, output at 10), gradient still x = -30
    # (verl: k2 - sg[k2] + sg[k3]); k1+ value clamped at -10 by our output clamp, or -30 without.
    assert _value_and_grad(-30.0, 0.0, "k3+") == pytest.approx((10.0, -30.0))
    v, g = _value_and_grad(-30.0, 0.0, "k3+", clamp=None)
    assert (v, g) == pytest.approx((math.exp(20) - 21, -30.0), rel=1e-5)
    assert _value_and_grad(-30.0, 0.0, "k1+") == pytest.approx((-10.0, -30.0))
    assert _value_and_grad(-30.0, 0.0, "k1+", clamp=None) == pytest.approx((-30.0, -30.0))


def test_straight_through_matches_k1_k3_values_and_k2_gradients():
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(3, 6, generator=gen)
    ref = torch.randn(3, 6, generator=gen)
    grad_k2 = None
    for kind in ("k2", "k1+", "k3+"):
        lp = base.clone().requires_grad_(True)
        out = kl_penalty(lp, ref, kind)
        if kind != "k2":
            # bitwise the plain estimator's value: k2 - sg[k2] adds an exact 0
            assert torch.equal(out.detach(), kl_penalty(base, ref, kind[:-1]))  # type: ignore[arg-type]
        out.sum().backward()
        assert lp.grad is not None
        grad_k2 = lp.grad if grad_k2 is None else grad_k2
        torch.testing.assert_close(lp.grad, base - ref)
        torch.testing.assert_close(lp.grad, grad_k2)
    # folded into rewards (no gradient) k3+ is k3
    m = torch.ones(3, 6)
    r = torch.zeros(3, 6)
    torch.testing.assert_close(
        fold_kl_into_rewards(r, kl_penalty(base, ref, "k3+"), m, 0.1),
        fold_kl_into_rewards(r, kl_penalty(base, ref, "k3"), m, 0.1),
    )


def test_fixed_kl_controller():
    ctrl = FixedKLController(0.04)
    ctrl.update(current_kl=5.0, n_steps=1000)
    assert ctrl.value == 0.04
    assert ctrl.state_dict() == {"value": 0.04}
    other = FixedKLController(0.5)
    other.load_state_dict(ctrl.state_dict())
    assert other.value == 0.04
    with pytest.raises(ValueError, match=">= 0"):
        FixedKLController(-0.1)


def test_adaptive_kl_controller_hand_values():
    # target 0.1, horizon 10000 (verl's defaults), n_steps 256 sequences per batch:
    # kl 0.11 -> e = 0.1 -> mult = 1 + 0.1 * 256 / 10000 = 1.00256; beta 0.2 -> 0.200512.
    ctrl = AdaptiveKLController(init_coef=0.2, target=0.1, horizon=10000)
    ctrl.update(current_kl=0.11, n_steps=256)
    assert ctrl.value == pytest.approx(0.2 * 1.00256, rel=1e-12)
    # kl 1.0 -> e = 9 clipped to 0.2 -> mult = 1.00512
    ctrl.update(current_kl=1.0, n_steps=256)
    assert ctrl.value == pytest.approx(0.2 * 1.00256 * 1.00512, rel=1e-12)
    # kl 0 -> e = -1 clipped to -0.2 -> mult = 0.99488
    ctrl.update(current_kl=0.0, n_steps=256)
    assert ctrl.value == pytest.approx(0.2 * 1.00256 * 1.00512 * 0.99488, rel=1e-12)
    # kl on target, or n_steps 0 -> unchanged
    before = ctrl.value
    ctrl.update(current_kl=0.1, n_steps=256)
    ctrl.update(current_kl=5.0, n_steps=0)
    assert ctrl.value == pytest.approx(before, rel=1e-12)
    # half the error: kl 0.05 -> e = -0.5 -> clipped -0.2; kl 0.09 -> e = -0.1 -> mult 1 - 0.01
    c2 = AdaptiveKLController(1.0, target=0.1, horizon=100)
    c2.update(0.09, n_steps=10)
    assert c2.value == pytest.approx(0.99, rel=1e-12)
    c2.update(0.05, n_steps=10)
    assert c2.value == pytest.approx(0.99 * 0.98, rel=1e-12)
    # error_clip is a named convention: 0.5 lets kl 0.05 through as e = -0.5
    c3 = AdaptiveKLController(1.0, target=0.1, horizon=100, error_clip=0.5)
    c3.update(0.05, n_steps=10)
    assert c3.value == pytest.approx(0.95, rel=1e-12)


def test_adaptive_kl_controller_state_and_errors():
    ctrl = AdaptiveKLController(0.2, target=0.1, horizon=1000)
    for kl in (0.3, 0.05, 0.2):
        ctrl.update(kl, n_steps=64)
    state = ctrl.state_dict()
    assert state == {"value": ctrl.value} and isinstance(state["value"], float)
    resumed = AdaptiveKLController(0.2, target=0.1, horizon=1000)
    resumed.load_state_dict(state)
    assert resumed.value == ctrl.value
    ctrl.update(0.3, n_steps=64)
    resumed.update(0.3, n_steps=64)
    assert resumed.value == ctrl.value  # the resumed run continues exactly
    # a current_kl given as a 0-d tensor is accepted (float())
    ctrl.update(torch.tensor(0.1), n_steps=64)  # type: ignore[arg-type]
    for bad in ({"init_coef": -1.0}, {"target": 0.0}, {"horizon": 0}, {"error_clip": -0.1}):
        kwargs = {"init_coef": 0.1, "target": 0.1, "horizon": 10, **bad}
        with pytest.raises(ValueError):
            AdaptiveKLController(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        ctrl.update(float("nan"), n_steps=1)
    with pytest.raises(ValueError, match="n_steps"):
        ctrl.update(0.1, n_steps=-1)
    with pytest.raises(ValueError, match="too large"):
        AdaptiveKLController(0.1, target=0.1, horizon=10).update(0.0, n_steps=50)
