"""The multi-turn driver: token-in token-out sequences, masks, limits, errors, closing."""

from __future__ import annotations

import pytest
import torch

from reasonrl.envs.base import StepResult
from reasonrl.envs.rollout import (
    EpisodeCompletion,
    episode_metrics,
    loss_masks,
    run_episodes,
    score_episodes,
)
from reasonrl.envs.tool_env import ToolEnvs
from reasonrl.rl.batching import collate
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import RewardResult, Sample
from tests.envs.fakes import TOK, FakeTool, ScriptEngine, encode, tokenize

SAMPLE = Sample(id="0", prompt="Q:")


def calls_then_answer(calls: int, answer: str = "ans 42$"):
    """Turn k (k = outputs seen so far) calls `k+1` while k < calls, then answers."""

    def script(history: str, j: int) -> str:
        k = history.count("<output>")
        return f"t{k}<code>{k}+1</code>tail" if k < calls else answer

    return script


def factory(tool: FakeTool | None = None, **limits) -> ToolEnvs:
    kw = {"max_turns": 8, "max_tool_calls": 8, "max_total_tokens": 1000} | limits
    return ToolEnvs(encode=encode, tokenize=tokenize, tools=[tool or FakeTool()], **kw)


def play(script, fac, n: int = 2, max_new: int = 64, samples=(SAMPLE,), workers: int = 1):
    engine = ScriptEngine(script)
    params = SamplingParams(n=n, max_new_tokens=max_new, seed=3)
    eps = run_episodes(engine, fac, list(samples), params, decode=TOK.decode, workers=workers)
    return engine, eps


def test_trained_tokens_are_exactly_the_sampled_and_inserted_tokens() -> None:
    engine, eps = play(calls_then_answer(2), factory())
    ep = eps[0][0]
    want = "t0<code>0+1</code>" + "\n<output>\n1\n</output>\n" + "t1<code>1+1</code>"
    want += "\n<output>\n2\n</output>\n" + "ans 42$"
    comp = ep.completion()
    assert isinstance(comp, EpisodeCompletion) and comp.text == want
    assert list(comp.token_ids) == tokenize(want) and ep.finish_reason == "stop"
    # the engine saw each turn's history as a prefix of the trained sequence, never re-tokenized
    full = [*ep.prompt_ids, *comp.token_ids]
    assert engine.calls[0][0] == [list(ep.prompt_ids)] and engine.calls[0][1].n == 2
    for prompts, params in engine.calls[1:]:
        assert params.n == 1 and "</code>" in params.stop
        for h in prompts:
            assert full[: len(h)] == h
    # the training batch holds those bytes, masked on the observations
    batch = collate([list(ep.prompt_ids)], [comp], torch.zeros(1), pad_id=0,
                    loss_mask=loss_masks([comp]))  # fmt: skip
    assert batch.input_ids[0].tolist() == full
    obs = [o for part in ep.observations for o in part]
    mask = batch.response_mask[0].tolist()
    assert sum(mask) == len(full) - len(ep.prompt_ids) - len(obs)
    for text in ("\n<output>\n1\n</output>\n", "\n<output>\n2\n</output>\n"):
        start = want.index(text)
        assert mask[start : start + len(text)] == [0.0] * len(text)
        assert batch.rollout_logprobs[0, start : start + len(text)].abs().sum() == 0
    sampled = [lp for t in ep.turns for lp in t.logprobs]
    assert [lp for lp, m in zip(batch.rollout_logprobs[0].tolist(), mask) if m] == pytest.approx(
        sampled
    )


@pytest.mark.parametrize(
    ("limits", "calls", "max_new", "reason"),
    [
        ({"max_turns": 2}, 5, 64, "max_turns"),
        ({"max_tool_calls": 1}, 5, 64, "max_tool_calls"),
        ({"max_total_tokens": 30}, 5, 64, "max_tokens"),
        ({"max_total_tokens": 60}, 5, 64, "max_tokens"),  # an observation would overflow
        ({"max_total_tokens": 45}, 5, 64, "max_tokens"),  # turn 2 cut to the 6 tokens left
        ({}, 5, 10, "length"),  # a turn hit rollout.max_new_tokens
        ({}, 1, 64, "stop"),
    ],
)
def test_each_limit_ends_the_episode_with_its_finish_reason(limits, calls, max_new, reason):
    tool = FakeTool()
    _, eps = play(calls_then_answer(calls), factory(tool, **limits), max_new=max_new)
    ep = eps[0][0]
    assert ep.finish_reason == reason
    budget = limits.get("max_total_tokens")
    if budget is not None:
        assert len(ep.token_ids) <= budget
    if budget == 45:  # the kept prefix is exactly what was sampled, its text decoded
        assert len(ep.token_ids) == 45 and ep.turns[-1].text == "t1<co"
    if reason == "max_turns":
        assert len(ep.turns) == 2 and ep.metrics["tool_calls"] == 1
    if reason == "max_tool_calls":
        assert ep.metrics["tool_calls"] == 1 and len(ep.turns) == 2
    metrics = episode_metrics([e.completion() for e in eps[0]])
    assert metrics[f"env/finish/{reason}"] == 1.0
    assert tool.closed == len(tool.sessions)  # every session closed, whatever ended it
    comp = ep.completion()
    assert comp.truncated == (reason in ("length", "max_tokens"))


