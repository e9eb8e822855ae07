"""The critic: value alignment, learning, exact micro-batch accumulation, resume, clipping."""

from __future__ import annotations

import io
import math

import pytest
import torch

from reasonrl.algos.token_advantages import gae_advantages, outcome_token_rewards
from reasonrl.config import RLConfig
from reasonrl.rl.batching import collate
from reasonrl.rl.critic import Critic, ValueModel, decoder_of, response_values
from reasonrl.types import Batch
from tests.rl.helpers import PAD, fake_rollouts, tiny_model


def _critic(seed: int = 0, **kwargs: object) -> Critic:
    settings: dict = {"lr": 1e-2, "grad_clip": 1.0, "value_clip": 0.5, "micro_batch_size": 3}
    settings |= kwargs
    return Critic(ValueModel.from_causal_lm(tiny_model(seed)), dtype="fp32", **settings)


def _batch(n: int = 8, seed: int = 11) -> Batch:
    prompts, comps = fake_rollouts(n, seed=seed)
    return collate(prompts, comps, torch.zeros(n), pad_id=PAD)


def _returns(batch: Batch) -> torch.Tensor:
    """Outcome returns (gamma = lam = 1): each sequence's score on every one of its tokens."""
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])[: batch.input_ids.shape[0]]
    return scores[:, None] * batch.response_mask


def _grads(critic: Critic) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in critic.model.parameters() if p.grad is not None])


def test_values_are_the_hidden_state_before_each_response_token() -> None:
    # V[i, t] must be the head applied to the hidden state at the last prompt token + t, of the
    # sequence scored ALONE (no padding): the state before response token t is emitted.
    prompts, comps = fake_rollouts(6, seed=3)
    batch = collate(prompts, comps, torch.zeros(6), pad_id=PAD)
    critic = _critic(micro_batch_size=4)
    values = critic.values(batch)
    assert values.dtype == torch.float32 and values.shape == batch.response_mask.shape
    for i, (prompt, comp) in enumerate(zip(prompts, comps, strict=True)):
        ids = torch.tensor([list(prompt) + list(comp.token_ids)])
        ones = torch.ones_like(ids)
        with torch.no_grad():
            alone = critic.model(ids, ones, torch.arange(ids.shape[1])[None])[0]
        n = len(comp.token_ids)
        want = alone[len(prompt) - 1 : len(prompt) - 1 + n]
        assert torch.allclose(values[i, :n], want, atol=1e-5)
        assert torch.all(values[i, n:] == 0)  # masked tokens are 0


def test_first_value_sees_only_the_prompt() -> None:
    batch = _batch()
    critic = _critic()
    changed = batch.input_ids.clone()
    p = batch.prompt_len
    changed[:, p:] = torch.where(batch.attention_mask[:, p:] > 0, (changed[:, p:] % 31) + 1, PAD)
    other = batch.with_fields(input_ids=changed)
    a, b = critic.values(batch), critic.values(other)
    assert torch.allclose(a[:, 0], b[:, 0], atol=1e-6)  # V_0: prompt only
    two = batch.response_mask[:, 1] > 0
    assert not torch.allclose(a[two, 1], b[two, 1])  # V_1 reads response token 0


def test_response_values_slice_matches_logprob_columns() -> None:
    batch = _batch()
    model = ValueModel.from_causal_lm(tiny_model())
    with torch.no_grad():
        full = model(batch.input_ids, batch.attention_mask, batch.position_ids)
        sliced = response_values(model, batch)
    p, t = batch.prompt_len, batch.response_mask.shape[1]
    assert torch.equal(sliced, full[:, p - 1 : p - 1 + t])


def test_value_model_uses_the_trunk_not_the_lm_head() -> None:
    lm = tiny_model()
    model = ValueModel.from_causal_lm(lm)
    assert model.trunk is decoder_of(lm) is lm.model
    assert not any("lm_head" in name for name, _ in model.named_parameters())
    # small, seeded head init: same seed -> same head, values near 0
    again = ValueModel.from_causal_lm(tiny_model())
    assert torch.equal(model.head.weight, again.head.weight)
    assert float(model.head.bias.detach()) == 0.0
    assert float(model.head.weight.detach().std()) < 0.1


