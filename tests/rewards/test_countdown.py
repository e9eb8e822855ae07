"""Countdown checker: exact arithmetic, each number exactly once, no eval."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from reasonrl.data.benchmarks import load_countdown
from reasonrl.rewards.countdown import (
    check_countdown,
    countdown_reward,
    evaluate_equation,
    extract_equation,
)
from reasonrl.types import Completion, Sample


def _c(text: str) -> Completion:
    return Completion(text=text, token_ids=(), logprobs=())


@pytest.mark.parametrize(
    ("expr", "value", "used"),
    [
        ("(100 - 93) + 30", Fraction(37), [100, 93, 30]),
        ("7 / 3 * 3", Fraction(7), [7, 3, 3]),  # exact: floats would give 7.000000000000001
        ("-(2 - 5) x 4", Fraction(12), [2, 5, 4]),  # unary minus, 'x' as times
        ("8 ÷ 2 × 3", Fraction(12), [8, 2, 3]),
    ],
)
def test_exact_evaluation(expr, value, used):
    assert evaluate_equation(expr) == (value, used)


@pytest.mark.parametrize(
    ("equation", "reason"),
    [
        ("30 + 100 - 93", "evaluates to 37"),  # target 23: wrong value
        ("100 - 93 + 30 + 30", "numbers used"),  # 30 twice
        ("100 - 93", "numbers used"),  # 30 unused: d1 requires all numbers
        ("100 - 93 * 30 / 0", "division by zero"),
        ("__import__('os').system('id')", "disallowed syntax"),
        ("2 ** 100 + 93 - 30", "disallowed syntax"),  # no power operator
        ("100 - 93.0 + 30", "only integer literals"),
        ("(100 - 93", "unparsable"),
        ("1" * 300, "longer than"),
    ],
)
def test_invalid_equations_rejected(equation, reason):
    ok, why = check_countdown(equation, [30, 100, 93], 23)
    assert not ok and reason in why


def test_extract_last_answer_tag_and_drop_rhs():
    text = "<answer>1+2</answer> no wait <answer> 100 - 93 + 30 = 37 </answer>"
    assert extract_equation(text) == "100 - 93 + 30"
    assert extract_equation("no tags") is None


def test_reward_values_and_not_applicable():
    s = Sample(id="c", prompt="", answer="37", meta={"numbers": [30, 100, 93], "target": 37})
    assert countdown_reward(s, _c("<answer>100-93+30</answer>")).score == 1.0
    assert countdown_reward(s, _c("<answer>100-93-30</answer>")).score == 0.0
    assert countdown_reward(s, _c("<answer>100-93-30</answer>"), format_score=0.1).score == 0.1
    assert countdown_reward(s, _c("nothing")).score == 0.0
    assert countdown_reward(Sample(id="x", prompt=""), _c("<answer>1</answer>")) is None


def _solve(numbers: list[int], target: int) -> str | None:
    """Brute force over orders, operators and the two bracketings of three operands."""
    for a, b, c in itertools.permutations(numbers):
        for p, q in itertools.product("+-*/", repeat=2):
            for expr in (f"({a} {p} {b}) {q} {c}", f"{a} {p} ({b} {q} {c})"):
                try:
                    if evaluate_equation(expr)[0] == target:
                        return expr
                except ValueError:
                    continue
    return None


def test_every_d1_puzzle_has_a_solution_the_checker_accepts(shared_data):
    samples = load_countdown(shared_data / "countdown/countdown_cd3_test.jsonl")
    assert len(samples) == 256
    for s in samples:
        expr = _solve(s.meta["numbers"], s.meta["target"])
        assert expr is not None, s.id
        assert countdown_reward(s, _c(f"<answer>{expr}</answer>")).score == 1.0
        # dropping one number must fail: every number has to be used
        a, b, _ = s.meta["numbers"]
        assert countdown_reward(s, _c(f"<answer>{a} + {b}</answer>")).score == 0.0
