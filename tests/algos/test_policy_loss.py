"""Policy losses: hand-derived per-token values, gradients, metrics and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.algos.aggregate import aggregate
from reasonrl.algos.policy_loss import (
    LOSS_KWARGS,
    POLICY_LOSSES,
    cispo,
    gspo,
    kimi_omd,
    loss_kwargs,
    minirl,
    ppo_clip,
    reinforce,
)

T = torch.tensor
LOG = math.log


def _lp(ratios, old=-1.0):
    """Log-probs whose ratio to a constant old log-prob is `ratios`."""
    r = T(ratios, dtype=torch.float32)
    return (old + torch.log(r)).requires_grad_(True), torch.full_like(r, old)


def test_ppo_clip_hand_values_clip_higher():
    # DAPO example, clip_low 0.2, clip_high 0.28, A = +1:
    # r = 1.25 inside (1 + 0.28) -> loss -1.25; r = 1.3 clipped -> loss -1.28.
    # A = -1: r = 0.7 below 0.8 -> max(0.7, 0.8) = 0.8; r = 1.5 -> loss 1.5 (no upper clip for A<0).
    lp, old = _lp([[1.25, 1.3, 0.7, 1.5]])
    adv = T([[1.0, 1.0, -1.0, -1.0]])
    loss, met = ppo_clip(lp, old, adv, torch.ones(1, 4), clip_low=0.2, clip_high=0.28)
    torch.testing.assert_close(loss, T([[-1.25, -1.28, 0.8, 1.5]]))
    # clipped: token 1 (high), token 2 (low) -> 1/4 each
    assert met["clipfrac_high"].item() == pytest.approx(0.25)
    assert met["clipfrac_low"].item() == pytest.approx(0.25)
    assert met["clipfrac"].item() == pytest.approx(0.5)
    assert met["ratio_max"].item() == pytest.approx(1.5, rel=1e-5)
    # clipped tokens have zero gradient; unclipped: d(-A r)/d lp = -A r
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, T([[-1.25, 0.0, 0.0, 1.5]]))


def test_ppo_dual_clip():
    # A = -1, r = 5, c = 3: max(5, 0.8) = 5 -> min(5, 3) = 3; r = 2 stays 2.
    lp, old = _lp([[5.0, 2.0]])
    adv = T([[-1.0, -1.0]])
    loss, met = ppo_clip(lp, old, adv, torch.ones(1, 2), dual_clip=3.0)
    torch.testing.assert_close(loss, T([[3.0, 2.0]]))
    assert met["clipfrac_dual"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="dual_clip"):
        ppo_clip(lp, old, adv, torch.ones(1, 2), dual_clip=1.0)


def test_ppo_log_ratio_clamp():
    # log-ratio 50 clamped to 20 -> ratio e^20; with A = -1 the loss is e^20.
    lp = T([[49.0]], requires_grad=True)
    loss, _ = ppo_clip(lp, T([[-1.0]]), T([[-1.0]]), T([[1.0]]))
    assert loss.item() == pytest.approx(math.exp(20.0), rel=1e-5)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(0, 2**31 - 1),
    st.floats(0.01, 0.5),
    st.floats(0.01, 0.5),
)
def test_ppo_clip_equals_minus_mean_adv_at_ratio_one(n, t, seed, lo, hi):
    gen = torch.Generator().manual_seed(seed)
    lp = torch.randn(n, t, generator=gen)
    adv = torch.randn(n, t, generator=gen)
    mask = torch.ones(n, t)
    loss, met = ppo_clip(lp, lp.clone(), adv, mask, clip_low=lo, clip_high=hi, dual_clip=3.0)
    torch.testing.assert_close(aggregate(loss, mask, "token_mean"), -adv.mean())
    assert met["clipfrac"].item() == 0.0 and met["ppo_kl"].item() == 0.0


def test_gspo_sequence_ratio_and_gradient():
    # sequence 0: token log-ratios [0.1, -0.3] -> mean -0.1 -> s = e^-0.1 = 0.9048 for both tokens.
    old = T([[-1.0, -1.0, -1.0]])
    lp = (old + T([[0.1, -0.3, 7.0]])).requires_grad_(True)  # token 2 is padding
    mask = T([[1.0, 1.0, 0.0]])
    adv = T([[2.0, 2.0, 2.0]])
    loss, met = gspo(lp, old, adv, mask, clip_low=0.2, clip_high=0.2)
    s = math.exp(-0.1)
    torch.testing.assert_close(loss[:, :2], T([[-2 * s, -2 * s]]))
    # unclipped: d(-A s_t)/d lp_t = -A s (GSPO-token), so grad = -2 s per valid token
    aggregate(loss, mask, "seq_mean_token_mean").backward()
    torch.testing.assert_close(lp.grad[:, :2], T([[-s, -s]]))  # 1/|y| = 1/2
    assert met["clipfrac"].item() == 0.0


def test_gspo_clips_on_sequence_ratio():
    # mean log-ratio 0.01 -> s = 1.01005 > 1 + 4e-4 with A > 0: both tokens clipped.
    old = torch.zeros(1, 2)
    lp = T([[0.02, 0.0]], requires_grad=True)
    loss, met = gspo(lp, old, torch.ones(1, 2), torch.ones(1, 2))
    torch.testing.assert_close(loss, T([[-(1 + 4e-4), -(1 + 4e-4)]]))
    assert met["clipfrac_high"].item() == 1.0
    loss.sum().backward()
    assert torch.equal(lp.grad, torch.zeros(1, 2))


def test_cispo_weight_is_clipped_but_gradient_survives():
    # r = 1.5 with clip_high 0.2 -> weight 1.2 (no grad through it); loss = -1.2 * A * logp.
    lp, old = _lp([[1.5, 1.0]])
    adv = T([[1.0, -2.0]])
    loss, met = cispo(lp, old, adv, torch.ones(1, 2), clip_low=0.2, clip_high=0.2)
    expect = T([[-1.2 * 1.0 * lp[0, 0].item(), -1.0 * -2.0 * lp[0, 1].item()]])
    torch.testing.assert_close(loss, expect)
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, T([[-1.2, 2.0]]))  # PPO would give 0 for token 0
    assert met["clipfrac_high"].item() == 0.5


def test_cispo_and_reinforce_gradients_match_ppo_at_ratio_one():
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(3, 5, generator=gen)
    adv = torch.randn(3, 5, generator=gen)
    mask = torch.ones(3, 5)
    grads = []
    for fn in (ppo_clip, cispo, reinforce, minirl):
        lp = base.clone().requires_grad_(True)
        loss, _ = fn(lp, base.clone(), adv, mask)
        loss.sum().backward()
        grads.append(lp.grad)
    torch.testing.assert_close(grads[1], grads[0])
    torch.testing.assert_close(grads[2], grads[0])
    torch.testing.assert_close(grads[3], grads[0])


def test_minirl_masking_and_is_weights():
    # ratios [1.5, 0.5, 1.1], A [+1, -1, +1], clip 0.2/0.2: token 0 (A>0, r>1.2) and token 1
    # (A<0, r<0.8) are masked; token 2 loss = -1.1 * w with w = 0.5.
    lp, old = _lp([[1.5, 0.5, 1.1]])
    adv = T([[1.0, -1.0, 1.0]])
    w = T([[2.0, 2.0, 0.5]])
    loss, met = minirl(lp, old, adv, torch.ones(1, 3), clip_low=0.2, clip_high=0.2, is_weights=w)
    torch.testing.assert_close(loss, T([[0.0, 0.0, -0.55]]))
    assert met["clipfrac_low"].item() == pytest.approx(1 / 3)
    assert met["clipfrac_high"].item() == pytest.approx(1 / 3)
    assert met["clipfrac"].item() == pytest.approx(2 / 3)
    # masked tokens get no gradient; token 2: d(-w A r)/d lp = -w A r = -0.55
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, T([[0.0, 0.0, -0.55]]))
    # only the "wrong side" is masked: A>0 with r<0.8 and A<0 with r>1.2 keep -A r
    lp, old = _lp([[0.5, 1.5]])
    loss, met = minirl(lp, old, T([[1.0, -1.0]]), torch.ones(1, 2))
    torch.testing.assert_close(loss, T([[-0.5, 1.5]]))
    assert met["clipfrac"].item() == 0.0


def test_plain_reinforce_never_masks():
    # extreme ratios on both sides of the band, both advantage signs: loss = -A r everywhere and
    # gradient -A r (d r / d lp = r); no clip fraction. r = [e^5, e^-5, e^5, e^-5].
    ratios = [[math.exp(5.0), math.exp(-5.0), math.exp(5.0), math.exp(-5.0)]]
    lp, old = _lp(ratios)
    adv = T([[1.0, -1.0, -1.0, 1.0]])
    loss, met = reinforce(lp, old, adv, torch.ones(1, 4))
    expected = -adv * T(ratios)
    torch.testing.assert_close(loss, expected)
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, expected)
    assert met["clipfrac_low"].item() == met["clipfrac_high"].item() == 0.0
    # the registry entry is the plain loss and takes no clip settings
    assert POLICY_LOSSES["reinforce"] is reinforce and POLICY_LOSSES["minirl"] is minirl
    assert LOSS_KWARGS["reinforce"] == () and LOSS_KWARGS["minirl"] == ("clip_low", "clip_high")
    assert loss_kwargs("reinforce", {"clip_low": 0.2, "clip_high": 0.28}) == {}
    assert loss_kwargs("minirl", {"clip_low": 0.1, "clip_high": 0.28, "tau": 1.0}) == {
        "clip_low": 0.1,
        "clip_high": 0.28,
    }
    with pytest.raises(TypeError):
        reinforce(lp, old, adv, torch.ones(1, 4), clip_high=0.2)  # type: ignore[call-arg]
    # minirl on the same tokens masks tokens 0 (A>0, r>1.2) and 1 (A<0, r<0.8); tokens 2 and 3
    # are outside the band on the safe side and keep -A r = [e^5, -e^-5]
    lp2, old2 = _lp(ratios)
    loss2, met2 = minirl(lp2, old2, adv, torch.ones(1, 4))
    torch.testing.assert_close(loss2, T([[0.0, 0.0, ratios[0][2], -ratios[0][3]]]))
    assert met2["clipfrac"].item() == pytest.approx(0.5)


def test_kimi_omd_sequence_value_and_gradient():
    # one sequence, token log-ratios [0.2, 0.1] -> x = 0.3; A = 1, tau = 2:
    # l = -A x + tau/2 x^2 = -0.3 + 0.09 = -0.21 as a token sum.
    old = T([[-1.0, -2.0, 0.0]])
    lp = (old + T([[0.2, 0.1, 0.0]])).requires_grad_(True)
    mask = T([[1.0, 1.0, 0.0]])
    loss, _ = kimi_omd(lp, old, torch.ones(1, 3), mask, tau=2.0)
    total = aggregate(loss, mask, "token_sum")
    assert total.item() == pytest.approx(-0.21, abs=1e-6)
    total.backward()
    # d l / d lp_t = -A + tau x = -1 + 0.6 = -0.4 for each valid token
    torch.testing.assert_close(lp.grad, T([[-0.4, -0.4, 0.0]]))


def test_kimi_omd_at_theta_old_is_reinforce_gradient():
    # Kimi test from techniques.md: at theta = theta_i the squared term has zero gradient.
    base = torch.randn(2, 4)
    adv = torch.randn(2, 4)
    lp = base.clone().requires_grad_(True)
    loss, _ = kimi_omd(lp, base.clone(), adv, torch.ones(2, 4), tau=5.0)
    loss.sum().backward()
    torch.testing.assert_close(lp.grad, -adv)


def test_is_weights_multiply_and_detach():
    lp, old = _lp([[1.0, 1.0]])
    w = T([[0.5, 2.0]], requires_grad=True)
    for name in POLICY_LOSSES:
        loss, _ = POLICY_LOSSES[name](lp, old, T([[1.0, 1.0]]), torch.ones(1, 2))
        lw, _ = POLICY_LOSSES[name](lp, old, T([[1.0, 1.0]]), torch.ones(1, 2), is_weights=w)
        torch.testing.assert_close(lw, loss * w.detach())
        assert lw.grad_fn is not None
    lw.sum().backward()
    assert w.grad is None


def test_registry_metrics_keys_and_kwargs():
    keys = {
        "clipfrac_low",
        "clipfrac_high",
        "clipfrac_dual",
        "clipfrac",
        "ppo_kl",
        "approx_kl",
        "ratio_mean",
        "ratio_max",
    }
    lp = torch.randn(2, 3)
    settings_ = {"clip_low": 0.2, "clip_high": 0.28, "dual_clip": 3.0, "tau": 0.5, "agg": "x"}
    assert set(POLICY_LOSSES) == set(LOSS_KWARGS)
    for name, fn in POLICY_LOSSES.items():
        loss, met = fn(
            lp, lp + 0.1, torch.randn(2, 3), torch.ones(2, 3), **loss_kwargs(name, settings_)
        )
        assert loss.shape == (2, 3) and set(met) == keys
        assert all(v.dim() == 0 and not v.requires_grad for v in met.values())
    # approx_kl is k3 of the log-ratio -0.1: e^-0.1 - 1 + 0.1
    _, met = ppo_clip(lp, lp + 0.1, torch.zeros(2, 3), torch.ones(2, 3))
    assert met["approx_kl"].item() == pytest.approx(math.exp(-0.1) - 0.9, rel=1e-4)
    assert met["ppo_kl"].item() == pytest.approx(0.1, rel=1e-4)
    with pytest.raises(KeyError, match="unknown policy loss"):
        loss_kwargs("nope", {})


def test_metrics_ignore_padding_and_shape_errors():
    lp = T([[0.0, 30.0]])
    _, met = ppo_clip(lp, torch.zeros(1, 2), torch.ones(1, 2), T([[1.0, 0.0]]))
    assert met["ratio_max"].item() == 1.0 and met["ratio_mean"].item() == 1.0
    with pytest.raises(ValueError, match="advantages"):
        ppo_clip(lp, lp, torch.ones(2, 2), torch.ones(1, 2))
