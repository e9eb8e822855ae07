"""Token-level returns (REINFORCE++) and GAE: hand values, tool-token skipping, identities."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.advantages import (
    gae_advantages,
    reinforce_pp_advantages,
    reinforce_pp_returns,
    weighted_whiten,
)

T = torch.tensor


def test_returns_discounted_hand_values():
    # rewards [0, 0, 1], gamma 0.5 -> G = [0.25, 0.5, 1]; padding token gets 0.
    r = T([[0.0, 0, 1, 0]])
    m = T([[1, 1, 1, 0]])
    torch.testing.assert_close(reinforce_pp_returns(r, m, gamma=0.5), T([[0.25, 0.5, 1.0, 0.0]]))


def test_returns_skip_tool_tokens():
    # tokens 1, 2 are tool output (mask 0): they neither discount nor add reward (their reward 5 is
    # ignored). G_3 = 1, G_0 = 0 + 0.5 * G_3 = 0.5 (one discount step, not three).
    r = T([[0.0, 5.0, 5.0, 1.0]])
    m = T([[1, 0, 0, 1]])
    torch.testing.assert_close(reinforce_pp_returns(r, m, gamma=0.5), T([[0.5, 0.0, 0.0, 1.0]]))


def test_reinforce_pp_whitening_hand_values():
    # two sequences, outcome reward on last token, gamma 1: returns [1, 1] and [0, 0, 0].
    # valid returns {1, 1, 0, 0, 0}: mean 0.4, unbiased var = (2 * 0.36 + 3 * 0.16) / 4 = 0.3.
    r = T([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    m = T([[1, 1, 0], [1, 1, 1]])
    adv, ret = reinforce_pp_advantages(r, m)
    torch.testing.assert_close(ret, T([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))
    hi, lo = 0.6 / math.sqrt(0.3 + 1e-8), -0.4 / math.sqrt(0.3 + 1e-8)
    torch.testing.assert_close(adv, T([[hi, hi, 0.0], [lo, lo, lo]]))


def test_weighted_whiten_biased_and_shift():
    # x = [1, 3], weights 1: mean 2, population var 1 -> [-1, 1]; shift_mean=False adds 2 back.
    x = T([1.0, 3.0])
    w = torch.ones(2)
    torch.testing.assert_close(weighted_whiten(x, w, unbiased=False, eps=0.0), T([-1.0, 1.0]))
    torch.testing.assert_close(
        weighted_whiten(x, w, unbiased=False, eps=0.0, shift_mean=False), T([1.0, 3.0])
    )


def test_gae_hand_values():
    # gamma 1, lam 0.5, rewards [0, 1], values [0.5, 0.8]:
    # delta_1 = 1 + 0 - 0.8 = 0.2, A_1 = 0.2;
    # delta_0 = 0 + 0.8 - 0.5 = 0.3, A_0 = 0.3 + 0.5 * 0.2 = 0.4
    # returns = A + V = [0.9, 1.0].
    adv, ret = gae_advantages(
        T([[0.0, 1.0]]), T([[0.5, 0.8]]), T([[1, 1]]), gamma=1.0, lam=0.5, whiten=False
    )
    torch.testing.assert_close(adv, T([[0.4, 0.2]]))
    torch.testing.assert_close(ret, T([[0.9, 1.0]]))


def test_gae_lambda1_gamma1_is_return_minus_value():
    gen = torch.Generator().manual_seed(3)
    r = torch.randn(3, 6, generator=gen)
    v = torch.randn(3, 6, generator=gen)
    m = torch.ones(3, 6)
    adv, _ = gae_advantages(r, v, m, gamma=1.0, lam=1.0, whiten=False)
    to_go = r.flip(-1).cumsum(-1).flip(-1)
    torch.testing.assert_close(adv, to_go - v, atol=1e-5, rtol=1e-5)


def test_gae_skips_tool_tokens():
    # token 1 is tool output (mask 0, its value 9 and reward 7 ignored): for token 0 the next
    # state is token 2. gamma 1, lam 1: A_2 = 1 - 0.5 = 0.5; A_0 = 0 + V_2 - V_0 + A_2... i.e.
    # delta_0 = 0 + 0.5 - 0.2 = 0.3, A_0 = 0.3 + 0.5 = 0.8.
    adv, ret = gae_advantages(
        T([[0.0, 7.0, 1.0]]), T([[0.2, 9.0, 0.5]]), T([[1, 0, 1]]), gamma=1.0, lam=1.0, whiten=False
    )
    torch.testing.assert_close(adv, T([[0.8, 0.0, 0.5]]))
    torch.testing.assert_close(ret, T([[1.0, 0.0, 1.0]]))


def test_gae_whiten_zero_mean_unit_var_on_valid_tokens():
    gen = torch.Generator().manual_seed(0)
    r, v = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    m = T([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 0]])
    adv, _ = gae_advantages(r, v, m, gamma=1.0, lam=0.95)
    valid = adv[m > 0]
    assert valid.mean().abs() < 1e-5 and (valid.std() - 1).abs() < 1e-4
    assert torch.equal(adv[m == 0], torch.zeros(int((m == 0).sum())))


def test_shape_errors():
    with pytest.raises(ValueError, match="values"):
        gae_advantages(torch.zeros(2, 3), torch.zeros(2, 4), torch.ones(2, 3), gamma=1.0, lam=1.0)
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        reinforce_pp_returns(torch.zeros(3), torch.ones(3))
