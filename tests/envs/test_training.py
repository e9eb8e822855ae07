"""Multi-turn trajectories in training: observation tokens get exactly zero gradient, and a
train_step with env.kind=tool trains on the masked episodes."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.aggregate import aggregate
from reasonrl.algos.objective import policy_objective
from reasonrl.envs.rollout import loss_masks, run_episodes
from reasonrl.envs.tool_env import ToolEnvs
from reasonrl.envs.tools.format import ToolCall
from reasonrl.rl import step as step_module
from reasonrl.rl.batching import collate
from reasonrl.rl.logprobs import response_logprobs
from reasonrl.rl.step import train_step
from reasonrl.rollout.base import SamplingParams
from reasonrl.types import Completion, Sample
from tests.envs.fakes import FakeTool, ScriptEngine
from tests.rl.helpers import VOCAB, tiny_model
from tests.rl.stubs import stub_config, stub_state

# A word tokenizer over ids < VOCAB (the tiny model's vocabulary): "3 5" <-> [3, 5].
CALL = [7, 8]  # a turn ending "7 8" is a tool call; the observation is [9, 10, 11]
OBS = [9, 10, 11]


class WordTok:
    pad_token_id, bos_token_id, eos_token_id = 0, None, None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [int(t) for t in text.split()]}

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return " ".join(map(str, ids)) + " "


def word_script(history: str, j: int) -> str:
    """Two calls ("... 7 8"), then an answer; sample j of a group starts with 3 + j."""
    k = history.split().count("9")  # observations seen
    return f"{3 + j} {4 + k} 7 8 " if k < 2 else f"{5 + j} 6 "


class WordEngine(ScriptEngine):
    """ScriptEngine on word tokens (its char tokenizer does not fit the tiny vocabulary)."""

    def generate(self, prompt_ids, params):
        self.calls.append(([list(p) for p in prompt_ids], params))
        out = []
        for prompt in prompt_ids:
            history = " ".join(map(str, prompt))
            group = []
            for j in range(params.n):
                ids = tuple(int(t) for t in self.script(history, j).split())
                text = " ".join(map(str, ids)) + " "
                group.append(Completion(text, ids, tuple(-1.0 for _ in ids), "stop"))
            out.append(group)
        return out


def tool_factory(tok: WordTok) -> ToolEnvs:
    return ToolEnvs(
        encode=lambda s: tok(s.prompt)["input_ids"],
        tokenize=lambda text: OBS,  # every output renders to the same three tokens
        tools=[FakeTool()],
        parse=lambda text: ToolCall("python", "1") if text.split()[-2:] == ["7", "8"] else None,
        stop=("7 8",),
        max_turns=4,
        max_tool_calls=4,
        max_total_tokens=64,
    )


SAMPLES = [Sample(id="0", prompt="1 2 3"), Sample(id="1", prompt="2 4")]


def episodes_batch():
    tok = WordTok()
    engine = WordEngine(word_script)
    eps = run_episodes(engine, tool_factory(tok), SAMPLES, SamplingParams(n=2, seed=0),
                       decode=tok.decode)  # fmt: skip
    comps = [e.completion() for row in eps for e in row]
    prompts = [list(e.prompt_ids) for row in eps for e in row]
    assert all(e.finish_reason == "stop" and len(e.turns) == 3 for row in eps for e in row)
    return prompts, comps


def test_observation_tokens_get_exactly_zero_gradient() -> None:
    prompts, comps = episodes_batch()
    adv = torch.linspace(-1.0, 1.0, len(comps))
    batch = collate(prompts, comps, adv, pad_id=0, loss_mask=loss_masks(comps))
    obs = (batch.response_mask == 0) & (batch.attention_mask[:, batch.prompt_len :] == 1)
    assert int(obs.sum()) == 2 * len(OBS) * len(comps)  # two observations per episode
    for i, c in enumerate(comps):  # the observation positions are where the tokens were put
        ids = batch.input_ids[i, batch.prompt_len :][obs[i]].tolist()
        assert (
            ids == OBS * 2
            and list(c.token_ids)
            == batch.input_ids[i, batch.prompt_len : batch.prompt_len + len(c.token_ids)].tolist()
        )

    def grads(b):
        model = tiny_model(0)
        logp, _ = response_logprobs(model, b)
        logp.retain_grad()
        loss_mat, _ = policy_objective(
            logp, logp.detach(), b.advantages, b.response_mask, loss="ppo_clip",
            loss_kwargs={"clip_low": 0.2, "clip_high": 0.28}, rollout_logprobs=b.rollout_logprobs,
            is_level="token",
        )  # fmt: skip
        aggregate(loss_mat, b.response_mask, "token_mean").backward()
        return logp.grad, [p.grad.clone() for p in model.parameters()]

    g_logp, g_params = grads(batch)
    assert torch.all(g_logp[obs] == 0.0)  # exactly zero, not merely small
    assert g_logp[batch.response_mask > 0].abs().sum() > 0
    # whatever sits in the masked columns (advantages, behaviour log-probs), nothing changes
    noisy = batch.with_fields(
        advantages=torch.where(obs, torch.full_like(batch.advantages, 5.0), batch.advantages),
        rollout_logprobs=torch.where(obs, torch.full_like(batch.advantages, -9.0),
                                     batch.rollout_logprobs),
    )  # fmt: skip
    g2_logp, g2_params = grads(noisy)
    assert torch.equal(g_logp, g2_logp)
    assert all(torch.equal(a, b) for a, b in zip(g_params, g2_params, strict=True))


def test_train_step_with_a_tool_env_masks_observations(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []
    real = step_module.policy_update

    def spy(model, optimizer, batch, cfg, **kw):
        seen.append(batch)
        return real(model, optimizer, batch, cfg, **kw)

    monkeypatch.setattr(step_module, "policy_update", spy)
    cfg = stub_config(rollout={"n": 2, "prompts_per_step": 2}, algo={"micro_batch_size": 4},
                      env={"kind": "tool", "max_turns": 4})  # fmt: skip
    tok = WordTok()
    state = stub_state(cfg, reward=lambda s, c: float(c.token_ids[0] % 2), samples=SAMPLES,
                       engine=WordEngine(word_script))  # fmt: skip
    state.tokenizer, state.env = tok, tool_factory(tok)
    metrics, groups = train_step(state)
    batch = seen[0]
    assert metrics["env/turns_mean"] == 3.0 and metrics["env/tool_calls"] == 2.0
    assert metrics["env/finish/stop"] == 1.0 and metrics["env/obs_tokens_mean"] == 6.0
    assert (
        int(
            (batch.response_mask == 0)
            .logical_and(batch.attention_mask[:, batch.prompt_len :] == 1)
            .sum()
        )
        == 6 * 4
    )
    assert all(c.loss_mask.count(0.0) == 6 for c in groups.flat_completions())
    assert all(max(v, 0) < VOCAB for v in batch.input_ids.flatten().tolist())
