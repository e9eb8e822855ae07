"""Loss aggregation: hand-derived weights per mode and exact gradient accumulation."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.aggregate import AGG_MODES, aggregate, global_normalizer, masked_mean
from reasonrl.algos.policy_loss import ppo_clip

T = torch.tensor

# Two sequences of lengths 2 and 8 with unit per-token loss (Tricks-or-Traps / Dr.GRPO example).
MASK = torch.zeros(2, 8)
MASK[0, :2] = 1
MASK[1, :] = 1


def _token_weights(mode, **kw):
    loss = torch.ones(2, 8, requires_grad=True)
    aggregate(loss, MASK, mode, **kw).backward()
    return loss.grad


def test_token_mean_weights_each_token_equally():
    # 10 valid tokens -> every token weight 1/10, value 1.
    g = _token_weights("token_mean")
    torch.testing.assert_close(g, MASK / 10)
    assert aggregate(torch.ones(2, 8), MASK, "token_mean").item() == pytest.approx(1.0)


def test_seq_mean_token_mean_upweights_short_sequences_4x():
    # seq-mean: weight 1/(2*2) = 1/4 per token of seq 0, 1/(2*8) = 1/16 for seq 1: ratio 4.
    g = _token_weights("seq_mean_token_mean")
    assert g[0, 0].item() == pytest.approx(0.25) and g[1, 0].item() == pytest.approx(1 / 16)
    assert aggregate(torch.ones(2, 8), MASK, "seq_mean_token_mean").item() == pytest.approx(1.0)


def test_seq_mean_token_sum_and_token_sum():
    # token sum per sequence [2, 8] -> seq mean 5; token_sum = 10; weights 1/2 and 1.
    assert aggregate(torch.ones(2, 8), MASK, "seq_mean_token_sum").item() == pytest.approx(5.0)
    assert aggregate(torch.ones(2, 8), MASK, "token_sum").item() == pytest.approx(10.0)
    torch.testing.assert_close(_token_weights("seq_mean_token_sum"), MASK / 2)


def test_seq_mean_token_sum_norm_dr_grpo_equal_weights():
    # Dr.GRPO: 1 / (G * L_const) with G = 2 sequences; default const = T = 8 -> 10 / 16.
    assert aggregate(torch.ones(2, 8), MASK, "seq_mean_token_sum_norm").item() == pytest.approx(
        10 / 16
    )
    # explicit const 100 -> 10 / 200; every token weighted equally (unlike seq_mean_token_mean)
    g = _token_weights("seq_mean_token_sum_norm", const=100.0)
    torch.testing.assert_close(g, MASK / 200)


def test_empty_rows_and_nan_padding():
    # a fully masked row (overlong-filtered) neither counts as a sequence nor leaks NaN.
    loss = T([[1.0, 3.0], [float("nan"), float("inf")]])
    mask = T([[1.0, 1.0], [0.0, 0.0]])
    assert aggregate(loss, mask, "seq_mean_token_mean").item() == pytest.approx(2.0)
    assert aggregate(loss, mask, "seq_mean_token_sum").item() == pytest.approx(4.0)
    assert aggregate(loss, mask, "token_mean").item() == pytest.approx(2.0)
    assert aggregate(loss, torch.zeros(2, 2), "token_mean").item() == 0.0


def test_global_normalizer_values_and_errors():
    assert global_normalizer(MASK, "token_mean").item() == 10
    assert global_normalizer(MASK, "token_sum").item() == 1
    assert global_normalizer(MASK, "seq_mean_token_mean").item() == 2
    assert global_normalizer(MASK, "seq_mean_token_sum_norm", const=50).item() == 100
    with pytest.raises(ValueError, match="unknown aggregation mode"):
        aggregate(torch.ones(2, 8), MASK, "token-mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ"):
        aggregate(torch.ones(2, 7), MASK, "token_mean")


def _setup(seed=0):
    gen = torch.Generator().manual_seed(seed)
    n, t, d = 8, 6, 5
    feats = torch.randn(n, t, d, generator=gen)
    old = torch.randn(n, t, generator=gen) * 0.1
    adv = torch.randn(n, t, generator=gen)
    lengths = T([6, 1, 3, 5, 2, 6, 4, 2])
    mask = (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).float()
    w0 = torch.randn(d, generator=gen) * 0.1
    return feats, old, adv, mask, w0


def _grad(w0, feats, old, adv, mask, mode, normalizer, const, splits):
    w = w0.clone().requires_grad_(True)
    for idx in splits:
        lp = feats[idx] @ w  # (n_mb, T)
        loss_mat, _ = ppo_clip(lp, old[idx], adv[idx], mask[idx], clip_low=0.2, clip_high=0.28)
        aggregate(loss_mat, mask[idx], mode, normalizer=normalizer, const=const).backward()
    return w.grad


@pytest.mark.parametrize("mode", AGG_MODES)
def test_gradient_accumulation_equals_full_batch(mode):
    feats, old, adv, mask, w0 = _setup()
    const = 16.0
    full = _grad(w0, feats, old, adv, mask, mode, None, const, [torch.arange(8)])
    norm = global_normalizer(mask, mode, const=const)
    micro = [torch.arange(i, i + 2) for i in range(0, 8, 2)]
    accum = _grad(w0, feats, old, adv, mask, mode, norm, const, micro)
    torch.testing.assert_close(accum, full, atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean_token_mean"])
def test_naive_per_microbatch_mean_is_wrong(mode):
    # The bug this API prevents: averaging per-micro-batch means (normaliser from each micro-batch,
    # then dividing by 4) over-weights micro-batches with few tokens.
    feats, old, adv, mask, w0 = _setup()
    full = _grad(w0, feats, old, adv, mask, mode, None, None, [torch.arange(8)])
    micro = [torch.arange(i, i + 2) for i in range(0, 8, 2)]
    naive = _grad(w0, feats, old, adv, mask, mode, None, None, micro) / 4
    if mode == "token_mean":
        assert (naive - full).abs().max() > 1e-3
    else:  # each micro-batch holds 2 non-empty sequences, so the naive mean happens to be exact
        torch.testing.assert_close(naive, full, atol=1e-6, rtol=0)


def test_masked_mean():
    assert masked_mean(T([1.0, 5.0, 3.0]), T([1, 0, 1])).item() == 2.0
    assert masked_mean(T([1.0]), T([0])).item() == 0.0


def test_masked_row_mean_is_nan_for_an_empty_row() -> None:
    from reasonrl.algos.aggregate import masked_row_mean

    x = torch.tensor([[1.0, 3.0, float("nan")], [2.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    out = masked_row_mean(x, mask)
    assert out[0] == 2.0 and torch.isnan(out[1])
