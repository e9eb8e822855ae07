"""Chunked selected-token log-probs and entropy: exactness, gradients, bf16, chunking."""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.algos.logprobs import entropy_from_logits, selected_logprobs


def _ref(logits, tokens, temperature=1.0):
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    chosen = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    ent = -(logp.exp() * logp).sum(-1)
    return chosen, ent


def test_hand_values_uniform():
    # uniform logits over V = 4: log p = -log 4, entropy = log 4.
    logits = torch.zeros(1, 2, 4)
    tokens = torch.tensor([[0, 3]])
    torch.testing.assert_close(selected_logprobs(logits, tokens), torch.full((1, 2), -math.log(4)))
    torch.testing.assert_close(entropy_from_logits(logits), torch.full((1, 2), math.log(4)))


@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_matches_full_log_softmax_for_any_chunk(chunk):
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 11, generator=gen) * 4
    tokens = torch.randint(0, 11, (3, 5), generator=gen)
    chosen, ent = _ref(logits, tokens)
    torch.testing.assert_close(selected_logprobs(logits, tokens, chunk_size=chunk), chosen)
    torch.testing.assert_close(entropy_from_logits(logits, chunk_size=chunk), ent)


def test_temperature():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 7, generator=gen)
    tokens = torch.randint(0, 7, (2, 3), generator=gen)
    chosen, ent = _ref(logits, tokens, temperature=0.7)
    torch.testing.assert_close(selected_logprobs(logits, tokens, temperature=0.7), chosen)
    torch.testing.assert_close(entropy_from_logits(logits, temperature=0.7), ent)
    with pytest.raises(ValueError, match="temperature"):
        selected_logprobs(logits, tokens, temperature=0.0)


def test_gradients_match_reference():
    gen = torch.Generator().manual_seed(2)
    base = torch.randn(2, 4, 9, generator=gen)
    tokens = torch.randint(0, 9, (2, 4), generator=gen)
    a = base.clone().requires_grad_(True)
    b = base.clone().requires_grad_(True)
    (
        selected_logprobs(a, tokens, chunk_size=3) + entropy_from_logits(a, chunk_size=5)
    ).sum().backward()
    chosen, ent = _ref(b, tokens)
    (chosen + ent).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


def test_bf16_under_autocast_returns_fp32():
    gen = torch.Generator().manual_seed(3)
    logits32 = torch.randn(2, 3, 50, generator=gen) * 3
    logits = logits32.to(torch.bfloat16)
    tokens = torch.randint(0, 50, (2, 3), generator=gen)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = selected_logprobs(logits, tokens)
        ent = entropy_from_logits(logits)
    assert out.dtype == torch.float32 and ent.dtype == torch.float32
    chosen, e = _ref(logits.float(), tokens)  # exact on the bf16 values
    torch.testing.assert_close(out, chosen)
    torch.testing.assert_close(ent, e)


def test_shape_errors():
    with pytest.raises(ValueError, match="tokens"):
        selected_logprobs(torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
