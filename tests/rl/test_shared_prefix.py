"""The shared-prefix training forward gives the padded batch's log-probs and gradients (fp32)."""

from __future__ import annotations

import random

import pytest
import torch

from reasonrl.algos.logprobs import entropy_from_logits, selected_logprobs
from reasonrl.config import RLConfig
from reasonrl.rl.batching import collate, trim
from reasonrl.rl.logprobs import batch_logprobs, response_logprobs
from reasonrl.rl.shared_prefix import (
    group_micro_batches,
    prompt_groups,
    supports_shared_prefix,
    use_shared_prefix,
)
from reasonrl.rl.update import active_rows, policy_update
from reasonrl.types import Completion
from tests.rl.helpers import PAD, VOCAB, tiny_model


def _groups(b: int, g: int, seed: int) -> tuple[list[list[int]], list[Completion]]:
    """b prompts of unequal lengths (2..9), each repeated for g completions of lengths 0..10."""
    rng = random.Random(seed)
    prompts, comps = [], []
    for _ in range(b):
        prompt = [rng.randrange(1, VOCAB) for _ in range(rng.randint(2, 9))]
        for _ in range(g):
            ids = tuple(rng.randrange(1, VOCAB) for _ in range(rng.randint(0, 10)))
            lps = tuple(-rng.random() for _ in ids)
            prompts.append(prompt)
            comps.append(Completion(text="", token_ids=ids, logprobs=lps))
    return prompts, comps


def _padded_reference(model: torch.nn.Module, batch, temperature: float = 1.0):
    """The padded full-logits computation: every row's prompt, the LM head everywhere."""
    p, t = batch.prompt_len, batch.response_mask.shape[1]
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=batch.position_ids, use_cache=False).logits  # fmt: skip
    logits = logits[:, p - 1 : p - 1 + t] / temperature
    return selected_logprobs(logits, batch.input_ids[:, p : p + t]), entropy_from_logits(logits)


def test_prompt_groups_find_each_distinct_prompt() -> None:
    prompts, comps = _groups(3, 4, seed=0)
    batch = collate(prompts, comps, torch.zeros(12), pad_id=PAD)
    first, inverse = prompt_groups(batch.select(torch.tensor([5, 0, 9, 4, 11])))
    assert len(first) == 3
    rows = [5, 0, 9, 4, 11]
    groups = [rows[int(first[i])] // 4 for i in inverse]  # each row's group via its first row
    assert groups == [r // 4 for r in rows]


def test_group_micro_batches_keep_a_prompts_rows_together() -> None:
    prompts, comps = _groups(4, 4, seed=1)
    batch = collate(prompts, comps, torch.zeros(16), pad_id=PAD)
    chunks = group_micro_batches(batch, torch.arange(16), 8)
    assert sorted(torch.cat(chunks).tolist()) == list(range(16))
    for chunk in chunks:
        assert len({int(r) // 4 for r in chunk}) == 2  # two whole groups per chunk of 8


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_entropy_and_gradients_equal_the_padded_batch(temperature: float) -> None:
    model = tiny_model()
    assert supports_shared_prefix(model)
    prompts, comps = _groups(3, 4, seed=2)
    batch = trim(collate(prompts, comps, torch.zeros(12), pad_id=PAD))
    weights = torch.randn(batch.response_mask.shape, generator=torch.Generator().manual_seed(1))

    def grads(fn):
        model.zero_grad()
        logp, ent = fn()
        ((logp * weights + 0.1 * ent) * batch.response_mask).sum().backward()
        return logp.detach(), ent.detach(), [p.grad.clone() for p in model.parameters()]

    def shared():
        return response_logprobs(model, batch, temperature=temperature, entropy="loss",
                                 shared_prefix=True)  # fmt: skip

    def reference():
        return _padded_reference(model, batch, temperature)

    new, ref = grads(shared), grads(reference)
    mask = batch.response_mask > 0
    assert torch.allclose(new[0][mask], ref[0][mask], atol=1e-5)
    assert torch.allclose(new[1][mask], ref[1][mask], atol=1e-5)
    assert max(float(g.abs().max()) for g in ref[2]) > 0.1  # the comparison is not vacuous
    for g_new, g_ref in zip(new[2], ref[2], strict=True):
        assert torch.allclose(g_new, g_ref, atol=1e-5)


def _cfg(shared: str, micro_batch_size: int) -> RLConfig:
    return RLConfig.model_validate({
        "rollout": {"n": 4, "prompts_per_step": 3, "max_new_tokens": 16},
        "algo": {"shared_prefix": shared, "micro_batch_size": micro_batch_size},
        "optim": {"grad_clip": None},
        "model": {"dtype": "fp32"},
    })  # fmt: skip


@pytest.mark.parametrize("micro_batch_size", [12, 3])
def test_update_gradient_equals_the_padded_update_with_skipped_rows(micro_batch_size) -> None:
    prompts, comps = _groups(3, 4, seed=3)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0, 0.3, 0.0, -0.3, 2.0])
    batch = collate(prompts, comps, adv, pad_id=PAD)
    assert len(active_rows(batch, _cfg("off", 12).algo)) < 12  # zero-advantage rows skipped

    def grads(shared: str) -> torch.Tensor:
        model = tiny_model()
        cfg = _cfg(shared, micro_batch_size)
        assert use_shared_prefix(cfg.algo.shared_prefix, model, group_size=4) == (shared == "on")
        policy_update(model, torch.optim.SGD(model.parameters(), lr=0.0), batch, cfg)
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    on, off = grads("on"), grads("off")
    assert off.abs().max() > 0.01
    assert torch.allclose(on, off, atol=1e-5)


def test_batch_logprobs_equal_the_padded_batch() -> None:
    model = tiny_model()
    prompts, comps = _groups(4, 3, seed=4)
    batch = collate(prompts, comps, torch.zeros(12), pad_id=PAD)
    on = batch_logprobs(model, batch, micro_batch_size=5, shared_prefix=True)
    off = batch_logprobs(model, batch, micro_batch_size=5)
    assert torch.allclose(on, off, atol=1e-5)


def test_auto_turns_it_off_without_repeated_prompts_and_on_refuses_an_unsupported_model() -> None:
    model = tiny_model()
    assert use_shared_prefix("auto", model, group_size=8)
    assert not use_shared_prefix("auto", model, group_size=1)
    assert not use_shared_prefix("off", model, group_size=8)

    class NoCache(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=False):
            raise AssertionError

    assert not use_shared_prefix("auto", NoCache(), group_size=8)
    with pytest.raises(ValueError, match="shared_prefix=on"):
        use_shared_prefix("on", NoCache(), group_size=8)
