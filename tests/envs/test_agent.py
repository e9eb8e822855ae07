"""Issue 18 part C wiring: SFT observation masking, tool tokens on the shipped model, tool-reward
terms (hand-derived tables), held-out evaluation through the tool env, the overlong limit."""

from __future__ import annotations

import pytest
import torch

from reasonrl.algos.tool_reward import (
    failed_call_penalty,
    gated_tool_reward,
    messages_of,
    tcr_reward,
)
from reasonrl.envs.rollout import EpisodeCompletion
from reasonrl.envs.tool_env import ToolEnvs
from reasonrl.envs.tools.calculator import CalculatorTool
from reasonrl.envs.tools.format import TagFormat
from reasonrl.rl.envs import ensure_tool_tokens, response_limit, with_tool_reward
from reasonrl.rl.evaluation import eval_metrics, run_env_eval
from reasonrl.sft.data import collate_sft, completion_tokens, encode_row
from reasonrl.tasks.synth import build_synth_tokenizer
from reasonrl.tasks.synth.tooltrace import tool_output_spans
from reasonrl.types import Completion, RewardResult, Sample
from tests.envs.fakes import EOS, TOK, ScriptEngine, encode, tokenize
from tests.rl.stubs import stub_config

TRACE = (
    "so b = 417 * a = 417 * 312 = <code> 417 * 312 </code>\n<output>\n130104\n</output>\n 130104."
)


# --- SFT: tool outputs carry loss weight exactly 0 -------------------------------------------


@pytest.fixture(scope="module")
def tool_tok():
    return build_synth_tokenizer(tools=True)


def test_sft_row_masks_exactly_the_output_spans(tool_tok) -> None:
    text = " " + TRACE + " <code> 1 + </code>\n<output>\nerror: syntax\n</output>\n done."
    ids, mask = completion_tokens(tool_tok, text)
    # piecewise tokenization = one call for the word-level tokenizer (same sequence as RL's)
    assert ids == tool_tok(text, add_special_tokens=False)["input_ids"]
    toks = tool_tok.convert_ids_to_tokens(ids)
    inside, want = False, []
    for t in toks:  # hand-derived: everything from <output> to </output>, both tags included
        inside = inside or t == "<output>"
        want.append(0.0 if inside else 1.0)
        inside = inside and t != "</output>"
    # <output> 130 ##1 ##0 ##4 </output> (6) and <output> error : syntax </output> (5)
    assert mask == want and mask.count(0.0) == 6 + 5
    row = encode_row(tool_tok, {"prompt": "<question> q </question>", "completion": text})
    assert row.token_mask is not None and row.masked_tokens == mask.count(0.0)
    batch = collate_sft([row], pad_id=0)
    start = len(row.prompt_ids)
    w = batch.loss_weight[0, start : start + len(mask)]
    assert torch.equal(w == 0, torch.tensor(mask) == 0)  # exactly zero, exactly there
    assert float(w[torch.tensor(mask) == 0].abs().sum()) == 0.0
    assert batch.n_tokens == len(row.completion_ids) - row.masked_tokens


def test_sft_row_without_tool_output_is_unchanged(tool_tok) -> None:
    row = encode_row(tool_tok, {"prompt": "<question> q </question>", "completion": " x = 3."})
    assert row.token_mask is None
    assert tool_output_spans(" x = 3.") == []


def test_spans_cover_a_truncated_output() -> None:
    assert tool_output_spans("a <output> 12") == [(2, 13)]


# --- tool tokens on the shipped base ---------------------------------------------------------


def test_shipped_model_gets_the_tool_tokens_once() -> None:
    from reasonrl.models.io import load_policy

    model, tok = load_policy("builtin:synth-micro", dtype="fp32")
    rows = model.get_input_embeddings().weight.shape[0]
    assert not ensure_tool_tokens(stub_config(), tok, model)  # single_turn: untouched
    assert len(tok) == rows
    cfg = stub_config(env={"kind": "tool", "tool": "calculator"})
    assert ensure_tool_tokens(cfg, tok, model)
    ref = build_synth_tokenizer(tools=True)
    for t in ("<code>", "</code>", "<output>", "</output>"):
        assert tok.convert_tokens_to_ids(t) == ref.convert_tokens_to_ids(t) >= rows
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == len(ref)
    assert not ensure_tool_tokens(cfg, tok, model)  # idempotent


# --- reward terms: hand-derived tables -------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "turns", "want"),
    [(True, 2, 1.0), (True, 10, 1.0), (False, 2, -1.0), (False, 6, -0.8), (False, 10, -0.6),
     (False, 30, -0.6)],
)  # fmt: skip
def test_tcr_reward_table(correct: bool, turns: int, want: float) -> None:
    # techniques.md §13.2: wrong with 2 turns -1, 6 turns -1 + 0.1 * 2 = -0.8, 10 turns capped
    assert tcr_reward(correct, turns) == pytest.approx(want)


def test_messages_gated_bonus_and_penalty() -> None:
    assert messages_of(0) == 2 and messages_of(3) == 8
    # AgentMath: R_acc + 1[R_acc = 1] min(R_max, alpha + beta N)
    assert gated_tool_reward(1.0, 2, alpha=0.1, beta=0.05, r_max=0.3) == pytest.approx(1.2)
    assert gated_tool_reward(1.0, 9, alpha=0.1, beta=0.05, r_max=0.3) == pytest.approx(1.3)
    assert gated_tool_reward(0.0, 9, alpha=0.1, beta=0.05, r_max=0.3) == 0.0
    assert failed_call_penalty(1.0, 3, 0.1) == pytest.approx(0.7)


