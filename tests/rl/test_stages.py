"""Each stage of `train_step` passes every configured setting to the formula it calls.

Found by mutation testing (docs/testing.md): a dropped keyword (gamma, lam, std_unbiased,
is_high, kl_estimator, overlong_factor, ...) silently falls back to the function's default, so
these tests set NON-default values and compare with the formula called directly.
"""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.advantages import ADVANTAGES, remax_advantages
from reasonrl.algos.shaping import kimi_length_penalty, overlong_penalty
from reasonrl.algos.token_advantages import (
    gae_advantages,
    outcome_token_rewards,
    reinforce_pp_advantages,
)
from reasonrl.rl.advantage import compute_advantages, shaped_scores
from reasonrl.rl.rollouts import MAX_DYNAMIC_ROUNDS, Groups, sample_groups
from reasonrl.rl.state import sampling_params
from reasonrl.rl.update import policy_update
from reasonrl.runtime.timing import Timer
from reasonrl.types import Completion, RewardResult, Sample
from tests.rl.stubs import StubEngine, stub_config, stub_state

SCORES = torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 1.0]])  # B=2 prompts x G=3
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0]] * 3 + [[1.0, 1.0, 0.0, 0.0]] * 3)


def _token_rewards() -> torch.Tensor:
    return outcome_token_rewards(SCORES.reshape(-1), MASK)


def test_gae_uses_the_values_gamma_and_lambda() -> None:
    cfg = stub_config(algo={"advantage": "gae", "gamma": 0.9, "lam": 0.7})
    values = torch.linspace(0.1, 0.9, 24).reshape(6, 4)
    adv, returns = compute_advantages(cfg, SCORES, MASK, values=values)
    want_adv, want_ret = gae_advantages(_token_rewards(), values, MASK, gamma=0.9, lam=0.7)
    assert torch.allclose(adv, want_adv) and torch.allclose(returns, want_ret)
    with pytest.raises(ValueError, match="advantage=gae needs critic values"):
        compute_advantages(cfg, SCORES, MASK)


def test_reinforce_pp_uses_gamma_and_the_std_convention() -> None:
    cfg = stub_config(algo={"advantage": "reinforce_pp", "gamma": 0.5, "std_unbiased": False})
    adv, returns = compute_advantages(cfg, SCORES, MASK)
    want, _ = reinforce_pp_advantages(_token_rewards(), MASK, gamma=0.5, std_unbiased=False)
    assert returns is None and torch.allclose(adv, want)
    other, _ = reinforce_pp_advantages(_token_rewards(), MASK, gamma=1.0, std_unbiased=True)
    assert not torch.allclose(adv, other)  # the settings matter on this input
    unbiased = stub_config(algo={"advantage": "reinforce_pp", "gamma": 0.5, "std_unbiased": True})
    want, _ = reinforce_pp_advantages(_token_rewards(), MASK, gamma=0.5, std_unbiased=True)
    assert torch.allclose(compute_advantages(unbiased, SCORES, MASK)[0], want)


def test_kl_weight_defaults_to_zero() -> None:
    cfg = stub_config(algo={"advantage": "reinforce_pp"})
    kl = torch.full((6, 4), 0.3)
    plain, _ = compute_advantages(cfg, SCORES, MASK)
    assert torch.allclose(compute_advantages(cfg, SCORES, MASK, kl=kl)[0], plain)


def test_remax_baseline_falls_back_to_its_own_groups_mean() -> None:
    cfg = stub_config(algo={"advantage": "remax"})
    greedy = torch.tensor([0.25, float("nan")])
    adv, _ = compute_advantages(cfg, SCORES, MASK, greedy_scores=greedy)
    baseline = torch.tensor([0.25, 1.0 / 3.0])  # prompt 2's greedy reward does not apply
    want = remax_advantages(SCORES, baseline).reshape(-1)[:, None] * MASK
    assert torch.allclose(adv, want)
    with pytest.raises(ValueError, match="advantage=remax needs greedy_scores"):
        compute_advantages(cfg, SCORES, MASK)


def test_group_estimator_receives_its_settings() -> None:
    cfg = stub_config(algo={"advantage": "grpo", "std_scope": "batch", "std_unbiased": False})
    adv, _ = compute_advantages(cfg, SCORES, MASK)
    seq = ADVANTAGES["grpo"](SCORES, std_scope="batch", std_unbiased=False).reshape(-1)
    assert torch.allclose(adv, seq[:, None] * MASK)
    default = ADVANTAGES["grpo"](SCORES).reshape(-1)
    assert not torch.allclose(seq, default)


