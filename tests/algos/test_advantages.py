"""Outcome-level advantages: hand-derived values, conventions and invariants."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.algos.advantages import (
    ADVANTAGE_KWARGS,
    ADVANTAGES,
    advantage_kwargs,
    broadcast_to_tokens,
    dr_grpo_advantages,
    grpo_advantages,
    kimi_advantages,
    lite_ppo_advantages,
    passk_advantages,
    reinforce_pp_baseline_advantages,
    remax_advantages,
    rloo_advantages,
)

T = torch.tensor


def test_grpo_group_unbiased_hand_values():
    # group [1, 0, 0, 0]: mean 0.25; unbiased var = (0.75^2 + 3 * 0.25^2) / 3 = 0.75 / 3 = 0.25,
    # std 0.5 -> A = [0.75, -0.25, -0.25, -0.25] / 0.5 = [1.5, -0.5, -0.5, -0.5] (eps = 0).
    adv = grpo_advantages(T([[1.0, 0, 0, 0]]), eps=0.0)
    torch.testing.assert_close(adv, T([[1.5, -0.5, -0.5, -0.5]]))


def test_grpo_biased_std_differs_by_sqrt_4_over_3():
    # population var = 0.75 / 4 = 0.1875, std = sqrt(3)/4 = 0.4330 -> A_0 = 0.75 / 0.4330 = sqrt(3).
    # unbiased/biased std ratio for G = 4 is sqrt(4/3), so biased advantages are sqrt(4/3) larger.
    s = T([[1.0, 0, 0, 0]])
    biased = grpo_advantages(s, std_unbiased=False, eps=0.0)
    assert biased[0, 0].item() == pytest.approx(math.sqrt(3.0), rel=1e-6)
    unbiased = grpo_advantages(s, std_unbiased=True, eps=0.0)
    torch.testing.assert_close(biased / unbiased, torch.full((1, 4), math.sqrt(4 / 3)))


def test_grpo_eps_is_added_to_std():
    # std 0.5 + eps 0.5 = 1 -> A = centred scores.
    adv = grpo_advantages(T([[1.0, 0, 0, 0]]), eps=0.5)
    torch.testing.assert_close(adv, T([[0.75, -0.25, -0.25, -0.25]]))


def test_grpo_all_equal_group_is_zero():
    # Tricks-or-Traps example: [1, 1, 1, 1] -> centred 0 -> 0 / (0 + eps) = 0.
    assert torch.equal(grpo_advantages(T([[1.0, 1, 1, 1]])), torch.zeros(1, 4))


def test_grpo_batch_scope_uses_std_of_all_scores():
    # groups [1, 0] and [1, 1]; group means 0.5, 1 -> centred [0.5, -0.5], [0, 0].
    # all scores [1, 0, 1, 1]: mean 0.75,
    # unbiased var = (3 * 0.0625 + 0.5625) / 3 = 0.25 -> std 0.5.
    adv = grpo_advantages(T([[1.0, 0], [1, 1]]), std_scope="batch", eps=0.0)
    torch.testing.assert_close(adv, T([[1.0, -1.0], [0.0, 0.0]]))
    torch.testing.assert_close(lite_ppo_advantages(T([[1.0, 0], [1, 1]]), eps=0.0), adv)


def test_group_std_amplifies_small_variance_vs_batch_std():
    # Tricks-or-Traps: group [1, 1, 1, 0.9] has tiny std; batch std over a mixed batch is larger,
    # so the group-normalised advantage is much bigger in magnitude than the batch-normalised one.
    s = T([[1.0, 1, 1, 0.9], [1.0, 0, 1, 0]])
    g = grpo_advantages(s, std_scope="group", eps=0.0)
    b = grpo_advantages(s, std_scope="batch", eps=0.0)
    # group std of [1,1,1,.9] = 0.05 -> A_3 = -0.075 / 0.05 = -1.5
    assert g[0, 3].item() == pytest.approx(-1.5, rel=1e-5)
    assert abs(b[0, 3].item()) < 0.25 * abs(g[0, 3].item())


def test_dr_grpo_and_kimi_no_std():
    # Dr.GRPO example: [1, 0, 0, 0] -> [0.75, -0.25, -0.25, -0.25].
    expected = T([[0.75, -0.25, -0.25, -0.25]])
    torch.testing.assert_close(dr_grpo_advantages(T([[1.0, 0, 0, 0]])), expected)
    torch.testing.assert_close(kimi_advantages(T([[1.0, 0, 0, 0]])), expected)
    torch.testing.assert_close(grpo_advantages(T([[1.0, 0, 0, 0]]), std_scope="none"), expected)


def test_singleton_group_rules():
    s = T([[2.0], [-1.0]])
    assert torch.equal(grpo_advantages(s), torch.zeros(2, 1))  # default "zero"
    # verl: mean 0, std 1 -> (s - 0) / (1 + eps)
    torch.testing.assert_close(grpo_advantages(s, singleton="raw", eps=1e-6), s / (1 + 1e-6))
    torch.testing.assert_close(dr_grpo_advantages(s, singleton="raw"), s)
    assert torch.equal(rloo_advantages(s), torch.zeros(2, 1))
    with pytest.raises(ValueError, match="singleton"):
        grpo_advantages(s, singleton="bad")  # type: ignore[arg-type]


def test_rloo_hand_values():
    # [1, 0, 0, 0]: A_0 = 1 - mean(0,0,0) = 1; A_1 = 0 - mean(1,0,0) = -1/3.
    adv = rloo_advantages(T([[1.0, 0, 0, 0]]))
    torch.testing.assert_close(adv, T([[1.0, -1 / 3, -1 / 3, -1 / 3]]))


def test_remax_hand_values():
    # greedy baseline 0.5 for prompt 0, 1.0 for prompt 1.
    adv = remax_advantages(T([[1.0, 0.0], [1.0, 0.0]]), T([0.5, 1.0]))
    torch.testing.assert_close(adv, T([[0.5, -0.5], [0.0, -1.0]]))
    with pytest.raises(ValueError, match="greedy_scores"):
        remax_advantages(T([[1.0, 0.0]]), T([0.5, 1.0]))


def test_reinforce_pp_baseline_hand_values():
    # groups [1, 0], [1, 1] -> centred [0.5, -0.5, 0, 0]; mean 0, unbiased var = 0.5 / 3,
    # std = 0.40825 -> [1.2247, -1.2247, 0, 0] (eps 1e-8 inside the sqrt is negligible).
    adv = reinforce_pp_baseline_advantages(T([[1.0, 0], [1, 1]]))
    r = 0.5 / math.sqrt(0.5 / 3)
    torch.testing.assert_close(adv, T([[r, -r], [0.0, 0.0]]))
    # token_counts weights: sequence 0 has 3 tokens, others 1 -> weighted mean
    # (3 * 0.5 - 0.5) / 6 = 1/6, so the whitened values shift.
    w = reinforce_pp_baseline_advantages(T([[1.0, 0], [1, 1]]), token_counts=T([[3.0, 1], [1, 1]]))
    assert w[0, 0] < r and (w * T([[3.0, 1], [1, 1]])).sum().abs() < 1e-5


def test_passk_hand_values():
    # G = 4, one correct, k = 2: Rbar = 1 - C(3,2)/C(4,2) = 0.5, sigma = 0.5,
    # A_pos = 0.5 / 0.5 = 1; A_neg = (0.5 - C(2,1)/C(3,1)) / 0.5 = (0.5 - 2/3) / 0.5 = -1/3.
    adv = passk_advantages(T([[1.0, 0, 0, 0]]), k=2)
    torch.testing.assert_close(adv, T([[1.0, -1 / 3, -1 / 3, -1 / 3]]))
    # all wrong or all right -> sigma 0 -> 0
    assert torch.equal(passk_advantages(T([[0.0, 0, 0, 0], [1, 1, 1, 1]]), k=2), torch.zeros(2, 4))
    # k = G: a negative sample's k-subset always contains the positive -> A_neg = (1-1-0)/sigma
    # but Rbar = 1 -> sigma 0 -> 0
    assert torch.equal(passk_advantages(T([[1.0, 0, 0]]), k=3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="1 <= k <= G"):
        passk_advantages(T([[1.0, 0]]), k=3)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=2, max_size=8), min_size=1, max_size=4))
def test_passk_k1_equals_grpo_population_std(rows):
    g = min(len(r) for r in rows)
    s = torch.tensor([r[:g] for r in rows], dtype=torch.float32)
    torch.testing.assert_close(
        passk_advantages(s, k=1),
        grpo_advantages(s, std_unbiased=False, eps=0.0),
        atol=1e-5,
        rtol=1e-5,
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(2, 8),
    st.sampled_from(["group", "batch", "none"]),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_group_relative_advantages_sum_to_zero(b, g, scope, unbiased, seed):
    gen = torch.Generator().manual_seed(seed)
    s = torch.randn(b, g, generator=gen)
    for adv in (
        grpo_advantages(s, std_scope=scope, std_unbiased=unbiased),
        rloo_advantages(s),
        dr_grpo_advantages(s),
    ):
        torch.testing.assert_close(adv.sum(dim=1), torch.zeros(b), atol=1e-4, rtol=0)


def test_broadcast_to_tokens():
    adv = T([[1.0, -1.0]])
    mask = T([[1, 1, 0], [1, 0, 0]])
    torch.testing.assert_close(broadcast_to_tokens(adv, mask), T([[1.0, 1, 0], [-1, 0, 0]]))
    with pytest.raises(ValueError, match="sequences"):
        broadcast_to_tokens(adv, torch.ones(3, 2))


def test_registry_and_kwargs_picker():
    assert (
        set(ADVANTAGES)
        == set(ADVANTAGE_KWARGS)
        == {"grpo", "dr_grpo", "lite_ppo", "rloo", "kimi", "reinforce_pp_baseline", "passk"}
    )
    settings_ = {"std_scope": "batch", "std_unbiased": False, "adv_eps": 0.0, "loss": "x"}
    kw = advantage_kwargs("grpo", settings_)
    assert kw == {"std_scope": "batch", "std_unbiased": False, "eps": 0.0}
    s = torch.rand(2, 4)
    for name, fn in ADVANTAGES.items():
        extra = {"k": 2} if name == "passk" else advantage_kwargs(name, settings_)
        assert fn(s, **extra).shape == (2, 4)
    with pytest.raises(KeyError, match="unknown advantage"):
        advantage_kwargs("nope", {})


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(B, G\)"):
        grpo_advantages(torch.zeros(4))
    with pytest.raises(ValueError, match="std_scope"):
        grpo_advantages(torch.zeros(1, 2), std_scope="global")  # type: ignore[arg-type]