def test_a_failing_tool_call_fails_that_call_only() -> None:
    codes = ["bad", "raise", "2*3"]

    def script(history: str, j: int) -> str:
        k = history.count("<output>")
        return f"<code>{codes[k]}</code>" if k < 3 else "done$"

    tool = FakeTool()
    _, eps = play(script, factory(tool), n=1)
    ep = eps[0][0]
    assert ep.finish_reason == "stop" and len(ep.turns) == 4
    assert ep.observation_texts == [
        "\n<output>\nerror: exception\nTraceback: NameError\n</output>\n",
        "\n<output>\nerror: unavailable\ntool error: RuntimeError: tool crashed\n</output>\n",
        "\n<output>\n6\n</output>\n",
    ]
    assert ep.metrics == {"tool_calls": 3.0, "tool_errors": 2.0, "tool_error/exception": 1.0,
                          "tool_error/unavailable": 1.0}  # fmt: skip
    m = episode_metrics([ep.completion()])
    assert m["env/tool_error_rate"] == pytest.approx(2 / 3)
    assert len(tool.sessions) == 1 and tool.sessions[0].calls == codes  # state kept across calls
    assert tool.closed == 1


def test_sessions_close_when_the_rollout_raises() -> None:
    tool = FakeTool()

    def script(history: str, j: int) -> str:
        if "<output>" in history:
            raise RuntimeError("engine died")
        return "<code>1</code>"

    with pytest.raises(RuntimeError, match="engine died"):
        play(script, factory(tool), n=3)
    assert len(tool.sessions) == 3 and tool.closed == 3


def test_an_env_that_raises_fails_its_episode_only() -> None:
    class Broken:
        stop, max_turns, max_total_tokens = (), 3, None

        def __call__(self, sample):
            return BrokenEnv(sample)

    class BrokenEnv:
        def __init__(self, sample):
            self.sample = sample

        def reset(self):
            return encode(self.sample)

        def step(self, action):
            if self.sample.id == "bad":
                raise ValueError("boom")
            return StepResult(done=True, reward=0.5)

    samples = [Sample(id="bad", prompt="a"), Sample(id="ok", prompt="b")]
    _, eps = play(lambda h, j: "x$", Broken(), n=2, samples=samples)
    rewards = score_episodes(lambda s, c: 1.0, Broken(), samples, eps)
    assert [e.finish_reason for e in eps[0]] == ["error", "error"]
    assert [r.info.get("error_kind") for r in rewards[0]] == ["env_error"] * 2
    assert [r.score for r in rewards[1]] == [0.5, 0.5]  # the env's own reward, no reward_fn


def test_workers_change_nothing_but_time() -> None:
    samples = [Sample(id=str(i), prompt=f"Q{i}:") for i in range(3)]
    _, one = play(calls_then_answer(2), factory(), samples=samples, workers=1)
    _, four = play(calls_then_answer(2), factory(), samples=samples, workers=4)
    assert [[e.completion().token_ids for e in r] for r in one] == [
        [e.completion().token_ids for e in r] for r in four
    ]


def test_transcript_reward_is_one_batched_call_and_score_group_replaces_it() -> None:
    fac = factory()
    samples = [Sample(id=str(i), prompt=f"Q{i}:") for i in range(2)]
    _, eps = play(calls_then_answer(1), fac, n=3, samples=samples)
    seen = []

    def reward(sample, completion):  # sees the whole transcript
        return float("\n<output>\n1\n</output>\n" in completion.text)

    def batch(samples, completions):
        seen.append(len(samples))
        return [reward(s, c) for s, c in zip(samples, completions)]

    reward.batch = batch
    rewards = score_episodes(reward, fac, samples, eps)
    assert seen == [6] and all(r.score == 1.0 for row in rewards for r in row)

    def score_group(sample, completions, results):
        assert [r.score for r in results] == [1.0] * 3
        return [RewardResult(float(i)) for i in range(len(completions))]

    fac.score_group = score_group
    rewards = score_episodes(reward, fac, samples, eps)
    assert [[r.score for r in row] for row in rewards] == [[0.0, 1.0, 2.0]] * 2
