"""Trace parser: round trip on generated problems, robustness (hypothesis)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.parse import extract_answer_tag, parse_trace
from reasonrl.tasks.synth.render import completion_text

EXAMPLE = (
    "Define public highschool in Hawkesbury as r; so r = 3. Define culinarian school in "
    "Hawkesbury as e; so e = r = 3. Define total number of schools in Hawkesbury as O; "
    "so O = e + r = 3 + 3 = 6. Answer: 6."
)


def test_parse_spec_example() -> None:
    parsed = parse_trace(EXAMPLE)
    ph, cs, tot = (
        "public highschool in Hawkesbury",
        "culinarian school in Hawkesbury",
        "total number of schools in Hawkesbury",
    )
    assert list(parsed.nodes) == [ph, cs, tot]
    assert parsed.nodes[ph].parents == frozenset() and parsed.nodes[ph].value == 3
    assert parsed.nodes[cs].parents == {ph} and parsed.nodes[cs].value == 3
    assert parsed.nodes[tot].parents == {ph, cs} and parsed.nodes[tot].value == 6
    assert all(n.consistent for n in parsed.nodes.values())
    assert parsed.answer == "6"


def test_round_trip_on_generated_problems() -> None:
    rng = random.Random(2024)
    contexts = ("zoo", "school", "movie")
    for i in range(2000):
        p = generate_problem(2 + i % 19, rng=rng, context=contexts[i % 3])
        parsed = parse_trace(completion_text(p))
        assert set(parsed.nodes) == {n.name for n in p.nodes}
        for node in p.nodes:
            got = parsed.nodes[node.name]
            assert got.parents == set(node.parents), (node, got)
            assert got.value == node.value and got.consistent, (node, got)
        assert parsed.answer == str(p.answer)
        assert parsed.n_repeated == 0


def test_intermediate_letters_resolve_to_quantities() -> None:
    text = "Define A as a; so a = 2. Define B as b; so b = 3. Define C as c; so c = 4. "
    text += "Define D as d; k = a + b = 2 + 3 = 5; so d = k + c = 5 + 4 = 9. Answer: 9."
    node = parse_trace(text).nodes["D"]
    assert node.parents == {"A", "B", "C"} and node.value == 9 and node.consistent


def test_wrong_arithmetic_is_inconsistent() -> None:
    wrong_sum = "Define A as a; so a = 2. Define B as b; so b = a + a = 2 + 2 = 5. Answer: 5."
    assert not parse_trace(wrong_sum).nodes["B"].consistent
    wrong_sub = "Define A as a; so a = 2. Define B as b; so b = a + a = 3 + 2 = 5. Answer: 5."
    assert not parse_trace(wrong_sub).nodes["B"].consistent
    garbage_value = "Define A as a; so a = 2. Define B as b; so b = a + a = 2 + 2 = four."
    node = parse_trace(garbage_value).nodes["B"]
    assert node.value is None and not node.consistent


def test_repeated_definition_keeps_the_last() -> None:
    text = "Define A as a; so a = 2. Define A as b; so b = 3. Answer: 3."
    parsed = parse_trace(text)
    assert parsed.nodes["A"].value == 3 and parsed.n_repeated == 1 and parsed.n_defines == 2


def test_truncated_and_empty_text() -> None:
    for cut in range(0, len(EXAMPLE), 7):
        parsed = parse_trace(EXAMPLE[:cut])
        assert set(parsed.nodes) <= {
            "public highschool in Hawkesbury",
            "culinarian school in Hawkesbury",
            "total number of schools in Hawkesbury",
        }
    assert parse_trace("").nodes == {} and parse_trace("").answer is None


def test_answer_tag() -> None:
    assert extract_answer_tag(" x </solution> <answer> 12 </answer>") == "12"
    assert extract_answer_tag("<answer> 12") is None
    assert extract_answer_tag("<answer>1</answer><answer>2</answer>") == "2"


_GRAMMAR = st.sampled_from(
    ["Define", " as ", ";", " so ", " = ", " + ", " - ", " * ", ".", "Answer:", " a", " b", " x",
     " 3", " 12", "<answer>", "</answer>", "</solution>", " owl in Zoo", "\n", " ", "(", "99999"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parser_never_raises_on_random_text(text: str) -> None:
    parsed = parse_trace(text)
    assert isinstance(parsed.nodes, dict)
    extract_answer_tag(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(_GRAMMAR, max_size=80).map("".join))
def test_parser_never_raises_on_grammar_soup(text: str) -> None:
    parsed = parse_trace(text)
    for node in parsed.nodes.values():
        assert len(node.var) == 1
        assert node.value is None or isinstance(node.value, float)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 12), st.data())
def test_truncated_gold_gives_subset(seed: int, op: int, data: st.DataObject) -> None:
    p = generate_problem(op, rng=random.Random(seed))
    cut = data.draw(st.integers(0, len(p.trace)))
    parsed = parse_trace(p.trace[:cut])
    gold = {n.name: n for n in p.nodes}
    assert set(parsed.nodes) <= set(gold)
