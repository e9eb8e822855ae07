"""Generator of the synthetic task: op counts, values, determinism, errors."""

from __future__ import annotations

import random

import pytest

from reasonrl.tasks.synth.generator import generate_problem
from reasonrl.tasks.synth.graph import (
    ALIAS,
    CONST,
    CONST_TIMES,
    DIFF,
    SUM,
    TOTAL,
    UNIT_TOTAL,
    GoldNode,
    count_ops,
    evaluate,
)
from reasonrl.tasks.synth.problem import check_problem
from reasonrl.tasks.synth.render import forward_trace
from reasonrl.tasks.synth.vocab import CONTEXTS


def _hand_dag() -> list[GoldNode]:
    # a = 3 (1 edge: RNG), b = a (1), c = 2 * b (2: RNG + b), d = a + b + c (3),
    # T = total(a, d) (2), e = T - c (2)  =>  op = 1 + 1 + 2 + 3 + 2 + 2 = 11.
    # Values: a=3, b=3, c=6, d=12, T=15, e=9.
    return [
        GoldNode("a", "a", CONST, (), 3, 3),
        GoldNode("b", "b", ALIAS, ("a",), None, 3),
        GoldNode("c", "c", CONST_TIMES, ("b",), 2, 6),
        GoldNode("d", "d", SUM, ("a", "b", "c"), None, 12, ("k",)),
        GoldNode("T", "T", TOTAL, ("a", "d"), None, 15),
        GoldNode("e", "e", DIFF, ("T", "c"), None, 9),
    ]


def test_count_ops_of_hand_built_dag() -> None:
    nodes = _hand_dag()
    assert count_ops(nodes) == 11
    assert count_ops(nodes[:1]) == 1
    assert evaluate(nodes) == {"a": 3, "b": 3, "c": 6, "d": 12, "T": 15, "e": 9}


def test_evaluate_rejects_undefined_parent() -> None:
    with pytest.raises(ValueError, match="not defined before"):
        evaluate([GoldNode("b", "b", ALIAS, ("a",), None, 3)])


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_exact_op_values_and_answer(context: str) -> None:
    rng = random.Random(123)
    for op in range(1, 21):
        for _ in range(8):
            p = generate_problem(op, rng=rng, context=context)
            check_problem(p)  # evaluate() reproduces every stored value
            assert p.op == op == count_ops(p.nodes)
            assert p.answer == p.nodes[-1].value
            for node in (*p.nodes, *p.distractors):
                assert 0 <= node.value <= 99, node
                assert node.const is None or 1 <= node.const <= 4
            assert p.trace.endswith(f"Answer: {p.answer}.")
            assert p.trace.count("Define ") == len(p.nodes)


def test_every_node_is_needed_for_the_answer() -> None:
    # The trace only holds ancestors of the query: each node but the last is somebody's parent.
    rng = random.Random(5)
    for op in range(2, 16):
        p = generate_problem(op, rng=rng)
        used = {parent for node in p.nodes for parent in node.parents}
        assert {n.name for n in p.nodes[:-1]} <= used


def test_distractors_do_not_feed_needed_nodes() -> None:
    rng = random.Random(9)
    for op in range(2, 12):
        p = generate_problem(op, rng=rng, distractors=(2, 3))
        extra = {d.name for d in p.distractors}
        assert len(extra) in (2, 3)
        assert not extra & {parent for node in p.nodes for parent in node.parents}
        assert len(p.problem.split(". ")) >= len(extra)


def test_seeded_determinism() -> None:
    a = [generate_problem(op, rng=random.Random(7), context="school") for op in (2, 5, 9)]
    b = [generate_problem(op, rng=random.Random(7), context="school") for op in (2, 5, 9)]
    assert a == b
    c = generate_problem(5, rng=random.Random(8), context="school")
    assert c != a[1]


def test_global_random_state_is_not_used() -> None:
    random.seed(1)
    a = generate_problem(6, rng=random.Random(3))
    random.seed(2)
    b = generate_problem(6, rng=random.Random(3))
    assert a == b


def test_impossible_request_raises_clear_error() -> None:
    # 51 variable letters cannot name the nodes of a 200-op graph.
    with pytest.raises(ValueError, match=r"op=200.*max_tries=3"):
        generate_problem(200, rng=random.Random(0), max_tries=3)
    with pytest.raises(ValueError, match="unknown synth context"):
        generate_problem(3, rng=random.Random(0), context="mars")
    with pytest.raises(ValueError, match="unknown synth mode"):
        generate_problem(3, rng=random.Random(0), mode="sideways")
    with pytest.raises(ValueError, match="op must be >= 1"):
        generate_problem(0, rng=random.Random(0))


def test_max_value_is_respected() -> None:
    rng = random.Random(11)
    for op in range(2, 13):
        p = generate_problem(op, rng=rng, max_value=20)
        assert all(n.value <= 20 for n in (*p.nodes, *p.distractors))


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_third_layer_products(mode: str) -> None:
    # depth 3 adds averages per kind and "total number of <unit> in P" = sum_k count_k * avg_k.
    rng = random.Random(31)
    seen_unit_total = False
    for i in range(240):
        p = generate_problem(2 + i % 14, rng=rng, mode=mode, depth=3, context="school")
        check_problem(p)
        assert p.op == 2 + i % 14
        for node in p.nodes:
            if node.kind == UNIT_TOTAL:
                seen_unit_total = True
                counts, avgs = node.parents[0::2], node.parents[1::2]
                assert all(a.startswith("average number of teachers per ") for a in avgs)
                assert [a.split(" per ")[1] for a in avgs] == list(counts)
                assert node.name.startswith("total number of teachers in ")
    assert seen_unit_total


def test_hand_built_unit_total() -> None:
    # T = c1 * u1 + c2 * u2 = 2 * 3 + 4 * 1 = 10; op(T) = 4 parent edges.
    nodes = [
        GoldNode("c1", "a", CONST, (), 2, 2),
        GoldNode("u1", "b", CONST, (), 3, 3, layer=2),
        GoldNode("c2", "c", CONST, (), 4, 4),
        GoldNode("u2", "d", CONST, (), 1, 1, layer=2),
        GoldNode("T", "e", UNIT_TOTAL, ("c1", "u1", "c2", "u2"), None, 10, ("f", "g")),
    ]
    assert evaluate(nodes)["T"] == 10 and count_ops(nodes) == 4 + 4
    trace = forward_trace(nodes, 10)
    assert (
        "Define T as e; f = a * b = 2 * 3 = 6; g = c * d = 4 * 1 = 4; so e = f + g = 6 + 4 = 10."
        in trace
    )
    with pytest.raises(ValueError, match="depth must be 2 or 3"):
        generate_problem(3, rng=random.Random(0), depth=4)