def _groups_of_lengths(lengths: list[list[int]], scores: list[list[float]], correct) -> Groups:
    completions = [[Completion("x", (1,) * n, (-1.0,) * n, "stop") for n in row] for row in lengths]
    rewards = [
        [RewardResult(s, outcome=c) for s, c in zip(r, cr)] for r, cr in zip(scores, correct)
    ]
    samples = [Sample(id=str(i), prompt="1") for i in range(len(lengths))]
    return Groups(samples, [[1]] * len(lengths), completions, rewards, torch.tensor(scores))


def test_overlong_penalty_uses_the_configured_factor() -> None:
    cfg = stub_config(algo={"overlong_buffer": 4, "overlong_factor": 0.5})
    g = _groups_of_lengths([[2, 6, 8]], [[1.0, 1.0, 1.0]], [[True] * 3])
    want = torch.ones(1, 3) + overlong_penalty(g.lengths(), max_len=8, buffer=4, factor=0.5)
    shaped = shaped_scores(g, cfg)
    assert torch.allclose(shaped, want)
    assert shaped[0, 2] == pytest.approx(0.5)  # at the limit: -factor


def test_kimi_length_penalty_is_added_with_its_coefficient() -> None:
    g = _groups_of_lengths([[2, 6, 4]], [[1.0, 0.0, 1.0]], [[True, False, True]])
    raw = shaped_scores(g, stub_config())
    assert torch.equal(raw, g.scores)  # coefficient 0: off
    shaped = shaped_scores(g, stub_config(algo={"length_penalty_coef": 0.5}))
    bonus = kimi_length_penalty(g.lengths(), g.correct())
    assert bonus.abs().sum() > 0
    assert torch.allclose(shaped, g.scores + 0.5 * bonus)


