"""The update: micro-batching and skipping zero-advantage rows change nothing in the gradient."""

from __future__ import annotations

import pytest
import torch

from reasonrl.config import RLConfig
from reasonrl.rl.batching import collate
from reasonrl.rl.update import active_rows, policy_update
from tests.rl.helpers import PAD, fake_rollouts, tiny_model

AGG_MODES = [
    "token_mean",
    "token_sum",
    "seq_mean_token_mean",
    "seq_mean_token_sum",
    "seq_mean_token_sum_norm",
]


def _cfg(**algo: object) -> RLConfig:
    return RLConfig.model_validate(
        {
            "rollout": {"n": 2, "prompts_per_step": 4, "max_new_tokens": 16},
            "algo": algo,
            "optim": {"grad_clip": None},
            "model": {"dtype": "fp32"},
        }
    )


def _grads(cfg: RLConfig, batch, seed: int = 0) -> torch.Tensor:
    model = tiny_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: we only want the gradient
    policy_update(model, opt, batch, cfg)
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])


def _batch():
    prompts, comps = fake_rollouts(8, seed=11)
    adv = torch.tensor([1.0, -0.5, 0.0, 2.0, -1.0, 0.0, 0.3, -0.3])
    return collate(prompts, comps, adv, pad_id=PAD)


@pytest.mark.parametrize("agg", AGG_MODES)
def test_micro_batch_1x8_equals_8x1(agg: str) -> None:
    batch = _batch()
    whole = _grads(_cfg(agg=agg, micro_batch_size=8), batch)
    split = _grads(_cfg(agg=agg, micro_batch_size=1), batch)
    assert whole.abs().sum() > 0
    assert torch.allclose(whole, split, atol=1e-6, rtol=1e-5)


def test_zero_advantage_rows_are_skipped_without_changing_the_gradient() -> None:
    batch = _batch()
    cfg = _cfg(micro_batch_size=1)
    assert active_rows(batch, cfg.algo).tolist() == [0, 1, 3, 4, 6, 7]
    # with an entropy bonus every row must be processed
    assert len(active_rows(batch, _cfg(micro_batch_size=1, entropy_coef=0.01).algo)) == 8
    # reference: process every row by giving zero-advantage rows a negligible entropy term?
    # No: compare against a batch whose zero rows are removed entirely, with the same normaliser
    # semantics checked by hand for token_mean: grad = sum over active tokens / all tokens.
    skipped = _grads(cfg, batch)
    keep = torch.tensor([0, 1, 3, 4, 6, 7])
    sub = batch.select(keep)
    scale = sub.response_mask.sum() / batch.response_mask.sum()  # token_mean normaliser ratio
    reduced = _grads(cfg, sub)
    assert torch.allclose(skipped, reduced * scale, atol=1e-6, rtol=1e-5)


def test_all_zero_advantages_skip_the_step() -> None:
    batch = _batch().with_fields(advantages=torch.zeros(8, _batch().advantages.shape[1]))
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    out = policy_update(model, opt, batch, _cfg(micro_batch_size=8))
    assert out["actor/skipped_step"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
