"""What each loop feature claims, checked on `train_step` with a stub engine and stub rewards.

Each test names the mutation of the orchestration it catches (issue 13): dynamic sampling off,
KL sign, entropy sign, overlong-penalty sign, overlong filter off, reference model = the policy.
"""

from __future__ import annotations

import math

import pytest
import torch

from reasonrl.rl import step as step_module
from reasonrl.rl.advantage import compute_advantages, shaped_scores
from reasonrl.rl.batching import collate
from reasonrl.rl.rollouts import sample_groups
from reasonrl.rl.state import sampling_params
from reasonrl.rl.step import train_step
from reasonrl.rl.update import policy_update
from reasonrl.runtime.timing import Timer
from reasonrl.types import Completion, RewardResult, Sample
from tests.rl.stubs import StubEngine, even_fraction, stub_config, stub_state


def _capture_batches(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record the Batch every policy update of train_step receives."""
    seen: list = []
    real = step_module.policy_update

    def spy(model, optimizer, batch, cfg, **kw):
        seen.append(batch)
        return real(model, optimizer, batch, cfg, **kw)

    monkeypatch.setattr(step_module, "policy_update", spy)
    return seen


def test_second_epoch_sees_the_policy_move_and_clips() -> None:
    # gspo.yaml's failure: with ppo_epochs > 1 the ratio must be taken to the ROLLOUT policy.
    cfg = stub_config(algo={"ppo_epochs": 2, "clip_low": 0.01, "clip_high": 0.01})
    state = stub_state(cfg)
    metrics, _ = train_step(state)
    assert metrics["actor/epoch1/ratio_mean"] == pytest.approx(1.0, abs=1e-5)
    assert metrics["actor/epoch1/clipfrac"] == 0.0
    assert abs(metrics["actor/epoch2/ratio_mean"] - 1.0) > 1e-3
    assert metrics["actor/epoch2/clipfrac"] > 0.0
    # actor/* is the mean over the epochs
    expected = (metrics["actor/epoch1/clipfrac"] + metrics["actor/epoch2/clipfrac"]) / 2
    assert metrics["actor/clipfrac"] == pytest.approx(expected)


def test_old_logprobs_are_computed_before_the_first_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_batches(monkeypatch)
    train_step(stub_state(stub_config(algo={"ppo_epochs": 2})))
    assert len(seen) == 2 and seen[0].old_logprobs is not None
    assert seen[0].old_logprobs is seen[1].old_logprobs  # the same, frozen denominator
    mask = seen[0].response_mask > 0
    assert (seen[0].old_logprobs[mask] < 0).all()  # real log-probs, not zeros


def _spread_or_constant(sample: Sample, completion: Completion) -> float:
    """Even prompts ("2 ...") always score 1 (no spread); others score by token parity."""
    if int(sample.prompt.split()[0]) % 2 == 0:
        return 1.0
    return even_fraction(sample, completion)


def test_dynamic_sampling_refills_with_informative_groups_on_the_raw_reward() -> None:
    samples = [Sample(prompt=f"{2 + i} 3 4", answer="", id=str(i)) for i in range(8)]
    # The overlong penalty gives constant-reward groups a spread in the SHAPED score; dynamic
    # sampling must still drop them (it looks at what the verifier said).
    cfg = stub_config(
        algo={"dynamic_sampling": True, "overlong_buffer": 4, "overlong_factor": 1.0},
    )
    state = stub_state(cfg, _spread_or_constant, samples=samples)
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    assert len(groups.samples) == cfg.rollout.prompts_per_step  # refilled to the batch size
    assert groups.rounds >= 2 and groups.generated_groups > len(groups.samples)
    for row in groups.scores:
        assert row.max() > row.min()
    assert all(int(s.prompt.split()[0]) % 2 == 1 for s in groups.samples)
    # without dynamic sampling the constant groups stay
    state = stub_state(stub_config(), _spread_or_constant, samples=samples)
    plain = sample_groups(state, sampling_params(state.cfg, 0), Timer())
    assert any(int(s.prompt.split()[0]) % 2 == 0 for s in plain.samples)


def test_overlong_penalty_lowers_long_completions_and_reward_mean_stays_raw() -> None:
    cfg = stub_config(algo={"overlong_buffer": 4, "overlong_factor": 1.0})
    state = stub_state(cfg, lambda s, c: 1.0)
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    shaped = shaped_scores(groups, cfg)
    lengths = groups.lengths()
    # max_new_tokens 8, buffer 4: no penalty up to length 4, then -(len-4)/4 down to -1 at 8
    expected = 1.0 - (lengths - 4).clamp(min=0).float() / 4
    assert torch.allclose(shaped, expected)
    assert (shaped[lengths == 8] == 0.0).all() and (shaped[lengths <= 4] == 1.0).all()
    metrics, _ = train_step(stub_state(cfg, lambda s, c: 1.0))
    assert metrics["reward/mean"] == 1.0  # raw
    assert metrics["reward/shaped"] < 1.0


def test_overlong_filter_masks_truncated_completions(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _capture_batches(monkeypatch)
    state = stub_state(stub_config(algo={"overlong_filter": True}))
    _, groups = train_step(state)
    truncated = groups.truncated()
    assert truncated.any() and (~truncated).any()
    mask = seen[0].response_mask
    assert (mask[truncated].sum(dim=1) == 0).all()
    assert (mask[~truncated].sum(dim=1) > 0).all()


def test_not_applicable_rewards_are_counted_excluded_and_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def half_none(sample: Sample, completion: Completion) -> float | None:
        return (
            None if len(completion.token_ids) % 2 else 0.5 + 0.5 * even_fraction(sample, completion)
        )

    seen = _capture_batches(monkeypatch)
    metrics, groups = train_step(stub_state(stub_config(), half_none))
    none = torch.tensor([r.score is None for g in groups.rewards for r in g])
    assert metrics["reward/not_applicable"] == float(none.sum()) > 0
    applied = [r.score for g in groups.rewards for r in g if r.score is not None]
    assert metrics["reward/mean"] == pytest.approx(sum(applied) / len(applied))  # not diluted by 0s
    assert (seen[0].response_mask[none].sum(dim=1) == 0).all()


def test_kl_penalty_raises_the_loss_and_the_reference_stays_frozen() -> None:
    cfg = stub_config(algo={"kl_coef": 1.0, "kl_estimator": "k3"})
    state = stub_state(cfg)
    assert state.ref_model is not None and state.ref_model is not state.model
    before = {n: p.clone() for n, p in state.ref_model.named_parameters()}
    train_step(state)  # the policy moves away from the reference
    metrics, _ = train_step(state)
    assert metrics["actor/kl_ref"] > 0
    for name, param in state.ref_model.named_parameters():
        assert torch.equal(param, before[name]), f"reference parameter {name} moved"
    assert any(not torch.equal(p, before[n]) for n, p in state.model.named_parameters()), (
        "policy should have moved"
    )
    # the same batch with and without the KL term: KL >= 0 (k3), so the loss must be higher
    batch = _scored_batch(state)
    with_kl = policy_update(_frozen(state), _sgd0(state), batch, cfg, kl_coef=1.0)["actor/loss"]
    no_kl = policy_update(_frozen(state), _sgd0(state), batch, cfg, kl_coef=0.0)["actor/loss"]
    assert with_kl > no_kl


def _scored_batch(state):
    """A batch of fresh rollouts with advantages and reference log-probs, as train_step builds."""
    from reasonrl.rl.logprobs import batch_logprobs

    cfg = state.cfg
    groups = sample_groups(state, sampling_params(cfg, 99), Timer())
    scores = shaped_scores(groups, cfg)
    batch = collate(groups.flat_prompt_ids(), groups.flat_completions(),
                    torch.zeros(scores.numel()), pad_id=0)  # fmt: skip
    adv, _ = compute_advantages(cfg, scores, batch.response_mask)
    batch = batch.with_fields(advantages=adv)
    if state.ref_model is not None:
        ref = batch_logprobs(state.ref_model, batch, micro_batch_size=4)
        batch = batch.with_fields(ref_logprobs=ref)
    return batch


def _frozen(state):
    return state.model


def _sgd0(state):
    """An optimizer that does not move the weights, so two losses compare on one model."""
    return torch.optim.SGD(state.model.parameters(), lr=0.0)


def test_entropy_bonus_lowers_the_loss_and_raises_entropy() -> None:
    cfg = stub_config(algo={"entropy_coef": 1.0})
    state = stub_state(cfg, lambda s, c: 1.0)  # no spread: the entropy term is the only signal
    batch = _scored_batch(state)
    assert (batch.advantages == 0).all()
    opt = torch.optim.SGD(state.model.parameters(), lr=0.5)
    first = policy_update(state.model, opt, batch, cfg)
    for _ in range(5):
        last = policy_update(state.model, opt, batch, cfg)
    assert first["actor/loss"] == pytest.approx(-first["actor/entropy"], rel=1e-4)
    assert last["actor/entropy"] > first["actor/entropy"]


def test_importance_weights_change_the_loss() -> None:
    cfg_none = stub_config()
    cfg_is = stub_config(algo={"is_level": "token", "is_mode": "truncate", "is_high": 1.5})
    state = stub_state(cfg_none)
    batch = _scored_batch(state)
    # sampler log-probs far below the trainer's: pi_old/mu_old is large and truncated at 1.5
    plain = policy_update(state.model, _sgd0(state), batch, cfg_none)
    weighted = policy_update(state.model, _sgd0(state), batch, cfg_is)
    # the mismatch is measured every step; the weights exist only with is_level set
    assert {"is/mismatch_k1", "is/mismatch_k3", "is/mismatch_max_abs"} <= set(plain)
    assert plain["is/mismatch_max_abs"] > 0.5  # the sampler's log-probs are far off here
    assert not any(k.startswith("is/is_") for k in plain)
    assert any(k.startswith("is/is_") for k in weighted)
    assert not math.isclose(plain["actor/loss"], weighted["actor/loss"], rel_tol=1e-6)


def test_metrics_are_token_weighted_over_micro_batches() -> None:
    # micro-batches are sorted by length, so the short ones would dominate an unweighted mean
    cfg = stub_config(algo={"micro_batch_size": 2, "ppo_epochs": 1})
    state = stub_state(cfg)
    batch = _scored_batch(state)
    small = policy_update(state.model, _sgd0(state), batch, cfg)
    whole = policy_update(state.model, _sgd0(state), batch, cfg.model_copy(
        update={"algo": cfg.algo.model_copy(update={"micro_batch_size": 16})}))  # fmt: skip
    assert small["actor/entropy"] == pytest.approx(whole["actor/entropy"], rel=1e-5)
    assert small["actor/loss"] == pytest.approx(whole["actor/loss"], rel=1e-5)


def test_step_returns_groups_and_syncs_weights() -> None:
    engine = StubEngine()
    state = stub_state(stub_config(), engine=engine)
    metrics, groups = train_step(state)
    assert state.step == 1 and engine.weight_syncs == 1
    assert len(groups.samples) == 4 and all(len(g) == 4 for g in groups.completions)
    assert not hasattr(state, "history")
    assert metrics["rollout/groups_generated"] == 4.0


def test_remax_generates_a_greedy_baseline() -> None:
    engine = StubEngine()
    metrics, groups = train_step(
        stub_state(stub_config(algo={"advantage": "remax"}), engine=engine)
    )
    assert [c.greedy for c in engine.calls] == [False, True]
    assert engine.calls[1].n == 1
    assert groups.greedy_scores is not None and groups.greedy_scores.shape == (4,)
    assert "reward/greedy_mean" in metrics


def test_reinforce_pp_folds_the_kl_into_the_reward() -> None:
    cfg = stub_config(algo={"advantage": "reinforce_pp", "kl_coef": 0.5, "kl_in": "reward",
                            "kl_estimator": "k1"})  # fmt: skip
    state = stub_state(cfg)
    train_step(state)  # move the policy off the reference
    batch = _scored_batch(state)
    from reasonrl.algos.kl import kl_penalty
    from reasonrl.rl.logprobs import batch_logprobs

    old = batch_logprobs(state.model, batch, micro_batch_size=4)
    kl = kl_penalty(old, batch.ref_logprobs, kind="k1")
    groups_scores = torch.zeros(4, 4)  # reward 0: the advantage is driven by the KL alone
    adv_kl, _ = compute_advantages(cfg, groups_scores, batch.response_mask, kl=kl, kl_coef=0.5)
    adv_0, _ = compute_advantages(cfg, groups_scores, batch.response_mask, kl=kl, kl_coef=0.0)
    assert adv_0.abs().max() < 1e-3  # nothing to whiten
    assert adv_kl.abs().max() > 0.1
    # a token with a higher KL than the others gets a lower return: advantage anti-correlates
    mask = batch.response_mask > 0
    assert torch.corrcoef(torch.stack([kl[mask], adv_kl[mask]]))[0, 1] < 0


def test_adaptive_kl_controller_moves_the_coefficient() -> None:
    cfg = stub_config(algo={"kl_coef": 0.1, "kl_target": 1e-6, "kl_horizon": 100})
    state = stub_state(cfg)
    first, _ = train_step(state)  # policy == reference: KL 0 < target, the coefficient shrinks
    assert first["actor/kl_coef"] == pytest.approx(0.1 * (1 - 0.2 * 16 / 100))
    second, _ = train_step(state)  # policy moved: KL >> target, it grows by the clipped 20 %
    assert second["actor/kl_coef"] == pytest.approx(first["actor/kl_coef"] * (1 + 0.2 * 16 / 100))
    assert state.kl_ctl.state_dict() == {"value": second["actor/kl_coef"]}


def test_typed_reward_fields_feed_the_metrics() -> None:
    def typed(sample: Sample, completion: Completion) -> RewardResult:
        right = len(completion.token_ids) % 2 == 0
        return RewardResult(float(right), {}, answer="x", outcome=right, verified=False)

    metrics, groups = train_step(stub_state(stub_config(), typed))
    flat = [r for g in groups.rewards for r in g]
    assert metrics["reward/outcome"] == pytest.approx(sum(r.outcome for r in flat) / len(flat))
    assert metrics["reward/verified_correct"] == 0.0
