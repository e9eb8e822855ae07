"""evaluate(): metrics on hand-made completions served by a fake engine; outputs; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonrl.cli.eval import main
from reasonrl.eval.evaluate import evaluate, load_samples
from reasonrl.eval.result import ks_up_to
from reasonrl.eval.tables import markdown_table, write_outputs
from reasonrl.tasks.synth import make_dataset, row_to_sample, synth_reward
from reasonrl.types import Completion


class FakeEngine:
    """Returns pre-written completion texts per prompt index, in order; records the params."""

    def __init__(self, texts: list[list[str]]) -> None:
        self.texts = texts
        self.params = None

    def generate(self, prompt_ids, params):
        self.params = params
        assert len(prompt_ids) == len(self.texts)
        return [
            [Completion(text=t, token_ids=(7,) * (i + 1), logprobs=(0.0,) * (i + 1),
                        finish_reason="length" if t == "garbage" else "stop")
             for i, t in enumerate(group[: params.n])]
            for group in self.texts
        ]  # fmt: skip


@pytest.fixture(scope="module")
def rows():
    op2 = make_dataset([2], 1, seed=5, split="heldout")
    op3 = make_dataset([3], 1, seed=5, split="heldout")
    return op2 + op3


def lucky_guess(row: dict) -> str:
    """The right answer after a trace that skips its first step (outcome 1, strict 0)."""
    trace = row["trace"].split(". ", 1)[1]
    return f" {trace} </solution> <answer> {row['answer']} </answer>"


def wrong_answer(row: dict) -> str:
    return f" {row['trace']} </solution> <answer> {int(row['answer']) + 1} </answer>"


def test_metrics_on_hand_made_completions(rows) -> None:
    a, b = rows
    sample_a = row_to_sample(a)
    # the hand-made completions really score as intended
    assert synth_reward(sample_a, a["completion"]).verified is True
    lucky = synth_reward(sample_a, lucky_guess(a))
    assert (lucky.outcome, lucky.verified) == (True, False)
    assert synth_reward(sample_a, wrong_answer(a)).outcome is False
    engine = FakeEngine([
        [a["completion"], lucky_guess(a), wrong_answer(a), "garbage"],  # op 2: c=2, strict c=1
        [wrong_answer(b)] * 4,                                          # op 3: c=0
    ])  # fmt: skip
    res = evaluate(None, _Tok(), [row_to_sample(a), row_to_sample(b)], samples_per_problem=4,
                   engine=engine, temperature=0.7, seed=3)  # fmt: skip
    assert engine.params.n == 4 and engine.params.temperature == 0.7 and engine.params.seed == 3
    op2, op3, overall = res.per_op["2"], res.per_op["3"], res.overall
    # n=4, c=2: pass@1 = 2/4; pass@2 = 1 - C(2,2)/C(4,2) = 1 - 1/6; pass@4 = 1
    assert op2["pass@1"] == pytest.approx(0.5)
    assert op2["pass@2"] == pytest.approx(5 / 6)
    assert op2["pass@4"] == 1.0
    # strict c=1: pass@1 = 1/4; pass@2 = 1 - C(3,2)/C(4,2) = 1/2; pass@4 = 1
    assert op2["strict_pass@1"] == pytest.approx(0.25)
    assert op2["strict_pass@2"] == pytest.approx(0.5)
    # votes [gold, gold, gold+1, None]: maj@1 = gold (right), maj@2 right, maj@4 right
    assert (op2["maj@1"], op2["maj@2"], op2["maj@4"]) == (1.0, 1.0, 1.0)
    assert op3["pass@4"] == 0.0 and op3["strict_pass@4"] == 0.0 and op3["maj@4"] == 0.0
    # overall = mean over problems
    assert overall["pass@1"] == pytest.approx(0.25)
    assert overall["strict_pass@2"] == pytest.approx(0.25)
    assert overall["problems"] == 2
    # token counts 1..4 per group: mean 2.5; one of 8 completions hit the length cap
    assert overall["mean_tokens"] == pytest.approx(2.5)
    assert overall["truncated"] == pytest.approx(1 / 8)


def test_greedy_forces_one_sample(rows) -> None:
    engine = FakeEngine([[r["completion"]] for r in rows])
    res = evaluate(None, _Tok(), [row_to_sample(r) for r in rows], samples_per_problem=8,
                   greedy=True, engine=engine)  # fmt: skip
    assert engine.params.n == 1 and engine.params.greedy
    assert res.overall["strict_pass@1"] == 1.0
    assert "pass@2" not in res.overall


def test_crashing_reward_fails_the_sample_not_the_run(rows) -> None:
    def boom(sample, completion):
        raise RuntimeError("bad grader")

    engine = FakeEngine([[r["completion"]] * 2 for r in rows])
    res = evaluate(None, _Tok(), [row_to_sample(r) for r in rows], samples_per_problem=2,
                   engine=engine, reward_fn=boom)  # fmt: skip
    assert res.overall["pass@1"] == 0.0


def test_outputs_and_table(rows, tmp_path: Path) -> None:
    engine = FakeEngine([[r["completion"], wrong_answer(r)] for r in rows])
    res = evaluate(None, _Tok(), [row_to_sample(r) for r in rows], samples_per_problem=2,
                   engine=engine)  # fmt: skip
    paths = write_outputs(res, tmp_path)
    assert {p.name for p in paths} == {"eval.json", "eval.md", "passk_by_op.png"}
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["per_op"]["2"]["pass@1"] == 0.5 and len(data["records"]) == 2
    table = markdown_table(res)
    assert "| op | problems | pass@1 | pass@2 | strict_pass@1 | strict_pass@2 | maj@2 |" in table
    assert "| all | 2 | 0.500 | 1.000 | 0.500 | 1.000 |" in table


def test_reward_without_outcome_counts_full_score(rows) -> None:
    from reasonrl.types import RewardResult

    def half_or_full(sample, completion):  # e.g. a binary math reward: no "outcome" in info
        return RewardResult(1.0 if completion.text == "yes" else 0.5, {})

    engine = FakeEngine([["yes", "no"], ["no", "no"]])
    res = evaluate(None, _Tok(), [row_to_sample(r) for r in rows], samples_per_problem=2,
                   engine=engine, reward_fn=half_or_full)  # fmt: skip
    assert res.overall["pass@1"] == pytest.approx(0.25)  # 1 of 4 samples scored 1.0
    assert "strict_pass@1" not in res.overall  # no `verified`: no strict metrics
    assert "maj@1" not in res.overall  # no `gold_answer`: maj@k is undefined, not 0


def test_math_maj_at_k_votes_on_normalised_answers() -> None:
    """GSM8K-style: the grader's answers "18", "18.0" and "\\boxed{18}" are one vote, against
    the math task's own gold form (the synthetic normaliser is never applied)."""
    from reasonrl.rewards import REWARDS
    from reasonrl.types import Sample

    samples = [Sample(prompt="q1", answer="18", id="a"), Sample(prompt="q2", answer="1/2", id="b")]
    engine = FakeEngine([
        ["so 18", "#### 18.0", "\\boxed{18}", "it is 7"],
        ["\\boxed{\\frac{1}{2}}", "0.5", "answer is 3", "answer is 3"],
    ])  # fmt: skip
    res = evaluate(None, _Tok(), samples, samples_per_problem=4, engine=engine,
                   reward_fn=REWARDS["math"])  # fmt: skip
    first, second = res.records
    assert first.answers == ["18", "18", "18", "7"] and first.gold == "18"
    assert second.answers == ["1/2", "1/2", "3", "3"] and second.gold == "1/2"
    assert res.per_op["all"]["maj@4"] == 1.0  # 3 of 4 vote 18; 1/2 wins the tie by order
    assert res.overall["pass@4"] == 1.0 and res.overall["pass@1"] == pytest.approx(5 / 8)


def test_code_reward_reports_no_maj_at_k() -> None:
    from reasonrl.rewards import REWARDS
    from reasonrl.rewards.api import gold_answer
    from reasonrl.types import Sample

    assert gold_answer(REWARDS["code_tests"], Sample(prompt="p", answer="x", id="c")) is None


def test_ks() -> None:
    assert ks_up_to(1) == [1]
    assert ks_up_to(8) == [1, 2, 4, 8]
    assert ks_up_to(6) == [1, 2, 4, 6]


def test_load_samples_and_cli_errors(rows, tmp_path: Path, capsys) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = load_samples(path, limit_per_op=1)
    assert [s.meta["op"] for s in samples] == [2, 3]
    assert main(["/nonexistent/model", "--data", str(path)]) == 2
    assert "model directory not found" in capsys.readouterr().err


class _Tok:
    """Just enough tokenizer for encode_prompt (the fake engine ignores the ids)."""

    bos_token_id = 1

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [len(w) for w in text.split()]}
