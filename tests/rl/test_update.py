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


def _update(cfg: RLConfig, batch, *, lr: float = 0.0, seed: int = 0):
    model = tiny_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return model, policy_update(model, opt, batch, cfg)


def test_active_fraction_counts_the_rows_that_train() -> None:
    batch = _batch()  # 2 of 8 rows have zero advantage
    assert _update(_cfg(micro_batch_size=4), batch)[1]["actor/active_frac"] == pytest.approx(6 / 8)
    # terms that are non-zero without an advantage make every row train
    for algo in ({"kl_coef": 0.1}, {"entropy_coef": 0.01}, {"loss": "kimi_omd"}):
        b = batch.with_fields(ref_logprobs=batch.rollout_logprobs) if "kl_coef" in algo else batch
        assert _update(_cfg(micro_batch_size=4, **algo), b)[1]["actor/active_frac"] == 1.0, algo
    # a KL folded into the reward adds nothing to the loss: zero rows still skip
    kl_reward = _cfg(kl_coef=0.1, kl_in="reward", advantage="reinforce_pp", micro_batch_size=4)
    assert _update(kl_reward, batch)[1]["actor/active_frac"] == pytest.approx(6 / 8)


def test_the_dr_grpo_constant_divides_the_loss() -> None:
    batch = _batch()
    small = _update(_cfg(agg="seq_mean_token_sum_norm", agg_const=16.0, micro_batch_size=4), batch)[
        1
    ]
    large = _update(_cfg(agg="seq_mean_token_sum_norm", agg_const=32.0, micro_batch_size=4), batch)[
        1
    ]
    assert small["actor/loss"] == pytest.approx(2 * large["actor/loss"], rel=1e-5)
    assert small["actor/loss"] != 0


def test_grad_norm_is_reported_before_clipping() -> None:
    batch = _batch()
    free_model, free = _update(_cfg(micro_batch_size=4), batch)
    raw = torch.cat([p.grad.flatten() for p in free_model.parameters() if p.grad is not None])
    assert free["actor/grad_norm"] == pytest.approx(float(raw.norm()), rel=1e-4)
    clipped_cfg = RLConfig.model_validate(
        {
            **_cfg(micro_batch_size=4).model_dump(),
            "optim": {**_cfg(micro_batch_size=4).optim.model_dump(), "grad_clip": 1e-4},
        }
    )
    model, clipped = _update(clipped_cfg, batch)
    assert clipped["actor/grad_norm"] == pytest.approx(free["actor/grad_norm"], rel=1e-4)
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert float(grads.norm()) == pytest.approx(1e-4, rel=1e-3)


def test_a_nonfinite_loss_is_reported_by_cause() -> None:
    batch = _batch()
    bad = batch.with_fields(advantages=batch.advantages * float("nan"))
    model, out = _update(_cfg(micro_batch_size=4), bad, lr=0.1)
    assert out["actor/skipped_nonfinite"] == 1.0 and out["actor/nonfinite_loss"] == 1.0
    assert out["actor/active_frac"] == 1.0  # NaN advantages are not zero: every row ran
    assert all(p.grad is None for p in model.parameters())  # nothing left to leak into a step
    assert "actor/skipped_nonfinite" not in _update(_cfg(micro_batch_size=4), batch)[1]


def _one_param_step(loss: float, grad_norm: float, lr: float = 0.1):
    from reasonrl.rl.update import guarded_step

    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.Adam([w], lr=lr)
    w.grad = torch.full((2,), 0.5)
    cause = guarded_step(opt, [w], torch.tensor(loss), torch.tensor(grad_norm))
    return cause, w, opt


@pytest.mark.parametrize(
    ("loss", "grad_norm", "lr", "cause"),
    [
        (float("nan"), 1.0, 0.1, "loss"),
        (float("inf"), float("nan"), 0.1, "loss"),  # the first cause that applies
        (1.0, float("inf"), 0.1, "grad"),
        (1.0, 1.0, float("inf"), "lr"),
    ],
)
def test_guarded_step_skips_and_names_the_cause(loss, grad_norm, lr, cause) -> None:
    got, w, opt = _one_param_step(loss, grad_norm, lr)
    assert got == cause
    assert torch.equal(w.detach(), torch.ones(2)) and w.grad is None
    assert opt.state_dict()["state"] == {}  # Adam never stepped: no moments were created


def test_guarded_step_steps_on_finite_inputs() -> None:
    got, w, opt = _one_param_step(1.0, 1.0)
    assert got is None
    assert not torch.equal(w.detach(), torch.ones(2))
    assert opt.state_dict()["state"][0]["step"] == 1


def test_a_step_that_makes_the_weights_nonfinite_raises() -> None:
    from reasonrl.rl.update import NonFiniteUpdateError, guarded_step

    w = torch.nn.Parameter(torch.full((2,), 3e38))
    opt = torch.optim.SGD([w], lr=1.0)
    w.grad = torch.full((2,), -3e38)  # finite, but w - lr * g overflows float32
    with pytest.raises(NonFiniteUpdateError, match="made the weights NaN/inf"):
        guarded_step(opt, [w], torch.tensor(1.0), torch.tensor(1.0))
