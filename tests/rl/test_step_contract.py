"""What `train_step` returns and in which order it calls its stages, pinned with values.

Found by mutation testing (docs/testing.md): these are the metrics and stage arguments that no
behavioural test read, so a mutant renaming, zeroing or reordering them survived.
"""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.token_advantages import gae_advantages, outcome_token_rewards
from reasonrl.rl import step as step_module
from reasonrl.rl.step import train_step
from tests.rl.stubs import stub_config, stub_state


def _spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[tuple]:
    """Record (args, kwargs, result) of every call to `module.name`."""
    calls: list[tuple] = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append((args, kwargs, out))
        return out

    monkeypatch.setattr(module, name, spy)
    return calls


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_step_metrics_are_the_values_of_this_step(monkeypatch: pytest.MonkeyPatch) -> None:
    adv_calls = _spy(monkeypatch, step_module, "compute_advantages")
    updates = _spy(monkeypatch, step_module, "policy_update")
    cfg = stub_config(optim={"lr": 3e-3, "grad_clip": None})
    state = stub_state(cfg)
    metrics, groups = train_step(state)

    (args, _, (advantages, returns)) = adv_calls[0]
    scores, mask = args[1], args[2]
    assert returns is None  # a group estimator has no critic targets
    assert metrics["reward/shaped"] == pytest.approx(float(scores.mean()))
    valid = mask > 0
    assert valid.any() and not valid.all()  # padding exists, so the mask matters
    assert metrics["adv/mean"] == pytest.approx(float(advantages[valid].mean()), abs=1e-7)
    assert metrics["adv/abs_mean"] == pytest.approx(float(advantages[valid].abs().mean()))
    assert metrics["adv/abs_mean"] > 0
    # the batch the update saw carries these advantages
    batch = updates[0][0][2]
    assert torch.equal(batch.advantages, advantages)
    assert metrics["actor/lr"] == pytest.approx(3e-3)

    phases = ("rollout", "generate", "logprobs", "update", "sync")
    for phase in phases:
        assert metrics[f"perf/time_{phase}"] >= 0.0, phase
    assert metrics["perf/gen_tokens_per_s"] == pytest.approx(
        groups.gen_tokens / metrics["perf/time_generate"]
    )
    top = sum(metrics[f"perf/time_{p}"] for p in ("rollout", "logprobs", "update", "sync"))
    assert metrics["perf/step_s"] >= top
    assert metrics["actor/loss"] == pytest.approx(updates[0][2]["actor/loss"])


def test_single_epoch_without_kl_scores_no_extra_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    # one epoch and no reference: the old log-probs are the detached current ones (free)
    calls = _spy(monkeypatch, step_module, "batch_logprobs")
    updates = _spy(monkeypatch, step_module, "policy_update")
    train_step(stub_state(stub_config()))
    assert calls == []
    batch = updates[0][0][2]
    assert batch.old_logprobs is None and batch.ref_logprobs is None


def test_kl_in_the_loss_scores_the_reference_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _spy(monkeypatch, step_module, "batch_logprobs")
    updates = _spy(monkeypatch, step_module, "policy_update")
    state = stub_state(stub_config(algo={"kl_coef": 0.1}))
    train_step(state)
    assert [c[0][0] for c in calls] == [state.ref_model]
    kwargs = calls[0][1]
    assert kwargs == {"micro_batch_size": 4, "temperature": 1.0, "dtype": "auto",
                      "shared_prefix": False}  # fmt: skip  # algo.shared_prefix defaults to off
    batch = updates[0][0][2]
    assert batch.ref_logprobs is not None and batch.old_logprobs is None
    assert updates[0][1]["kl_coef"] == pytest.approx(0.1)


def _ppo_config(**sections: dict):
    return stub_config(algo={"advantage": "gae", "gamma": 1.0, "lam": 0.9}, **sections)


