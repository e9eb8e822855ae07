"""Reward shaping: Kimi length penalty, DAPO overlong, Clip/Delta step rewards."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.algos.shaping import (
    clip_step_rewards,
    delta_step_rewards,
    kimi_length_penalty,
    overlong_filter_mask,
    overlong_penalty,
)

T = torch.tensor


def test_kimi_length_penalty_tables():
    # techniques.md §1.2: lengths [100, 200, 300], correct [T, T, F] -> [0.5, 0.0, -0.5];
    # lengths [100, 300], correct [F, F] -> [min(0, 0.5) = 0, -0.5]; equal lengths -> 0.
    out = kimi_length_penalty(T([[100, 200, 300]]), T([[True, True, False]]))
    torch.testing.assert_close(out, T([[0.5, 0.0, -0.5]]))
    out = kimi_length_penalty(T([[100, 300]]), T([[False, False]]))
    torch.testing.assert_close(out, T([[0.0, -0.5]]))
    out = kimi_length_penalty(T([[50, 50]]), T([[True, False]]))
    torch.testing.assert_close(out, T([[0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(B, G\)"):
        kimi_length_penalty(T([1, 2]), T([True, False]))


def test_overlong_penalty_table():
    # techniques.md §13: L_max 20480, buffer 4096: lengths {16384, 18432, 20480} -> {0, -0.5, -1};
    # shorter -> 0; factor 0.5 halves; beyond L_max clamped at -factor.
    lens = T([10000, 16384, 18432, 20480, 30000])
    out = overlong_penalty(lens, max_len=20480, buffer=4096)
    torch.testing.assert_close(out, T([0.0, 0.0, -0.5, -1.0, -1.0]))
    torch.testing.assert_close(
        overlong_penalty(lens, max_len=20480, buffer=4096, factor=0.5), out * 0.5
    )
    with pytest.raises(ValueError, match="buffer"):
        overlong_penalty(lens, max_len=10, buffer=0)


def test_overlong_filter_mask():
    torch.testing.assert_close(overlong_filter_mask(T([True, False, True])), T([0.0, 1.0, 0.0]))


def test_clip_and_delta_fake_prm():
    # fake PRM returns 0.9 for each of n repeated steps: raw return 0.9 n grows with n;
    # Clip (eta 0.9) -> 0 for every n; Delta -> return 0.9 from step 0 for every n.
    for n in (1, 3, 10):
        r = torch.full((1, n), 0.9)
        assert clip_step_rewards(r, eta=0.9).sum().item() == pytest.approx(0.0)
        assert delta_step_rewards(r).sum().item() == pytest.approx(0.9)
    # clip hand values: [0.95, 0.5] with eta 0.9 -> [min(0.05, 0), -0.4] = [0, -0.4]
    torch.testing.assert_close(clip_step_rewards(T([[0.95, 0.5]]), eta=0.9), T([[0.0, -0.4]]))


def test_delta_respects_padding():
    # steps [0.2, 0.7, pad]: delta [0.2 - 0.7, 0.7, 0] = [-0.5, 0.7, 0].
    out = delta_step_rewards(T([[0.2, 0.7, 0.3]]), T([[1, 1, 0]]))
    torch.testing.assert_close(out, T([[-0.5, 0.7, 0.0]]))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12), st.integers(0, 4))
def test_delta_return_telescopes(values, pad):
    # property (techniques.md §2): sum_{k >= t} delta_k = r_t for every valid step t.
    r = T([values + [0.5] * pad])
    mask = T([[1.0] * len(values) + [0.0] * pad])
    d = delta_step_rewards(r, mask)
    to_go = d.flip(-1).cumsum(-1).flip(-1)
    torch.testing.assert_close(to_go[0, : len(values)], r[0, : len(values)], atol=1e-5, rtol=0)