class _CountingSource:
    """Hands out fresh prompts and records how many each call asked for."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.n = 0

    def next(self, k: int) -> list[Sample]:
        self.asked.append(k)
        self.n += k
        return [Sample(id=str(self.n - i), prompt=f"{self.n - i} 3") for i in range(k)]


def _sampling_state(reward, *, dynamic: bool, engine: StubEngine | None = None):
    cfg = stub_config(algo={"dynamic_sampling": dynamic})
    state = stub_state(cfg, reward, engine=engine)
    state.source = _CountingSource()
    return cfg, state


def test_without_dynamic_sampling_one_round_is_drawn_and_timed() -> None:
    engine = StubEngine()
    cfg, state = _sampling_state(lambda s, c: 1.0, dynamic=False, engine=engine)
    params = sampling_params(cfg, 0)
    timer = Timer()
    groups = sample_groups(state, params, timer)
    assert state.source.asked == [4] and groups.rounds == 1 and groups.generated_groups == 4
    assert [c.seed for c in engine.calls] == [params.seed]
    assert timer.seconds("generate") > 0 and timer.seconds("reward") > 0
    assert groups.scores.dtype == torch.float32 and groups.scores.shape == (4, 4)


def test_dynamic_sampling_gives_up_after_its_rounds_with_fresh_seeds() -> None:
    engine = StubEngine()
    cfg, state = _sampling_state(lambda s, c: 1.0, dynamic=True, engine=engine)  # no spread
    params = sampling_params(cfg, 0)
    groups = sample_groups(state, params, Timer())
    assert groups.rounds == MAX_DYNAMIC_ROUNDS
    assert [c.seed for c in engine.calls] == [params.seed + 7919 * r for r in range(4)]
    assert state.source.asked == [4] * MAX_DYNAMIC_ROUNDS  # nothing kept: ask for all again
    assert len(groups.samples) == 4  # trains on the last round (its update is skipped)
    assert groups.samples[0].id == str(state.source.n)


def test_dynamic_sampling_asks_only_for_the_missing_groups() -> None:
    calls = iter(range(10_000))

    def odd_prompts_spread(sample: Sample, completion: Completion) -> float:
        alternating = float(next(calls) % 2)  # 0, 1, 0, 1 within a group
        return alternating if int(sample.id) % 2 else 1.0

    cfg, state = _sampling_state(odd_prompts_spread, dynamic=True)
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    # ids 4 3 2 1 -> keeps 3, 1; then 6 5 -> keeps 5; then 7
    assert state.source.asked == [4, 2, 1]
    assert [s.id for s in groups.samples] == ["3", "1", "5", "7"]
    assert groups.rounds == 3 and groups.generated_groups == 7


def test_unseeded_sampling_stays_unseeded_across_rounds() -> None:
    engine = StubEngine()
    cfg, state = _sampling_state(lambda s, c: 1.0, dynamic=True, engine=engine)
    params = sampling_params(cfg, 0)
    from dataclasses import replace

    sample_groups(state, replace(params, seed=None), Timer())
    assert [c.seed for c in engine.calls] == [None] * MAX_DYNAMIC_ROUNDS


def test_rewards_are_called_per_completion_with_its_sample(monkeypatch) -> None:
    seen: list[tuple[str, int]] = []

    def reward(sample: Sample, completion: Completion) -> float:
        seen.append((sample.id, len(completion.token_ids)))
        return 0.0

    cfg, state = _sampling_state(reward, dynamic=False)
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    want = [(s.id, len(c.token_ids)) for s, g in zip(groups.samples, groups.completions) for c in g]
    assert seen == want


def _update_metrics(rollout_gap: float | None = None, **algo: object) -> dict[str, float]:
    cfg = stub_config(algo=algo)
    state = stub_state(cfg)
    with torch.no_grad():  # move the policy off the reference (a fixed, seeded nudge)
        gen = torch.Generator().manual_seed(0)
        for p in state.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    from reasonrl.rl.batching import collate
    from reasonrl.rl.logprobs import batch_logprobs

    adv = torch.linspace(-1, 1, 16)
    batch = collate(groups.flat_prompt_ids(), groups.flat_completions(), adv, pad_id=0)
    if state.ref_model is not None:
        batch = batch.with_fields(
            ref_logprobs=batch_logprobs(state.ref_model, batch, micro_batch_size=4)
        )
    if rollout_gap is not None:  # a sampler that gave each token exp(gap) x less probability
        old = batch_logprobs(state.model, batch, micro_batch_size=4)
        batch = batch.with_fields(rollout_logprobs=(old - rollout_gap) * batch.response_mask)
    sgd = torch.optim.SGD(state.model.parameters(), lr=0.0)
    return policy_update(state.model, sgd, batch, cfg)


def test_old_logprobs_rollout_takes_the_samplers_logprobs() -> None:
    # the stub engine reports log-prob -1 per token; the tiny model's are about -log(V)
    recomputed = _update_metrics()
    rollout = _update_metrics(old_logprobs="rollout")
    assert recomputed["actor/ratio_mean"] == pytest.approx(1.0)
    assert abs(rollout["actor/ratio_mean"] - 1.0) > 0.1


def test_update_passes_the_is_cap_and_the_kl_estimator() -> None:
    # IS weight pi_old / mu = e^2 per token: a cap of 1 truncates it, a cap of 50 does not
    low = _update_metrics(rollout_gap=2.0, is_level="token", is_high=1.0)
    high = _update_metrics(rollout_gap=2.0, is_level="token", is_high=50.0)
    assert low["actor/loss"] != pytest.approx(high["actor/loss"], rel=1e-4)
    masked = _update_metrics(rollout_gap=2.0, is_level="token", is_high=1.0, is_mode="mask")
    assert masked["actor/loss"] != pytest.approx(low["actor/loss"], rel=1e-4)
    k1 = _update_metrics(kl_coef=0.1, kl_estimator="k1")
    k2 = _update_metrics(kl_coef=0.1, kl_estimator="k2")
    assert k2["actor/kl_ref"] > 0
    assert k1["actor/kl_ref"] != pytest.approx(k2["actor/kl_ref"], rel=1e-3)


def test_rewards_get_the_configured_timeout_and_skipped_prompts_are_counted(monkeypatch) -> None:
    from reasonrl.rewards import batch as rollouts_module  # rl.rollouts scores through it

    seen: list = []
    real = rollouts_module.call_reward

    def spy(fn, sample, completion, **kw):
        seen.append(kw)
        return real(fn, sample, completion, **kw)

    monkeypatch.setattr(rollouts_module, "call_reward", spy)
    cfg = stub_config(reward={"kind": "math", "timeout_s": 7.5})
    state = stub_state(cfg, lambda s, c: 1.0)
    state.source = _CountingSource()
    state.source.skipped = 3  # a source that dropped over-long prompts says how many
    groups = sample_groups(state, sampling_params(cfg, 0), Timer())
    assert seen and all(kw == {"timeout_s": 7.5} for kw in seen)
    assert groups.skipped_prompts == 3
    assert groups.metrics()["data/skipped_long_prompts"] == 3.0
    del state.source.skipped
    assert sample_groups(state, sampling_params(cfg, 0), Timer()).skipped_prompts == 0