def test_update_lowers_the_loss_and_raises_explained_variance() -> None:
    batch = _batch()
    returns = _returns(batch)
    critic = _critic()
    history = []
    for _ in range(20):
        old = critic.values(batch)
        history.append(critic.update(batch, returns, old, epochs=1))
    first, last = history[0], history[-1]
    assert last["critic/value_loss"] < 0.25 * first["critic/value_loss"]
    assert last["critic/value_error"] < first["critic/value_error"]
    assert last["critic/explained_variance"] > first["critic/explained_variance"] + 0.3
    assert last["critic/explained_variance"] > 0.5
    assert first["critic/returns_mean"] == pytest.approx(
        float(returns.sum() / batch.response_mask.sum())
    )
    for key in ("vf_clipfrac", "grad_norm", "values_mean"):
        assert math.isfinite(first[f"critic/{key}"])
    assert first["critic/vf_clipfrac"] == 0.0  # one epoch: V == V_old on the first forward


def test_fits_gae_returns_in_the_loop() -> None:
    # the step's order: V = values(batch) -> (A, R) = GAE(r, V) -> update(batch, R, V)
    batch = _batch()
    mask = batch.response_mask
    scores = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    rewards = outcome_token_rewards(scores, mask)
    critic = _critic()
    losses = []
    for _ in range(15):
        values = critic.values(batch)
        _, returns = gae_advantages(rewards, values, mask, gamma=1.0, lam=0.95)
        losses.append(critic.update(batch, returns, values, epochs=2)["critic/value_loss"])
    assert losses[-1] < 0.25 * losses[0]


def test_micro_batch_accumulation_equals_full_batch_gradient() -> None:
    batch = _batch()
    returns = _returns(batch)
    reference = _critic()
    # an anchor off by +-0.7 on some rows so that clipping is active in part of the batch
    old = reference.values(batch) + torch.tensor([0.7, 0, -0.7, 0, 0.7, 0, 0, -0.7])[:, None]
    old = old * batch.response_mask
    metrics, grads = [], []
    for mbs in (2, 8):
        critic = _critic(lr=0.0, grad_clip=None, micro_batch_size=mbs)  # lr 0: gradient only
        metrics.append(critic.update(batch, returns, old, epochs=1))
        grads.append(_grads(critic))
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-5)
    assert 0 < metrics[0]["critic/vf_clipfrac"] < 1
    for key in ("value_loss", "vf_clipfrac", "value_error", "values_mean", "grad_norm"):
        assert metrics[0][f"critic/{key}"] == pytest.approx(metrics[1][f"critic/{key}"], rel=1e-5)


def test_metrics_are_token_weighted_not_micro_batch_means() -> None:
    # micro-batches of one sequence each: a plain mean of their losses would differ from the
    # token mean whenever the lengths differ
    batch = _batch()
    returns = _returns(batch)
    critic = _critic(lr=0.0, grad_clip=None, value_clip=None, micro_batch_size=1)
    old = critic.values(batch)
    out = critic.update(batch, returns, old)
    mask = batch.response_mask
    want = float((0.5 * (old - returns) ** 2 * mask).sum() / mask.sum())
    assert out["critic/value_loss"] == pytest.approx(want, rel=1e-5)
    want_err = float(((old - returns).abs() * mask).sum() / mask.sum())
    assert out["critic/value_error"] == pytest.approx(want_err, rel=1e-5)


def test_state_dict_round_trip_reproduces_the_next_update_exactly() -> None:
    batch = _batch()
    returns = _returns(batch)
    a = _critic(seed=0)
    for _ in range(2):
        a.update(batch, returns, a.values(batch), epochs=2)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # the checkpoint path: torch.save + weights_only load
    buf.seek(0)
    b = _critic(seed=1)  # different weights and a fresh optimizer until restored
    b.load_state_dict(torch.load(buf, weights_only=True))
    out_a = a.update(batch, returns, a.values(batch), epochs=2)
    out_b = b.update(batch, returns, b.values(batch), epochs=2)
    assert out_a == out_b
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_value_clipping_cuts_the_gradient_beyond_the_clip_range() -> None:
    batch = _batch()
    mask = batch.response_mask
    probe = _critic()
    v = probe.values(batch)
    old = (v - 1.0) * mask  # V is already 1.0 > c = 0.5 above the anchor
    # returns above V: the clipped value (old + 0.5) is further from R -> clipped branch, grad 0
    up = (v + 1.0) * mask
    clipped = _critic(lr=0.0, grad_clip=None, value_clip=0.5)
    out = clipped.update(batch, up, old)
    assert out["critic/vf_clipfrac"] == pytest.approx(1.0)
    assert torch.all(_grads(clipped) == 0)
    free = _critic(lr=0.0, grad_clip=None, value_clip=None)
    out = free.update(batch, up, old)
    assert out["critic/vf_clipfrac"] == 0.0 and _grads(free).abs().sum() > 0
    # returns below V: the unclipped error is the larger one -> same gradient as no clipping
    down = (v - 1.0) * mask
    a = _critic(lr=0.0, grad_clip=None, value_clip=0.5)
    b = _critic(lr=0.0, grad_clip=None, value_clip=None)
    assert a.update(batch, down, old)["critic/vf_clipfrac"] == 0.0
    b.update(batch, down, old)
    assert torch.allclose(_grads(a), _grads(b))