def _episode(calls: float, errors: float) -> EpisodeCompletion:
    return EpisodeCompletion("t", (1,), (0.0,), metrics={"tool_calls": calls,
                                                          "tool_errors": errors})  # fmt: skip


def test_with_tool_reward_applies_the_configured_terms() -> None:
    def base(sample: Sample, completion: Completion) -> RewardResult:
        ok = sample.answer == "1"
        return RewardResult(float(ok), {}, "a", outcome=ok, verified=ok)

    base.gold_answer = lambda s: "a"  # type: ignore[attr-defined]
    right, wrong = Sample(id="r", prompt="", answer="1"), Sample(id="w", prompt="", answer="0")
    tool = {"kind": "tool", "tool": "calculator"}
    assert with_tool_reward(stub_config(env=tool), base) is base  # nothing on: unchanged
    fn = with_tool_reward(stub_config(env={**tool, "failed_call_penalty": 0.1}), base)
    assert fn(right, _episode(3, 2)).score == pytest.approx(0.8)
    assert fn(wrong, _episode(3, 2)).score == pytest.approx(-0.2)
    r = fn(right, _episode(3, 2))
    assert (r.outcome, r.verified, r.answer, r.info["task_score"]) == (True, True, "a", 1.0)
    assert fn.gold_answer(right) == "a"  # type: ignore[attr-defined]
    fn = with_tool_reward(stub_config(env={**tool, "turn_credit": True}), base)
    assert fn(wrong, _episode(2, 0)).score == pytest.approx(-0.8)  # 6 messages
    assert fn(right, _episode(2, 0)).score == 1.0
    fn = with_tool_reward(stub_config(env={**tool, "tool_bonus": (0.1, 0.05, 0.3)}), base)
    assert fn(right, _episode(2, 0)).score == pytest.approx(1.2)
    assert fn(wrong, _episode(2, 0)).score == 0.0
    # a plain completion has no counts: no penalty, no bonus beyond alpha
    assert fn(right, Completion("t", (1,), (0.0,))).score == pytest.approx(1.1)


def test_tool_reward_keys_are_refused_without_the_tool_env() -> None:
    with pytest.raises(ValueError, match="failed_call_penalty"):
        stub_config(env={"failed_call_penalty": 0.1})


# --- overlong shaping limit ------------------------------------------------------------------


def test_response_limit_is_the_episode_budget_for_tools() -> None:
    assert response_limit(stub_config()) == 8
    cfg = stub_config(
        env={"kind": "tool", "tool": "calculator", "max_total_tokens": 40},
        algo={"overlong_buffer": 16},
    )  # fmt: skip (16 >= max_new_tokens = 8)
    assert response_limit(cfg) == 40
    with pytest.raises(ValueError, match=r"env\.max_total_tokens=40"):
        stub_config(env={"kind": "tool", "tool": "calculator", "max_total_tokens": 40},
                    algo={"overlong_buffer": 40})  # fmt: skip


# --- held-out evaluation through the env -----------------------------------------------------


def _answer_reward(sample: Sample, completion: Completion) -> RewardResult:
    ok = completion.text.rstrip(EOS).endswith(str(sample.answer))
    return RewardResult(float(ok), {}, outcome=ok, verified=ok)


def test_env_eval_plays_episodes_and_reports_tool_stats() -> None:
    def script(history: str, j: int) -> str:
        if "<output>" not in history:  # first turn: a good call (even id) or a bad one (odd)
            return "<code>6*7</code>" if history.startswith("0") else "<code>6*</code>"
        return " 42" + EOS

    cfg = stub_config(env={"kind": "tool", "tool": "calculator"},
                      eval={"samples": 1, "temperature": 0.0, "max_new_tokens": 32})  # fmt: skip
    tags = TagFormat(tags=(("code", "calculator"),))
    fac = ToolEnvs(encode=encode, tokenize=tokenize, tools=[CalculatorTool()], parse=tags.parse,
                   render=tags.render)  # fmt: skip
    samples = [Sample(id=str(i), prompt=f"{i}Q", answer="42", meta={"op": 2}) for i in range(2)]
    result = run_env_eval(None, TOK, samples, cfg, engine=ScriptEngine(script),
                          reward_fn=_answer_reward, factory=fac)  # fmt: skip
    assert result["overall"]["pass@1"] == 1.0 and result["overall"]["strict_pass@1"] == 1.0
    env = result["env"]
    assert env["tool_calls"] == 1.0 and env["tool_error_rate"] == 0.5 and env["turns_mean"] == 2
    assert env["finish/stop"] == 1.0
    m = eval_metrics(result)
    assert m["eval/tool_calls"] == 1.0 and m["eval/tool_error_rate"] == 0.5
    assert result["settings"]["env"] == "tool" and result["settings"]["greedy"]


def test_run_eval_takes_the_env_path_for_tool_runs() -> None:
    from reasonrl.rl.evaluation import run_eval

    cfg = stub_config(env={"kind": "tool", "tool": "calculator"},
                      eval={"samples": 1, "temperature": 0.0, "max_new_tokens": 32})  # fmt: skip
    engine = ScriptEngine(lambda h, j: " 5" + EOS)
    samples = [Sample(id="0", prompt="Q", answer="5")]
    result = run_eval(None, TOK, samples, cfg, engine=engine, reward_fn=_answer_reward)
    assert "env" in result and result["env"]["tool_calls"] == 0.0
    assert result["overall"]["pass@1"] == 1.0
