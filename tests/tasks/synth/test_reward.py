"""Reward table of the synthetic task (arXiv 2512.07783 §3.2)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.tasks.synth.dataset import problem_to_row, row_to_sample
from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.reward import SYNTH_REWARDS, synth_reward
from reasonrl.types import Completion, Sample

GOLD = (
    "Define public highschool in Hawkesbury as r; so r = 3. Define culinarian school in "
    "Hawkesbury as e; so e = r = 3. Define total number of schools in Hawkesbury as O; "
    "so O = e + r = 3 + 3 = 6. Answer: 6."
)
SAMPLE = Sample(id="t", prompt="<question> ... </question> <solution>", answer="6",
                meta={"trace": GOLD, "op": 4, "context": "school", "mode": "forward"})  # fmt: skip


def _completion(trace: str, answer: str) -> str:
    return f" {trace} </solution> <answer> {answer} </answer>"


def test_gold_trace_scores_one() -> None:
    res = synth_reward(SAMPLE, _completion(GOLD, "6"))
    assert res.score == 1.0
    assert res.outcome is True and res.info["process"] == 1.0
    assert res.info["process_acc"] == 1.0 and res.verified is True
    assert synth_reward(SAMPLE, _completion(GOLD, "6"), strict=True).score == 1.0


def test_skipped_step_with_right_answer() -> None:
    # Drop "Define culinarian school ...": 1 missing node + 1 wrong dependency set for O
    # ({?e, r} != {e, r}) => penalty 2, |V| = 3 => process = 1 - 2/3 = 1/3,
    # R = 0.2 * 1 + 0.8 * 1/3 = 0.4667 (the upstream reward code gives 0.467); strict => 0.
    skipped = (
        "Define public highschool in Hawkesbury as r; so r = 3. Define total number of schools "
        "in Hawkesbury as O; so O = e + r = 3 + 3 = 6. Answer: 6."
    )
    res = synth_reward(SAMPLE, _completion(skipped, "6"))
    assert res.info["n_missing"] == 1 and res.info["n_wrong_deps"] == 1
    assert res.info["n_wrong_value"] == 0 and res.info["process"] == pytest.approx(1 / 3)
    assert res.score == pytest.approx(0.2 + 0.8 / 3)
    assert res.info["process_acc"] == pytest.approx(1 / 3) and res.verified is False
    assert synth_reward(SAMPLE, _completion(skipped, "6"), strict=True).score == 0.0
    # the per-node view: r right, e missing (its gold letter), O right value but parents {?e, r}
    assert res.info["steps"] == [
        {"name": "public highschool in Hawkesbury", "var": "r", "status": "ok"},
        {"name": "culinarian school in Hawkesbury", "var": "e", "status": "missing"},
        {"name": "total number of schools in Hawkesbury", "var": "O", "status": "wrong_deps"},
    ]


def test_wrong_answer_scores_zero() -> None:
    wrong = GOLD.replace("3 + 3 = 6. Answer: 6.", "3 + 3 = 7. Answer: 7.")
    res = synth_reward(SAMPLE, _completion(wrong, "7"))
    assert res.score == 0.0 and res.outcome is False
    # Right trace, wrong <answer>: gated to 0 by the outcome.
    assert synth_reward(SAMPLE, _completion(GOLD, "5")).score == 0.0


def test_lucky_answer_with_wrong_arithmetic() -> None:
    # O's value 6 is right but "3 + 3 = 6" was written "3 + 2 = 6": inconsistent => wrong value.
    # penalty 1 => process 2/3, R = 0.2 + 0.8 * 2/3 = 0.7333; strict => 0.
    lucky = GOLD.replace("3 + 3 = 6", "3 + 2 = 6")
    res = synth_reward(SAMPLE, _completion(lucky, "6"))
    assert res.info["n_wrong_value"] == 1
    assert [step["status"] for step in res.info["steps"]] == ["ok", "ok", "wrong_value"]
    assert res.score == pytest.approx(0.2 + 0.8 * 2 / 3)
    assert synth_reward(SAMPLE, _completion(lucky, "6"), strict=True).score == 0.0


def test_extra_node_penalty() -> None:
    # One extra Define: penalty 1 => process 2/3 => R = 0.2 + 0.8 * 2/3.
    extra = GOLD.replace("Answer: 6.", "Define adult owl in Zoo as z; so z = 1. Answer: 6.")
    res = synth_reward(SAMPLE, _completion(extra, "6"))
    assert res.info["n_extra"] == 1 and res.score == pytest.approx(0.2 + 0.8 * 2 / 3)
    assert res.info["steps"][-1] == {"name": "adult owl in Zoo", "var": "z", "status": "extra"}


@pytest.mark.parametrize(
    "text",
    ["", "garbage", "<answer>", "</answer> <answer>", _completion(GOLD, "6")[:40],
     _completion(GOLD, "6")[:-12], "Define as ; so = = =.", "\x00" * 50, "6"],
)  # fmt: skip
def test_garbage_empty_truncated_score_zero(text: str) -> None:
    for name, fn in SYNTH_REWARDS.items():
        res = fn(SAMPLE, Completion(text, (), ()))
        assert res.score == 0.0, (name, text)


def test_alpha_and_outcome_variants() -> None:
    skipped = GOLD.replace("Define culinarian school in Hawkesbury as e; so e = r = 3. ", "")
    res = synth_reward(SAMPLE, _completion(skipped, "6"), alpha=0.5)
    assert res.score == pytest.approx(0.5 + 0.5 / 3)
    out = SYNTH_REWARDS["outcome"](SAMPLE, Completion(_completion(skipped, "6"), (), ()))
    assert out.score == 1.0 and out.verified is False


def test_missing_gold_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="sample id 'x'"):
        synth_reward(Sample(id="x", prompt="p", answer="1"), "text")


def test_gold_completions_of_generated_problems_score_one() -> None:
    rng = random.Random(3)
    for op in range(2, 21):
        row = problem_to_row(generate_problem(op, rng=rng, context="movie"))
        sample = row_to_sample(row)
        for fn in SYNTH_REWARDS.values():
            res = fn(sample, Completion(row["completion"] + "<eos>", (), ()))
            assert res.score == 1.0 and res.verified is True


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_reward_never_raises(text: str) -> None:
    for fn in SYNTH_REWARDS.values():
        res = fn(SAMPLE, Completion(text, (), ()))
        assert res.score is not None and 0.0 <= res.score <= 1.0