def test_grad_clip_bounds_the_step_and_reports_the_raw_norm() -> None:
    batch = _batch()
    returns = _returns(batch) * 100.0  # large errors, large gradient
    critic = _critic(lr=0.0, grad_clip=1e-3)
    out = critic.update(batch, returns, critic.values(batch))
    assert out["critic/grad_norm"] > 1e-3
    assert float(_grads(critic).norm()) == pytest.approx(1e-3, rel=1e-3)


def test_several_epochs_take_one_step_each() -> None:
    batch = _batch()
    returns = _returns(batch)
    critic = _critic()
    critic.update(batch, returns, critic.values(batch), epochs=3)
    state = critic.optimizer.state[critic.model.head.weight]
    assert int(state["step"]) == 3


def test_mini_batches_take_a_step_per_part_and_fit_faster() -> None:
    batch = _batch()
    returns = _returns(batch)
    one, four = _critic(lr=1e-3), _critic(lr=1e-3)
    one.update(batch, returns, one.values(batch), epochs=2)
    four.update(batch, returns, four.values(batch), epochs=2, mini_batches=4)
    assert int(four.optimizer.state[four.model.head.weight]["step"]) == 2 * min(
        4, batch_rows(batch)
    )
    err = {name: float(((c.values(batch) - returns).abs() * batch.response_mask).sum())
           for name, c in (("one", one), ("four", four))}  # fmt: skip
    assert err["four"] < err["one"]


def batch_rows(batch) -> int:
    return int((batch.response_mask > 0).any(dim=1).sum())


def test_empty_mask_skips_the_step() -> None:
    batch = _batch()
    empty = batch.with_fields(response_mask=torch.zeros_like(batch.response_mask))
    critic = _critic()
    before = [p.clone() for p in critic.model.parameters()]
    zeros = torch.zeros_like(empty.response_mask)
    out = critic.update(empty, zeros, zeros)
    assert out["critic/skipped_step"] == 1.0
    assert all(torch.equal(p, q) for p, q in zip(before, critic.model.parameters(), strict=True))


def test_update_checks_shapes() -> None:
    batch = _batch()
    critic = _critic()
    with pytest.raises(ValueError, match="returns"):
        critic.update(batch, torch.zeros(8, 2), critic.values(batch))


def test_bf16_autocast_returns_float32_values_close_to_fp32() -> None:
    batch = _batch()
    fp32 = _critic().values(batch)
    bf16_critic = _critic()
    bf16_critic.dtype = "bf16"
    bf16 = bf16_critic.values(batch)
    assert bf16.dtype == torch.float32
    assert torch.allclose(bf16, fp32, atol=2e-2)


def test_from_config_builds_the_critic_from_the_policy_checkpoint() -> None:
    cfg = RLConfig.model_validate(
        {
            "rollout": {"n": 2, "prompts_per_step": 4, "max_new_tokens": 16},
            "algo": {"advantage": "gae", "micro_batch_size": 4},
            "critic": {"lr": 3e-4, "weight_decay": 0.01, "value_clip": None, "grad_clip": 2.0},
            "model": {"dtype": "fp32"},
        }
    )
    critic = Critic.from_config(cfg, device="cpu")
    assert type(critic.model.trunk).__name__ == "Qwen2Model"
    assert critic.value_clip is None and critic.grad_clip == 2.0
    assert critic.micro_batch_size == 4
    group = critic.optimizer.param_groups[0]
    assert group["lr"] == 3e-4 and group["weight_decay"] == 0.01
    prompts, comps = fake_rollouts(4, seed=5)  # ids < 32 exist in the synth-micro vocabulary
    batch = collate(prompts, comps, torch.zeros(4), pad_id=PAD)
    values = critic.values(batch)
    assert values.shape == batch.response_mask.shape and torch.isfinite(values).all()
