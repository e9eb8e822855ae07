"""Dense step rewards in the RL step: farming with raw step rewards, none with Clip/Delta."""

from __future__ import annotations

import pytest
import torch

from reasonrl.rl.advantage import compute_advantages
from reasonrl.rl.dense import char_to_token, dense_token_rewards
from reasonrl.rl.rollouts import Groups
from reasonrl.tasks.synth.tokenizer import build_synth_tokenizer
from reasonrl.types import Completion, RewardResult, Sample
from tests.rl.stubs import stub_config
from tests.tasks.synth.test_steps import GOLD, STEP_E

TOK = build_synth_tokenizer()
SYNTH = {"task": "synth", "benchmark": None}
SAMPLE = Sample(id="t", prompt="<solution>", answer="6", meta={"trace": GOLD})


def _completion(trace: str) -> Completion:
    ids = TOK(f" {trace} </solution> <answer> 6 </answer>", add_special_tokens=False)["input_ids"]
    text = TOK.decode(ids, skip_special_tokens=False)  # the engines' text rule
    return Completion(text, tuple(ids), tuple([0.0] * len(ids)))


def _groups(repeats: list[int]) -> tuple[Groups, torch.Tensor]:
    traces = [GOLD.replace("Define total", STEP_E * k + "Define total") for k in repeats]
    comps = [_completion(t) for t in traces]
    g = Groups(
        samples=[SAMPLE],
        prompt_ids=[[0]],
        completions=[comps],
        rewards=[[RewardResult(1.0, outcome=True)] * len(comps)],
        scores=torch.ones(1, len(comps)),
    )
    t = max(len(c.token_ids) for c in comps)
    mask = torch.tensor([[1.0] * len(c.token_ids) + [0.0] * (t - len(c.token_ids)) for c in comps])
    return g, mask


def test_step_rewards_land_on_the_steps_last_tokens() -> None:
    g, mask = _groups([0])
    tokens, metrics = dense_token_rewards(g, "raw", coef=1.0, eta=1.0, tokenizer=TOK, mask=mask)
    c = g.completions[0][0]
    hot = tokens[0].nonzero().flatten().tolist()
    assert len(hot) == 3 and tokens.sum() == 3.0 and metrics["reward/dense_steps"] == 3.0
    assert [TOK.decode([c.token_ids[i]]) for i in hot] == ["."] * 3  # each Define's full stop
    assert char_to_token(TOK, c, len(c.text)) == len(c.token_ids) - 1


@pytest.mark.parametrize(
    ("kind", "want"),  # return of a completion with k extra correct steps, k = 0, 1, 3, 6
    [("raw", [3.0, 4.0, 6.0, 9.0]), ("clip", [0.0] * 4), ("delta", [1.0] * 4),
     ("clip_delta", [0.0] * 4)],
)  # fmt: skip
def test_raw_step_rewards_can_be_farmed_clip_and_delta_cannot(kind: str, want: list) -> None:
    g, mask = _groups([0, 1, 3, 6])
    tokens, _ = dense_token_rewards(g, kind, coef=1.0, eta=1.0, tokenizer=TOK, mask=mask)
    assert tokens.sum(dim=1).tolist() == pytest.approx(want)


def test_dense_rewards_reach_the_token_level_advantage() -> None:
    cfg = stub_config(algo={"advantage": "reinforce_pp"})
    _, mask = _groups([0, 0, 0, 0])
    scores = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    dense = torch.zeros_like(mask)
    dense[0, 2] = 1.0  # one step reward on token 2 of the first completion
    plain, _ = compute_advantages(cfg, scores, mask)
    shaped, _ = compute_advantages(cfg, scores, mask, dense=dense)
    # REINFORCE++ (gamma 1): only completion 0's tokens 0..2 see the extra return, so after
    # whitening they rank above its later tokens, which equal the plain run's ordering
    assert shaped[0, 0] > shaped[0, 3] and plain[0, 0] == plain[0, 3]


def test_config_refuses_dense_without_token_level_advantage() -> None:
    with pytest.raises(ValueError, match=r"reward\.dense=clip needs a token-level"):
        stub_config(reward={"kind": "synth_strict", "dense": "clip"},
                    data=SYNTH, algo={"advantage": "grpo"})  # fmt: skip
    cfg = stub_config(reward={"kind": "synth_strict", "dense": "delta"}, data=SYNTH,
                      algo={"advantage": "reinforce_pp"})  # fmt: skip
    assert cfg.reward.dense == "delta"


def test_kimi_length_penalty_waits_for_its_start_step() -> None:
    from reasonrl.rl.advantage import shaped_scores

    g, _ = _groups([0, 3])  # both correct; the longer one gets lambda = -0.5
    cfg = stub_config(algo={"length_penalty_coef": 0.2, "length_penalty_start": 5})
    assert torch.equal(shaped_scores(g, cfg, step=4), g.scores)  # warm-up: off
    assert shaped_scores(g, cfg, step=5)[0].tolist() == pytest.approx([1.1, 0.9])
