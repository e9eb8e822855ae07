"""Collation: shapes, masks, and independence from padding."""

from __future__ import annotations

import torch

from reasonrl.rl.batching import collate, trim
from reasonrl.rl.logprobs import response_logprobs
from tests.rl.helpers import PAD, fake_rollouts, tiny_model


def test_collate_layout() -> None:
    prompts, comps = fake_rollouts(4)
    batch = collate(prompts, comps, torch.tensor([1.0, -1.0, 0.5, 0.0]), pad_id=PAD)
    p = batch.prompt_len
    assert p == max(len(x) for x in prompts)
    for i, (prompt, comp) in enumerate(zip(prompts, comps)):
        n = len(comp.token_ids)
        assert batch.input_ids[i, p - len(prompt) : p].tolist() == prompt
        assert batch.input_ids[i, p : p + n].tolist() == list(comp.token_ids)
        assert batch.response_mask[i].sum() == n
        # the first real token has position 0 whatever the left padding
        assert batch.position_ids[i, p - len(prompt)] == 0
        assert torch.allclose(batch.rollout_logprobs[i, :n], torch.tensor(comp.logprobs))
    # sequence advantages are broadcast onto real response tokens only
    assert torch.equal(batch.advantages[1], -batch.response_mask[1])


def test_logprobs_do_not_depend_on_padding() -> None:
    # Each sequence alone (no padding) must give the same response log-probs as inside a padded
    # batch: position ids and the attention mask make padding invisible.
    model = tiny_model()
    prompts, comps = fake_rollouts(5, seed=3)
    batch = collate(prompts, comps, torch.zeros(5), pad_id=PAD)
    with torch.no_grad():
        together, _ = response_logprobs(model, batch)
        for i in range(5):
            alone = collate([prompts[i]], [comps[i]], torch.zeros(1), pad_id=PAD)
            lp, _ = response_logprobs(model, alone)
            n = len(comps[i].token_ids)
            assert torch.allclose(lp[0, :n], together[i, :n], atol=1e-5)


def test_trim_removes_only_padding() -> None:
    model = tiny_model()
    prompts, comps = fake_rollouts(6, seed=5)
    batch = collate(prompts, comps, torch.zeros(6), pad_id=PAD)
    sub = batch.select(torch.tensor([0, 2]))
    small = trim(sub)
    assert small.input_ids.shape[1] <= sub.input_ids.shape[1]
    with torch.no_grad():
        a, _ = response_logprobs(model, sub)
        b, _ = response_logprobs(model, small)
    t = small.response_mask.shape[1]
    assert torch.allclose(a[:, :t] * sub.response_mask[:, :t], b * small.response_mask, atol=1e-5)
