"""Reward shaping: Kimi length penalty, DAPO overlong penalty and filtering."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.shaping import (
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
