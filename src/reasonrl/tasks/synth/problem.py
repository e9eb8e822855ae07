"""The generated-problem record, the retry signal of the samplers, and the problem invariants.

Shared by the forward and reverse samplers, the renderer and the dataset builder; it depends on
nothing but the graph records, so every other module of the task can import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from reasonrl.tasks.synth.graph import UNKNOWN, GoldNode, count_ops, evaluate


class RetryProblem(Exception):
    """The current draw hit a dead end; start a new one (caught by generate_problem)."""


@dataclass(frozen=True, slots=True)
class SynthProblem:
    """One generated problem with its gold solution.

    problem: shuffled statements. question: the question about the last node. trace: gold
    solution trace ("Define ... Answer: N."). answer: gold answer. op: op(G) of the needed nodes.
    nodes: the needed nodes in trace (topological) order; distractors: irrelevant nodes.
    """

    problem: str
    question: str
    trace: str
    answer: int
    op: int
    context: str
    mode: str
    nodes: tuple[GoldNode, ...] = field(default=())
    distractors: tuple[GoldNode, ...] = field(default=())

    def to_dict(self) -> dict:
        """Plain-data view (JSON-serialisable)."""
        return asdict(self)


def check_problem(problem: SynthProblem) -> None:
    """Assert the invariants of a generated problem (used by the tests)."""
    values = evaluate(problem.nodes)
    for node in problem.nodes:
        assert values[node.name] == node.value, node
        assert node.value >= 0, node
    assert count_ops(problem.nodes) == problem.op
    if problem.mode == "reverse":
        unknowns = [n for n in problem.nodes if n.kind == UNKNOWN]
        assert len(unknowns) == 1 and unknowns[0].value == problem.answer >= 1
        assert f" is {problem.nodes[-1].value}, " in problem.question
    else:
        assert problem.nodes[-1].value == problem.answer
