"""EFT up-scaling (arXiv 2310.12962) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.eft import eft_logprobs


def test_hand_computed_two_tokens():
    # p_L = (1/2, 1/2), p_ft = (3/4, 1/4), p_base = (1/4, 3/4): delta = (log 3, -log 3)
    # numerator: (1/2 * 3, 1/2 / 3) = (3/2, 1/6) -> normalised (9/10, 1/10)
    lp_l = torch.tensor([0.5, 0.5]).log()
    lp_ft = torch.tensor([0.75, 0.25]).log()
    lp_sb = torch.tensor([0.25, 0.75]).log()
    out = eft_logprobs(lp_l, lp_ft, lp_sb)
    assert torch.allclose(out.exp(), torch.tensor([0.9, 0.1]), atol=1e-6)
    # beta = 1/2: numerator (1/2 * sqrt 3, 1/2 / sqrt 3) -> (3/4, 1/4)
    half = eft_logprobs(lp_l, lp_ft, lp_sb, beta=0.5)
    assert torch.allclose(half.exp(), torch.tensor([0.75, 0.25]), atol=1e-6)


def test_raw_logits_equal_logprobs_and_output_is_normalised():
    g = torch.Generator().manual_seed(0)
    z = [torch.randn(3, 5, 7, generator=g) for _ in range(3)]
    from_logits = eft_logprobs(*z, beta=1.3)
    from_lp = eft_logprobs(*(torch.log_softmax(x, -1) for x in z), beta=1.3)
    assert torch.allclose(from_logits, from_lp, atol=1e-6)
    assert torch.allclose(from_logits.exp().sum(-1), torch.ones(3, 5), atol=1e-6)
    expected = torch.log_softmax(
        torch.log_softmax(z[0], -1)
        + 1.3 * (torch.log_softmax(z[1], -1) - torch.log_softmax(z[2], -1)),
        -1,
    )
    assert torch.allclose(from_logits, expected, atol=1e-6)


def test_beta_zero_is_large_base_and_same_small_pair_is_identity():
    g = torch.Generator().manual_seed(1)
    lp_l, lp_s = torch.randn(4, 9, generator=g), torch.randn(4, 9, generator=g)
    assert torch.equal(eft_logprobs(lp_l, lp_s, lp_s * 2, beta=0.0), torch.log_softmax(lp_l, -1))
    assert torch.allclose(eft_logprobs(lp_l, lp_s, lp_s), torch.log_softmax(lp_l, -1), atol=1e-6)


def test_identical_bases_give_the_small_fine_tuned_model():
    # large base == small base: EFT = pi_ft^S exactly (the paper's sanity check)
    g = torch.Generator().manual_seed(2)
    base, ft = torch.randn(6, generator=g), torch.randn(6, generator=g)
    assert torch.allclose(eft_logprobs(base, ft, base), torch.log_softmax(ft, -1), atol=1e-6)


def test_masked_tokens_stay_excluded_and_shapes_are_checked():
    inf = float("-inf")
    lp_l = torch.tensor([inf, math.log(0.5), math.log(0.5)])
    lp_s = torch.tensor([inf, math.log(0.2), math.log(0.8)])
    out = eft_logprobs(lp_l, lp_s, lp_s)
    assert out[0] == inf and torch.isfinite(out[1:]).all()
    with pytest.raises(ValueError, match="shapes differ"):
        eft_logprobs(torch.zeros(3), torch.zeros(4), torch.zeros(3))
