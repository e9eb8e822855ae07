"""Rollout/trainer importance weights and rejection masks."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.algos.correction import rejection_mask, rollout_is_weights

T = torch.tensor
LN2 = math.log(2.0)


def test_token_truncate_hand_values():
    # log-ratios [ln 3, -ln 2, 0] -> raw [3, 0.5, 1]; truncate at high 2 -> [2, 0.5, 1];
    # with low 0.6 -> [2, 0.6, 1]. Padding token -> 0.
    old = T([[math.log(3), -LN2, 0.0, 5.0]])
    roll = torch.zeros(1, 4)
    mask = T([[1, 1, 1, 0]])
    w, met = rollout_is_weights(old, roll, mask, high=2.0)
    torch.testing.assert_close(w, T([[2.0, 0.5, 1.0, 0.0]]))
    assert met["is_max"].item() == pytest.approx(3.0)
    assert met["is_frac_clipped"].item() == pytest.approx(1 / 3)
    w2, _ = rollout_is_weights(old, roll, mask, low=0.6, high=2.0)
    torch.testing.assert_close(w2, T([[2.0, 0.6, 1.0, 0.0]]))


def test_token_mask_mode():
    # same raw weights [3, 0.5, 1]; mask outside [0.6, 2] -> [0, 0, 1].
    old = T([[math.log(3), -LN2, 0.0]])
    w, _ = rollout_is_weights(old, torch.zeros(1, 3), torch.ones(1, 3), mode="mask", low=0.6)
    torch.testing.assert_close(w, T([[0.0, 0.0, 1.0]]))


def test_sequence_level():
    # seq 0: log-ratios [ln 2, ln 2] -> product 4 -> truncated to 2 on both tokens.
    # seq 1: [ln 2, -ln 2] -> 1. Mask mode drops seq 0 entirely.
    old = T([[LN2, LN2], [LN2, -LN2]])
    w, _ = rollout_is_weights(old, torch.zeros(2, 2), torch.ones(2, 2), level="sequence")
    torch.testing.assert_close(w, T([[2.0, 2.0], [1.0, 1.0]]))
    wm, _ = rollout_is_weights(
        old, torch.zeros(2, 2), torch.ones(2, 2), level="sequence", mode="mask"
    )
    torch.testing.assert_close(wm, T([[0.0, 0.0], [1.0, 1.0]]))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 6),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["token", "sequence"]),
    st.sampled_from(["truncate", "mask"]),
)
def test_weights_exactly_one_when_logprobs_agree(n, t, seed, level, mode):
    gen = torch.Generator().manual_seed(seed)
    lp = torch.randn(n, t, generator=gen)
    mask = (torch.rand(n, t, generator=gen) > 0.3).float()
    w, met = rollout_is_weights(lp, lp.clone(), mask, level=level, mode=mode, low=0.5, high=2.0)
    assert torch.equal(w[mask > 0], torch.ones(int(mask.sum())))
    assert met["mismatch_k3"].item() == 0.0


def test_no_gradient():
    old = torch.randn(2, 3, requires_grad=True)
    w, met = rollout_is_weights(old, torch.zeros(2, 3), torch.ones(2, 3))
    assert not w.requires_grad and not any(v.requires_grad for v in met.values())


def test_rejection_mask_levels():
    # seq 0 token ratios [4, 1] (log [ln4, 0]); seq 1 [1, 1].
    old = T([[2 * LN2, 0.0], [0.0, 0.0]])
    roll = torch.zeros(2, 2)
    mask = torch.ones(2, 2)
    # token, band [0.5, 2]: only token (0,0) rejected.
    keep, met = rejection_mask(old, roll, mask, level="token", high=2.0)
    torch.testing.assert_close(keep, T([[0.0, 1.0], [1.0, 1.0]]))
    assert met["frac_rejected_tokens"].item() == pytest.approx(0.25)
    assert met["frac_rejected_seqs"].item() == pytest.approx(0.5)
    # geometric: seq 0 mean log-ratio ln 2 -> 2, inside [0.5, 2] -> kept.
    keep, _ = rejection_mask(old, roll, mask, level="geometric", high=2.0)
    torch.testing.assert_close(keep, torch.ones(2, 2))
    # sequence: product 4 > 2 -> seq 0 rejected.
    keep, _ = rejection_mask(old, roll, mask, level="sequence", high=2.0)
    torch.testing.assert_close(keep, T([[0.0, 0.0], [1.0, 1.0]]))


def test_rejection_token_veto():
    # seq 0 has a token with ratio 1e-5 < veto 1e-4 -> whole sequence dropped despite geometric ok.
    old = T([[math.log(1e-5), math.log(1e5)], [0.0, 0.0]])
    keep, _ = rejection_mask(
        old, torch.zeros(2, 2), torch.ones(2, 2), level="geometric", high=2.0, token_veto=1e-4
    )
    torch.testing.assert_close(keep, T([[0.0, 0.0], [1.0, 1.0]]))


def test_errors():
    with pytest.raises(ValueError, match="level"):
        rollout_is_weights(torch.zeros(1, 2), torch.zeros(1, 2), torch.ones(1, 2), level="geo")
    with pytest.raises(ValueError, match="share a shape"):
        rollout_is_weights(torch.zeros(1, 2), torch.zeros(1, 3), torch.ones(1, 2))
