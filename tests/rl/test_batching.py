"""Collation: shapes, masks, and independence from padding."""

from __future__ import annotations

import torch

from reasonrl.rl.batching import collate, micro_batches, trim
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.types import Completion
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


def test_logprobs_are_the_tempered_softmax_of_the_previous_position() -> None:
    model = tiny_model()
    prompts, comps = fake_rollouts(3, seed=7)
    batch = collate(prompts, comps, torch.zeros(3), pad_id=PAD)
    p, t = batch.prompt_len, batch.response_mask.shape[1]
    with torch.no_grad():
        logits = model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
        ).logits[:, p - 1 : p - 1 + t]
        tokens = batch.input_ids[:, p : p + t, None]
        for temperature in (1.0, 2.0):
            want = torch.log_softmax(logits / temperature, -1).gather(-1, tokens)[..., 0]
            got, ent = response_logprobs(model, batch, temperature=temperature)
            assert ent is None  # entropy is opt-in
            assert torch.allclose(got, want, atol=1e-5), temperature
        default, _ = response_logprobs(model, batch)
        assert torch.allclose(default, torch.log_softmax(logits, -1).gather(-1, tokens)[..., 0])
        _, ent = response_logprobs(model, batch, entropy="metric")
        probs = torch.softmax(logits, -1)
        assert torch.allclose(ent, -(probs * probs.log()).sum(-1), atol=1e-5)


def test_left_padding_inside_one_batch_is_invisible() -> None:
    # two rows whose prompts differ in length: trim cannot remove the shorter one's padding
    model = tiny_model()
    prompts = [[5, 6, 7, 8, 9, 10], [11, 12]]
    comps = [Completion("", (3, 4, 5), (-1.0,) * 3), Completion("", (6, 7), (-1.0,) * 2)]
    # pad with a real token: its embedding is not zero, so only the mask can hide it
    batch = trim(collate(prompts, comps, torch.zeros(2), pad_id=13))
    assert batch.input_ids.shape[1] == 9 and batch.attention_mask[1, :4].sum() == 0
    alone = collate(prompts[1:], comps[1:], torch.zeros(1), pad_id=PAD)
    with torch.no_grad():
        together, _ = response_logprobs(model, batch)
        single, _ = response_logprobs(model, alone)
    assert torch.allclose(together[1, :2], single[0, :2], atol=1e-5)


def test_trim_cuts_shared_padding_on_both_sides_and_keeps_rows_aligned() -> None:
    prompts = [[1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13]]
    comps = [Completion("", (1,) * n, (-0.5,) * n) for n in (2, 9, 3)]
    batch = collate(prompts, comps, torch.tensor([1.0, 2.0, 3.0]), pad_id=PAD)
    sub = batch.select(torch.tensor([0, 2]))  # prompts of 4 (1 shared pad column), responses <= 3
    small = trim(sub)
    assert small.input_ids.shape == (2, 4 + 3)
    assert torch.equal(small.input_ids, sub.input_ids[:, 1:8])
    assert torch.equal(small.attention_mask, sub.attention_mask[:, 1:8])
    assert torch.equal(small.position_ids, sub.position_ids[:, 1:8])
    assert small.response_mask.shape == (2, 3)
    assert torch.equal(small.advantages, sub.advantages[:, :3])
    assert torch.equal(small.rollout_logprobs, sub.rollout_logprobs[:, :3])
    with_extra = sub.with_fields(old_logprobs=sub.rollout_logprobs * 2, ref_logprobs=sub.advantages)
    trimmed = trim(with_extra)
    assert torch.equal(trimmed.old_logprobs, with_extra.old_logprobs[:, :3])
    assert torch.equal(trimmed.ref_logprobs, with_extra.ref_logprobs[:, :3])
    # one-token responses give one response column; a batch without any keeps one too
    single = collate([[1, 2]], [Completion("", (5,), (-1.0,))], torch.zeros(1), pad_id=PAD)
    assert single.response_mask.shape == (1, 1) and single.input_ids.shape == (1, 3)
    empty = collate([[1, 2]], [Completion("", (), ())], torch.zeros(1), pad_id=PAD)
    assert trim(empty).response_mask.shape == (1, 1)


def test_token_advantages_and_loss_masks_are_masked() -> None:
    prompts = [[1, 2], [3]]
    comps = [Completion("", (4, 5, 6), (-1.0,) * 3), Completion("", (7,), (-2.0,))]
    adv = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 6.0, 9.0]])  # wider than T = 3
    batch = collate(prompts, comps, adv, pad_id=PAD, loss_mask=[[1.0, 0.0, 1.0], [1.0]])
    assert batch.response_mask.tolist() == [[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    assert batch.advantages.tolist() == [[1.0, 0.0, 3.0], [4.0, 0.0, 0.0]]
    assert batch.input_ids.dtype == torch.long and batch.attention_mask.dtype == torch.long
    assert batch.rollout_logprobs.tolist() == [[-1.0, -1.0, -1.0], [-2.0, 0.0, 0.0]]


def test_micro_batches_sort_by_length_stably() -> None:
    prompts = [[1], [1, 2, 3], [1], [1, 2], [1]]
    comps = [Completion("", (1,), (-1.0,))] * 5
    batch = collate(prompts, comps, torch.zeros(5), pad_id=PAD)
    parts = micro_batches(batch, torch.arange(5), 2)
    # lengths 2, 4, 2, 3, 2: ties keep their order
    assert [x.tolist() for x in parts] == [[0, 2], [4, 3], [1]]
