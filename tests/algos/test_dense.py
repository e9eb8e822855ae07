"""Clip / Delta dense step rewards (arXiv 2410.15115), against hand-derived tables."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.algos.dense import (
    clip_step_rewards,
    delta_step_rewards,
    refine_step_rewards,
    step_token_rewards,
)

T = torch.tensor


def test_clip_table() -> None:
    # min(r - eta, 0) with eta = 0.9: [1.0, 0.5, 0.9] -> [0, -0.4, 0]; padding -> 0
    out = clip_step_rewards(T([[1.0, 0.5, 0.9, 7.0]]), T([[True, True, True, False]]), eta=0.9)
    torch.testing.assert_close(out, T([[0.0, -0.4, 0.0, 0.0]]))


def test_delta_table() -> None:
    # [0.9, 0.5, 0.2] -> [0.9 - 0.5, 0.5 - 0.2, 0.2]; the padded row's last real step keeps r_K
    scores = T([[0.9, 0.5, 0.2], [1.0, 0.3, 5.0]])
    valid = T([[True, True, True], [True, True, False]])
    out = delta_step_rewards(scores, valid)
    torch.testing.assert_close(out, T([[0.4, 0.3, 0.2], [0.7, 0.3, 0.0]]))


def test_clip_delta_is_delta_of_clip() -> None:
    # eta = 1: [1, 0, 1] -> clip [0, -1, 0] -> delta [1, -1, 0]
    out = refine_step_rewards(T([[1.0, 0.0, 1.0]]), T([[True] * 3]), kind="clip_delta", eta=1.0)
    torch.testing.assert_close(out, T([[1.0, -1.0, 0.0]]))
    with pytest.raises(ValueError, match="unknown dense"):
        refine_step_rewards(T([[1.0]]), T([[True]]), kind="bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_constant_prm_farming_table(n: int) -> None:
    # techniques.md §2: a PRM giving 0.9 to every step; n repeated steps:
    # raw return 0.9 n (grows), Clip (eta = 0.9) return 0, Delta return 0.9 for every n
    scores, valid = torch.full((1, n), 0.9), torch.ones(1, n, dtype=torch.bool)
    assert refine_step_rewards(scores, valid, kind="raw").sum() == pytest.approx(0.9 * n)
    assert refine_step_rewards(scores, valid, kind="clip", eta=0.9).sum() == pytest.approx(0.0)
    assert refine_step_rewards(scores, valid, kind="delta").sum() == pytest.approx(0.9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_delta_return_from_every_step_is_its_score(r: list[float]) -> None:
    scores, valid = T([r]), torch.ones(1, len(r), dtype=torch.bool)
    out = delta_step_rewards(scores, valid)
    togo = out.flip(1).cumsum(1).flip(1)  # return from step t (gamma = 1)
    torch.testing.assert_close(togo, scores, atol=1e-5, rtol=0)


def test_step_token_rewards_places_and_sums() -> None:
    # row 0: steps end at tokens 1 and 3; row 1: two steps on token 0 add up, one past the
    # last valid token (2) moves to it; a padded step is dropped
    rewards = T([[0.5, -1.0, 9.0], [0.25, 0.25, 2.0]])
    ends = T([[1, 3, 0], [0, 0, 7]])
    valid = T([[True, True, False], [True, True, True]])
    mask = T([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])
    out = step_token_rewards(rewards, ends, valid, mask)
    torch.testing.assert_close(out, T([[0.0, 0.5, 0.0, -1.0], [0.5, 0.0, 2.0, 0.0]]))
    empty = step_token_rewards(rewards, ends, valid, torch.zeros(2, 4))
    assert empty.abs().sum() == 0
