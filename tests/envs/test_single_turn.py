"""The single-turn env is the loop as it was: same engine calls, rewards, metrics, samples.

The reference is the pre-environment rollout, written out here (encode the prompts, ONE engine
call with n = G, ONE batched reward call) and swapped in for `rl.rollouts.play_groups`; two steps
of each config must give identical metrics (timings aside), rollouts and advantages.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from reasonrl.data.templates import PromptFormat, prompt_token_ids
from reasonrl.envs.rollout import run_episodes, score_episodes
from reasonrl.envs.single_turn import SingleTurnEnvs
from reasonrl.rewards.batch import call_reward_batch
from reasonrl.rl import rollouts
from reasonrl.rl.step import train_step
from reasonrl.rollout.base import SamplingParams
from tests.rl.stubs import (
    StubEngine,
    StubTokenizer,
    even_fraction,
    prompts,
    stub_config,
    stub_state,
)


def pre_env_play(state, samples, params, timer):
    """The rollout of the loop before envs existed (rl/rollouts.py at 3964aff)."""
    fmt = PromptFormat.from_config(state.cfg)
    prompt_ids = [prompt_token_ids(state.tokenizer, s, fmt) for s in samples]
    with timer("generate") if timer else nullcontext():
        completions = state.engine.generate(prompt_ids, params)
    with timer("reward") if timer else nullcontext():
        rewards, scores = rollouts.score_groups(state, samples, completions)
    return prompt_ids, completions, rewards, scores


def two_steps(cfg) -> list:
    torch.manual_seed(0)
    state = stub_state(cfg)
    out = []
    for _ in range(2):
        metrics, groups = train_step(state)
        metrics = {k: v for k, v in metrics.items() if not k.startswith("perf/")}
        rows = [(r.prompt_ids, r.completion, r.reward, r.advantage) for r in groups.rollouts()]
        out.append((metrics, rows))
    return out


@pytest.mark.parametrize(
    "algo",
    [
        {"preset": "grpo"},
        {"preset": "dapo", "overlong_buffer": 4},
        pytest.param({"advantage": "remax"}, marks=pytest.mark.slow),
    ],
    ids=["grpo", "dapo_dynamic_sampling", "remax_greedy_baseline"],
)
def test_env_path_equals_the_pre_env_loop(monkeypatch: pytest.MonkeyPatch, algo: dict) -> None:
    cfg = stub_config(algo={"micro_batch_size": 4, **algo})
    new = two_steps(cfg)
    monkeypatch.setattr(rollouts, "play_groups", pre_env_play)
    old = two_steps(cfg)
    for (m_new, rows_new), (m_old, rows_old) in zip(new, old, strict=True):
        assert rows_new == rows_old
        assert m_new.keys() == m_old.keys()
        for key in m_new:  # NaN == NaN for the not-applicable means
            both_nan = m_new[key] != m_new[key] and m_old[key] != m_old[key]
            assert m_new[key] == m_old[key] or both_nan, key
        assert not any(k.startswith("env/") for k in m_new)


def test_one_engine_call_and_one_reward_call_per_round() -> None:
    engine, seen = StubEngine(), []

    def reward(sample, completion):
        return even_fraction(sample, completion)

    reward.batch = lambda s, c: seen.append(len(s)) or [even_fraction(a, b) for a, b in zip(s, c)]
    samples = prompts(3)
    tok = StubTokenizer()
    fac = SingleTurnEnvs(lambda s: tok(s.prompt)["input_ids"])
    params = SamplingParams(n=4, max_new_tokens=8, seed=11)
    eps = run_episodes(engine, fac, samples, params)
    rewards = score_episodes(reward, fac, samples, eps)
    assert engine.calls == [params]  # the caller's params, untouched: n = G, no stop added
    direct = StubEngine().generate([tok(s.prompt)["input_ids"] for s in samples], params)
    assert [[e.completion() for e in row] for row in eps] == direct
    assert seen == [12]
    flat = call_reward_batch(reward, [s for s in samples for _ in range(4)],
                             [c for row in direct for c in row])  # fmt: skip
    assert [r for row in rewards for r in row] == flat
