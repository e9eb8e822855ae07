"""Value loss and explained variance: hand-derived values, gradients and verl's formulas."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.aggregate import aggregate
from reasonrl.algos.value import explained_variance, value_loss

T = torch.tensor


def test_unclipped_loss_is_half_squared_error() -> None:
    v = T([[1.0, 2.0, 7.0]])
    mask = T([[1.0, 1.0, 0.0]])
    loss, m = value_loss(v, torch.zeros_like(v), torch.zeros_like(v), mask, clip_range=None)
    assert torch.allclose(loss[:, :2], T([[0.5, 2.0]]))
    assert float(m["value_loss"]) == pytest.approx(1.25)  # (0.5 + 2) / 2, token 3 masked
    assert float(m["value_error"]) == pytest.approx(1.5)
    assert float(m["values_mean"]) == pytest.approx(1.5)
    assert float(m["vf_clipfrac"]) == 0.0


def test_clipped_loss_hand_values_and_gradient() -> None:
    # c = 0.5, V_old = 0 everywhere, so V_clip = clamp(V, -0.5, 0.5):
    #  V=1,   R=2:  l1 = 1,    l2 = (0.5-2)^2 = 2.25 -> 0.5*2.25 = 1.125, clipped, grad 0
    #  V=1,   R=0:  l1 = 1,    l2 = 0.25             -> 0.5,             grad V-R = 1
    #  V=0.3, R=2:  inside the band: l1 = l2 = 2.89  -> 1.445, not counted, grad -1.7
    #  V=-1,  R=-2: l1 = 1,    l2 = (-0.5+2)^2 = 2.25 -> 1.125, clipped, grad 0
    #  V=100 masked.
    v = T([[1.0, 1.0, 0.3, -1.0, 100.0]], requires_grad=True)
    ret = T([[2.0, 0.0, 2.0, -2.0, 0.0]])
    mask = T([[1.0, 1.0, 1.0, 1.0, 0.0]])
    loss, m = value_loss(v, torch.zeros_like(ret), ret, mask, clip_range=0.5)
    assert torch.allclose(loss[:, :4], T([[1.125, 0.5, 1.445, 1.125]]))
    assert float(m["vf_clipfrac"]) == pytest.approx(0.5)
    assert float(m["value_loss"]) == pytest.approx((1.125 + 0.5 + 1.445 + 1.125) / 4)
    (loss * mask).sum().backward()
    assert torch.allclose(v.grad, T([[0.0, 1.0, -1.7, 0.0, 0.0]]))


def test_clip_range_larger_than_any_move_equals_unclipped() -> None:
    g = torch.Generator().manual_seed(0)
    v, old, ret = (torch.randn(3, 6, generator=g) for _ in range(3))
    mask = (torch.rand(3, 6, generator=g) > 0.3).float()
    clipped, m = value_loss(v, old, ret, mask, clip_range=1e6)
    plain, _ = value_loss(v, old, ret, mask, clip_range=None)
    assert torch.equal(clipped, plain)
    assert float(m["vf_clipfrac"]) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_matches_verl_compute_value_loss(seed: int) -> None:
    # verl/trainer/ppo/core_algos.py::compute_value_loss, token-mean:
    #   vpredclipped = clip_by_value(vpreds, values - c, values + c)
    #   vf_loss = 0.5 * masked_mean(max((vpreds-R)^2, (vpredclipped-R)^2))
    #   vf_clipfrac = masked_mean(gt(l2, l1))
    g = torch.Generator().manual_seed(seed)
    v, old, ret = (torch.randn(4, 7, generator=g) for _ in range(3))
    mask = (torch.rand(4, 7, generator=g) > 0.3).float()
    c = 0.5
    l1 = (v - ret) ** 2
    l2 = (torch.clamp(v, old - c, old + c) - ret) ** 2
    ref_loss = 0.5 * (torch.maximum(l1, l2) * mask).sum() / mask.sum()
    ref_frac = ((l2 > l1).float() * mask).sum() / mask.sum()
    loss, m = value_loss(v, old, ret, mask, clip_range=c)
    assert torch.allclose(aggregate(loss, mask, "token_mean"), ref_loss, atol=1e-6)
    assert torch.allclose(m["value_loss"], ref_loss, atol=1e-6)
    assert torch.allclose(m["vf_clipfrac"], ref_frac)


def test_value_loss_rejects_bad_inputs() -> None:
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="clip_range"):
        value_loss(x, x, x, x, clip_range=0.0)
    with pytest.raises(ValueError, match="returns"):
        value_loss(x, x, torch.zeros(2, 4), x, clip_range=None)


def test_explained_variance_hand_values() -> None:
    r = T([[1.0, 2.0, 3.0, 4.0]])
    mask = torch.ones_like(r)
    assert float(explained_variance(r, r, mask)) == pytest.approx(1.0)
    assert float(explained_variance(r + 5.0, r, mask)) == pytest.approx(1.0)  # a bias is ignored
    assert float(explained_variance(torch.full_like(r, 2.5), r, mask)) == pytest.approx(0.0)
    # R - V = [-3, -1, 1, 3]: Var 5; Var R = 1.25 -> 1 - 4 = -3
    assert float(explained_variance(T([[4.0, 3.0, 2.0, 1.0]]), r, mask)) == pytest.approx(-3.0)


def test_explained_variance_ignores_masked_tokens_even_nan() -> None:
    r = T([[1.0, 2.0, float("nan")], [3.0, 4.0, 1e9]])
    v = T([[1.0, 2.0, 5.0], [3.0, 4.0, float("nan")]])
    mask = T([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    assert float(explained_variance(v, r, mask)) == pytest.approx(1.0)


def test_explained_variance_undefined_is_nan() -> None:
    r = T([[2.0, 2.0, 2.0]])
    assert math.isnan(float(explained_variance(torch.zeros_like(r), r, torch.ones_like(r))))
    one = T([[1.0, 0.0, 0.0]])
    assert math.isnan(float(explained_variance(torch.zeros_like(r), r * T([[1, 3, 5]]), one)))


@pytest.mark.parametrize("seed", range(3))
def test_explained_variance_matches_verl_metric(seed: int) -> None:
    # verl/trainer/ppo/metric_utils.py: 1 - var(R - V) / (var(R) + 1e-5) over valid tokens
    g = torch.Generator().manual_seed(seed)
    r, v = torch.randn(5, 9, generator=g), torch.randn(5, 9, generator=g)
    mask = torch.rand(5, 9, generator=g) > 0.4
    ref = 1.0 - torch.var(r[mask] - v[mask]) / (torch.var(r[mask]) + 1e-5)
    assert float(explained_variance(v, r, mask.float())) == pytest.approx(float(ref), abs=1e-4)


def test_explained_variance_of_rounding_noise_is_nan() -> None:
    """All rewards equal: returns differ by float rounding only; no -1e13 in the logs."""
    r = T([[0.1 + 0.2, 0.3, 0.3 + 1e-8]])
    v = T([[0.0, 0.1, 0.2]])
    assert math.isnan(float(explained_variance(v, r, torch.ones_like(r))))
