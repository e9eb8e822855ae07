"""Preference losses on hand-computed pairs: value and gradient; DPO against its closed form."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.preference import (
    bradley_terry_loss,
    dpo_loss,
    expected_calibration_error,
    ipo_loss,
    pairwise_accuracy,
    preference_loss,
)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_bradley_terry_value_and_gradient() -> None:
    # pair 1: r_w=2, r_l=0 -> -log sigma(2) = log(1 + e^-2) = 0.126928
    # pair 2: r_w=0, r_l=1 -> -log sigma(-1) = log(1 + e) = 1.313262
    rw = torch.tensor([2.0, 0.0], requires_grad=True)
    rl = torch.tensor([0.0, 1.0], requires_grad=True)
    loss = bradley_terry_loss(rw, rl)
    assert loss.tolist() == pytest.approx([0.126928, 1.313262], abs=1e-6)
    loss.sum().backward()
    # dL/dr_w = -(1 - sigma(d)): -(1 - 0.880797) = -0.119203; -(1 - 0.268941) = -0.731059
    assert rw.grad.tolist() == pytest.approx([-0.119203, -0.731059], abs=1e-6)
    assert rl.grad.tolist() == pytest.approx([0.119203, 0.731059], abs=1e-6)


def test_bradley_terry_margin() -> None:
    # margin 1 on the gap 2: -log sigma(1) = 0.313262, gradient -(1 - sigma(1)) = -0.268941
    rw = torch.tensor([2.0], requires_grad=True)
    loss = bradley_terry_loss(rw, torch.tensor([0.0]), margin=1.0)
    assert float(loss.detach()) == pytest.approx(0.313262, abs=1e-6)
    loss.backward()
    assert float(rw.grad) == pytest.approx(-0.268941, abs=1e-6)
    # a huge gap is stable (softplus, not log(sigmoid))
    assert float(bradley_terry_loss(torch.tensor([-200.0]), torch.tensor([0.0]))) == 200.0


def test_dpo_closed_form_and_gradient() -> None:
    pc = torch.tensor([-10.0, -3.0], requires_grad=True)
    pr = torch.tensor([-12.0, -2.0], requires_grad=True)
    rc = torch.tensor([-11.0, -3.0])
    rr = torch.tensor([-11.0, -3.0])
    beta = 0.5
    loss = dpo_loss(pc, pr, rc, rr, beta=beta)
    # h = (pc - rc) - (pr - rr) = (1 - -1, 0 - 1) = (2, -1)
    want = [-math.log(sig(beta * 2)), -math.log(sig(beta * -1))]
    assert loss.tolist() == pytest.approx(want, abs=1e-6)
    loss.sum().backward()
    # dL/dpc = -beta * (1 - sigma(beta h)); dL/dpr = +beta * (1 - sigma(beta h))
    g = [-beta * (1 - sig(beta * 2)), -beta * (1 - sig(-beta))]
    assert pc.grad.tolist() == pytest.approx(g, abs=1e-6)
    assert pr.grad.tolist() == pytest.approx([-x for x in g], abs=1e-6)


def test_dpo_is_log2_at_reference() -> None:
    x = torch.randn(5)
    y = torch.randn(5)
    for eps in (0.0, 0.1, 0.3):
        loss = dpo_loss(x, y, x, y, beta=0.1, label_smoothing=eps)
        assert torch.allclose(loss, torch.full((5,), math.log(2)))


def test_cdpo_label_smoothing() -> None:
    # h = 2, beta = 1, eps = 0.25: 0.75 * log(1 + e^-2) + 0.25 * log(1 + e^2)
    z = torch.zeros(1)
    loss = dpo_loss(torch.tensor([2.0]), z, z, z, beta=1.0, label_smoothing=0.25)
    want = 0.75 * math.log1p(math.exp(-2)) + 0.25 * math.log1p(math.exp(2))
    assert float(loss) == pytest.approx(want, abs=1e-6)
    assert float(
        preference_loss("cdpo", torch.tensor([2.0]), z, z, z, beta=1.0, label_smoothing=0.25)
    ) == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError):
        dpo_loss(z, z, z, z, label_smoothing=0.5)


def test_ipo_value_and_gradient() -> None:
    # tau = 0.25 -> target 1/(2 tau) = 2; h = 1 -> (1 - 2)^2 = 1, dL/dpc = 2 (h - 2) = -2
    pc = torch.tensor([1.0], requires_grad=True)
    z = torch.zeros(1)
    loss = ipo_loss(pc, z, z, z, beta=0.25)
    assert float(loss) == pytest.approx(1.0)
    loss.backward()
    assert float(pc.grad) == pytest.approx(-2.0)
    # at the target the loss and gradient vanish
    assert float(ipo_loss(torch.tensor([2.0]), z, z, z, beta=0.25)) == 0.0


def test_accuracy_and_ece() -> None:
    assert pairwise_accuracy(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0])) == 0.5
    # perfectly calibrated: confidence 1 and always right -> 0
    assert expected_calibration_error(torch.tensor([1.0, 1.0])) == 0.0
    # p = 0.9 twice (right, conf .9) and p = 0.2 once (wrong, conf .8): bins of width 0.05
    # bin(.9): |1 - .9| * 2/3; bin(.8): |0 - .8| * 1/3 -> 0.0667 + 0.2667 = 0.3333
    ece = expected_calibration_error(torch.tensor([0.9, 0.9, 0.2]), bins=10)
    assert ece == pytest.approx(0.1 * 2 / 3 + 0.8 / 3, abs=1e-6)