def test_ppo_step_regresses_the_critic_on_the_gae_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    state = stub_state(_ppo_config())
    assert state.critic is not None
    seen: list[tuple] = []
    real_update = state.critic.update

    def spy(batch, returns, values, **kw):
        seen.append((batch, returns, values, kw))
        return real_update(batch, returns, values, **kw)

    monkeypatch.setattr(state.critic, "update", spy)
    adv_calls = _spy(monkeypatch, step_module, "compute_advantages")
    before = _params(state.critic.model)
    metrics, _ = train_step(state)

    batch, returns, values, kw = seen[0]
    assert kw == {"epochs": 1, "mini_batches": 1}
    args, akw, _ = adv_calls[0]
    assert akw["values"] is values  # the critic's rollout-time values drive GAE
    mask = batch.response_mask
    expect_adv, expect_ret = gae_advantages(
        outcome_token_rewards(args[1].reshape(-1), mask), values, mask, gamma=1.0, lam=0.9
    )
    assert torch.allclose(returns, expect_ret)
    assert torch.allclose(batch.advantages, expect_adv)
    assert not _same(before, _params(state.critic.model))
    assert metrics["critic/returns_mean"] == pytest.approx(
        float((returns * mask).sum() / mask.sum()), rel=1e-5
    )
    assert "actor/loss" in metrics


def test_critic_warmup_holds_the_policy_until_its_step(monkeypatch: pytest.MonkeyPatch) -> None:
    state = stub_state(_ppo_config(critic={"warmup_steps": 1}))
    policy0, critic0 = _params(state.model), _params(state.critic.model)
    first, _ = train_step(state)  # step 0 < warmup: only the critic learns
    assert _same(policy0, _params(state.model))
    assert not _same(critic0, _params(state.critic.model))
    assert "actor/loss" not in first and "critic/value_loss" in first
    second, _ = train_step(state)  # step 1 == warmup: the policy trains too
    assert not _same(policy0, _params(state.model))
    assert "actor/loss" in second
    assert state.scheduler.last_epoch == 2  # the schedule counts every RL step


def test_steps_count_up_and_sync_the_trained_weights() -> None:
    state = stub_state(stub_config())
    train_step(state)
    train_step(state)
    assert state.step == 2 and state.engine.weight_syncs == 2
    synced = state.engine.synced
    names = [n for n, _ in state.model.named_parameters()]
    assert list(synced) == names
    assert all(synced[n] is p for n, p in state.model.named_parameters())


def test_kl_in_the_reward_is_measured_on_the_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.algos.kl import kl_penalty

    cfg = stub_config(algo={"advantage": "reinforce_pp", "kl_coef": 0.3, "kl_in": "reward",
                            "kl_estimator": "k1"})  # fmt: skip
    state = stub_state(cfg)
    with torch.no_grad():  # policy != reference, so the KL is not zero
        gen = torch.Generator().manual_seed(0)
        for p in state.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    adv_calls = _spy(monkeypatch, step_module, "compute_advantages")
    updates = _spy(monkeypatch, step_module, "policy_update")
    metrics, _ = train_step(state)
    _, kw, _ = adv_calls[0]
    batch = updates[0][0][2]
    want = kl_penalty(batch.old_logprobs, batch.ref_logprobs, kind="k1")
    assert kw["kl"] is not None and torch.allclose(kw["kl"], want)
    assert kw["kl_coef"] == pytest.approx(0.3)
    assert float(want[batch.response_mask > 0].abs().max()) > 1e-3
    # the loss carries no second KL term: kl_in=reward
    assert updates[0][1]["kl_coef"] == pytest.approx(0.3)
    assert "actor/kl_coef" in metrics


def test_the_update_uses_the_controllers_coefficient(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = stub_config(algo={"kl_coef": 0.1, "kl_target": 1e-6, "kl_horizon": 100})
    state = stub_state(cfg)
    updates = _spy(monkeypatch, step_module, "policy_update")
    train_step(state)
    moved = state.kl_ctl.value
    assert moved != pytest.approx(0.1)
    train_step(state)
    assert updates[1][1]["kl_coef"] == pytest.approx(moved)


def test_samples_carry_each_completions_advantage(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasonrl.runtime.metrics import rollout_record

    updates = _spy(monkeypatch, step_module, "policy_update")
    _, groups = train_step(stub_state(stub_config()))
    batch = updates[0][0][2]
    records = [rollout_record(r) for r in groups.rollouts()]
    mask = batch.response_mask
    for i, rec in enumerate(records):
        want = float(batch.advantages[i][mask[i] > 0].mean())
        assert rec["advantage"] == pytest.approx(want, abs=1e-6)
    assert "meta" in records[0]
