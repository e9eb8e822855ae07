"""The response-only LM head (`logits_to_keep`) gives the full-logits values and gradients."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.logprobs import entropy_from_logits, selected_logprobs
from reasonrl.rl.batching import collate, trim
from reasonrl.rl.logprobs import accepts_logits_to_keep, response_logprobs
from tests.rl.helpers import PAD, VOCAB, fake_rollouts, tiny_model


def _reference(model: torch.nn.Module, batch, temperature: float):
    """The padded full-logits computation: the LM head at every position, then the slice."""
    p, t = batch.prompt_len, batch.response_mask.shape[1]
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=batch.position_ids, use_cache=False).logits  # fmt: skip
    logits = logits[:, p - 1 : p - 1 + t] / temperature
    return selected_logprobs(logits, batch.input_ids[:, p : p + t]), entropy_from_logits(logits)


def _gpt2() -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                     pad_token_id=PAD, attn_pdrop=0, resid_pdrop=0, embd_pdrop=0)  # fmt: skip
    return GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("make", [tiny_model, _gpt2], ids=["qwen2", "gpt2"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_values_and_gradients_equal_the_full_logits(make, temperature: float) -> None:
    model = make()
    assert accepts_logits_to_keep(model)
    prompts, comps = fake_rollouts(6, seed=3)
    batch = trim(collate(prompts, comps, torch.zeros(6), pad_id=PAD))
    weights = torch.randn(batch.response_mask.shape, generator=torch.Generator().manual_seed(1))

    def grads(fn):
        model.zero_grad()
        logp, ent = fn()
        ((logp * weights + 0.1 * ent) * batch.response_mask).sum().backward()
        return logp.detach(), ent.detach(), [p.grad.clone() for p in model.parameters()]

    new = grads(lambda: response_logprobs(model, batch, temperature=temperature, entropy="loss"))
    ref = grads(lambda: _reference(model, batch, temperature))
    mask = batch.response_mask > 0
    assert torch.allclose(new[0][mask], ref[0][mask], atol=1e-5)
    assert torch.allclose(new[1][mask], ref[1][mask], atol=1e-5)
    for g_new, g_ref in zip(new[2], ref[2], strict=True):
        assert torch.allclose(g_new, g_ref, atol=1e-5)


def test_a_model_without_logits_to_keep_gets_full_logits() -> None:
    class Plain(torch.nn.Module):  # forward(input_ids, ...) only: the old transformers API
        def __init__(self) -> None:
            super().__init__()
            self.inner = tiny_model()

        def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              position_ids=position_ids, use_cache=use_cache)  # fmt: skip

    plain = Plain()
    assert not accepts_logits_to_keep(plain)
    prompts, comps = fake_rollouts(4, seed=5)
    batch = trim(collate(prompts, comps, torch.zeros(4), pad_id=PAD))
    with torch.no_grad():
        a, _ = response_logprobs(plain, batch)
        b, _ = response_logprobs(plain.inner, batch)
    mask = batch.response_mask > 0
    assert torch.allclose(a[mask], b[mask], atol=1e-6)
