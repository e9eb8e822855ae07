"""Reverse mode: one unknown, linear equation; traces parse, verify and score 1."""

from __future__ import annotations

import random

import pytest

from reasonrl.tasks.synth.dataset import problem_to_row, row_to_sample
from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.graph import CONST, SUM, UNKNOWN, GoldNode
from reasonrl.tasks.synth.parse import linear_eval, parse_trace
from reasonrl.tasks.synth.problem import check_problem
from reasonrl.tasks.synth.reverse import format_linear, linear_forms
from reasonrl.tasks.synth.reward import synth_reward


@pytest.mark.parametrize(
    ("form", "text"),
    [((1, 0), "x"), ((1, 3), "x + 3"), ((2, -4), "2 * x - 4"), ((-1, 10), "10 - x"),
     ((-3, 4), "4 - 3 * x"), ((0, 7), "7"), ((-1, -2), "0 - x - 2")],
)  # fmt: skip
def test_format_linear_round_trips(form: tuple[int, int], text: str) -> None:
    assert format_linear(form) == text
    assert linear_eval(text) == (float(form[0]), float(form[1]))


def test_linear_forms_of_hand_graph() -> None:
    # u = x, c = 3, s = u + c + u  =>  s = 2x + 3.
    nodes = [
        GoldNode("u", "x", UNKNOWN, (), 2, 2),
        GoldNode("c", "c", CONST, (), 3, 3),
        GoldNode("s", "s", SUM, ("u", "c", "u"), None, 7, ("k",)),
    ]
    assert linear_forms(nodes)["s"] == (2, 3)


def test_reverse_problems_are_solvable_and_verified() -> None:
    rng = random.Random(42)
    for op in range(2, 21):
        for context in ("zoo", "school", "movie"):
            p = generate_problem(op, rng=rng, context=context, mode="reverse")
            check_problem(p)
            assert p.op == op and p.mode == "reverse"
            assert 1 <= p.answer <= 4  # the unknown is a hidden constant 1..number_range-1
            assert "exists, and its number is greater than 0." in p.problem
            assert p.trace.endswith(f"Solution: x = {p.answer}. Answer: {p.answer}.")
            forms = linear_forms(list(p.nodes))
            a, b = forms[p.nodes[-1].name]
            assert a != 0 and a * p.answer + b == p.nodes[-1].value
            parsed = parse_trace(p.trace)
            for node in p.nodes:
                got = parsed.nodes[node.name]
                assert got.parents == set(node.parents) and got.consistent
            row = problem_to_row(p)
            res = synth_reward(row_to_sample(row), row["completion"], strict=True)
            assert res.score == 1.0 and res.verified is True


def test_reverse_wrong_symbolic_value_is_penalised() -> None:
    p = generate_problem(6, rng=random.Random(1), mode="reverse")
    row = problem_to_row(p)
    unknown = next(n for n in p.nodes if n.kind == UNKNOWN)
    # Claiming a value for the unknown instead of "we don't know ..." is a wrong value (and later
    # steps that still substitute "x" for it no longer check out either).
    guessed = row["completion"].replace(
        "as x; we don't know its value yet but will find it out later.",
        f"as x; so x = {unknown.value}.",
    )
    assert guessed != row["completion"]
    res = synth_reward(row_to_sample(row), guessed)
    assert res.info["n_wrong_value"] >= 1 and res.outcome is True and res.score < 1.0
    assert synth_reward(row_to_sample(row), guessed, strict=True).score == 0.0


def test_reverse_determinism() -> None:
    a = generate_problem(9, rng=random.Random(5), mode="reverse", context="movie")
    b = generate_problem(9, rng=random.Random(5), mode="reverse", context="movie")
    assert a == b
